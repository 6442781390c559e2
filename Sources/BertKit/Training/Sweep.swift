import Foundation

/// A sweep's plan: every combination of some hyper-parameters' values (the grid, the first one varying
/// slowest), each trained once per seed, as separate runs that results.db ties together (`sweeps`, `sweep_runs`,
/// `sweep_summary`). A run's hyper-parameters come from, later ones winning: the task file, the experiment, the
/// sweep's fixed settings, then its grid values and its seed. A fixed setting may not name a swept
/// hyper-parameter or the seed: one of the two would be silently lost.
public struct SweepPlan: Sendable {
    public let grid: [(name: String, values: [String])]
    public let seeds: [UInt64]
    /// Hyper-parameter options (`--epochs 3`) every run gets.
    public let fixed: [String]

    /// One run of the plan: its configuration's label, its seed and its hyper-parameter options.
    public struct PlannedRun: Sendable, Equatable {
        public let configuration: String
        public let seed: UInt64
        public let arguments: [String]
    }

    /// Checks every name and value against the declared hyper-parameters; values are kept in their canonical
    /// text (`2e-5` and `0.00002` are both `2e-05`), so that a configuration has one label.
    public init(grid: [(name: String, values: [String])], seeds: [UInt64], fixed: [String] = []) throws {
        let table = Hyperparameters.table().map(\.declaration)
        var checked: [(name: String, values: [String])] = []
        for (given, values) in grid {
            let name = given.replacingOccurrences(of: "-", with: "_")
            guard let declaration = table.first(where: { $0.name == name }) else {
                throw UsageError("--grid names '\(given)', which is not a hyper-parameter (finetune help train lists them)")
            }
            if name == "seed" { throw UsageError("sweep seeds with --seeds, not --grid seed=...") }
            if checked.contains(where: { $0.name == name }) { throw UsageError("--grid names \(name) twice") }
            guard !values.isEmpty else { throw UsageError("--grid \(name) has no values") }
            let texts = try values.map { text -> String in
                guard let (value, problem) = declaration.parseText(text) else {
                    throw UsageError("--grid \(name): '\(text)' is not \(declaration.placeholder)")
                }
                if let problem { throw UsageError("--grid \(name): \(problem), found '\(text)'") }
                return value
            }
            guard Set(texts).count == texts.count else { throw UsageError("--grid \(name) repeats a value") }
            checked.append((name, texts))
        }
        guard !seeds.isEmpty else { throw UsageError("a sweep needs at least one seed (--seeds 1,2,3)") }
        guard Set(seeds).count == seeds.count else { throw UsageError("--seeds repeats a seed") }
        let settings = try Hyperparameters().applying(arguments: fixed)
        let fixedFlags = Set(fixed.filter { $0.hasPrefix("--") }.map { String($0.split(separator: "=", maxSplits: 1)[0]) })
        for name in checked.map(\.name) + ["seed"] where settings.values[name] != nil || fixedFlags.contains("--" + name.replacingOccurrences(of: "_", with: "-")) {
            throw UsageError("\(name) is swept; it cannot also be fixed for every run")
        }
        self.grid = checked
        self.seeds = seeds
        self.fixed = fixed
    }

    /// Reads `name=v1,v2,...` (the name with `_` or `-`).
    public static func gridOption(_ text: String) throws -> (name: String, values: [String]) {
        let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2, !parts[0].isEmpty else { throw UsageError("--grid expects name=value,value,..., found '\(text)'") }
        return (parts[0], parts[1].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
    }

    /// Every combination of the grid's values, the first hyper-parameter varying slowest.
    public var configurations: [[(name: String, value: String)]] {
        grid.reduce([[]]) { partial, axis in partial.flatMap { prefix in axis.values.map { prefix + [(axis.name, $0)] } } }
    }

    /// A configuration's label, as `sweep_runs` and `sweep_summary` show it: `learning_rate=0.00002 batch_size=16`.
    public static func label(_ configuration: [(name: String, value: String)]) -> String {
        configuration.isEmpty ? "(task defaults)" : configuration.map { "\($0.name)=\($0.value)" }.joined(separator: " ")
    }

    /// The runs, configuration by configuration, seed by seed.
    public var runs: [PlannedRun] {
        configurations.flatMap { configuration in
            seeds.map { seed in
                PlannedRun(configuration: Self.label(configuration), seed: seed,
                           arguments: fixed + configuration.flatMap { ["--" + $0.name.replacingOccurrences(of: "_", with: "-"), $0.value] }
                               + ["--seed", String(seed)])
            }
        }
    }

    /// A sweep file (under Experiments/): `{"task": ..., "grid": {name: [values]}, "seeds": [...], "hyperparameters": {...}}`
    /// (the grid's hyper-parameters in name order; `hyperparameters` are the fixed settings). Unknown keys are errors.
    public static func load(_ path: String) throws -> (task: String, plan: SweepPlan) {
        guard let data = FileManager.default.contents(atPath: path) else { throw DataError(file: path, "file not found") }
        try JSONKeys.check(data, file: path, allowed: ["task", "description", "grid", "seeds", "hyperparameters"])
        let object = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        guard let task = object["task"] as? String else { throw DataError(file: path, "expected a \"task\" string") }
        guard let grid = object["grid"] as? [String: [Any]] else { throw DataError(file: path, "expected a \"grid\" object of value lists") }
        guard let seeds = (object["seeds"] as? [NSNumber])?.map(\.uint64Value) else { throw DataError(file: path, "expected \"seeds\", a list of integers") }
        func text(_ value: Any) -> String { (value as? String) ?? "\(value)" }
        var fixed: [String] = []
        for (name, value) in ((object["hyperparameters"] as? [String: Any]) ?? [:]).sorted(by: { $0.key < $1.key }) {
            fixed += ["--" + name.replacingOccurrences(of: "_", with: "-"), text(value)]
        }
        do {
            return (task, try SweepPlan(grid: grid.sorted { $0.key < $1.key }.map { ($0.key, $0.value.map(text)) }, seeds: seeds, fixed: fixed))
        } catch let error as UsageError {
            throw DataError(file: path, error.description)
        }
    }
}
