import Foundation

/// A task as its file under `Tasks/` describes it: which plugin (head) it uses, where its data is, its labels
/// (or regression), its metrics, and the hyper-parameters it starts from. A new task of an existing kind is a
/// new file, not new code.
///
/// These fields are common to every plugin; how a split's file is laid out (`Split`), and any field of its own
/// (`Settings`), the plugin declares and reads with `layout(of:as:)` and `settings(as:)`. A key that neither
/// knows is an error naming the file and the nearest known key.
public struct TaskSpec: Sendable {
    public let name: String
    /// The plugin that trains it.
    public let plugin: any TaskPlugin.Type
    public let description: String?
    /// Folder of the data files: relative to the task file (or absolute), or, for `externalData` tasks,
    /// relative to the data directory the user names (`--data-dir`, or the environment variable `BERTKIT_DATA_DIR`).
    public let dataDirectory: String
    /// Data the repository may not carry (its licence forbids redistribution).
    public let externalData: Bool
    /// For external data: how to get it, shown when it is missing.
    public let obtain: String?
    /// Hyper-parameters this task starts from (a SQuAD task wants longer sequences than a GLUE one); an
    /// experiment and flags override them.
    public let hyperparameters: [String: JSONValue]
    /// The file of each split: `train` and `dev` are used for training and evaluation, `test` for prediction.
    public let splits: [String: String]
    /// Class names in label-id order, as the data files write them; absent for a regression task.
    public let labels: [String]?
    /// The names predictions and exports give the classes (`labelNames`, in the order of `labels`: MRPC's data
    /// writes "0" and "1" for "not_equivalent" and "equivalent"); the labels themselves when the file gives none.
    public let labelNames: [String]?
    public let metrics: [String]
    /// The metric that picks the best checkpoint.
    public let mainMetric: String
    /// The file this spec was read from.
    public let path: String
    /// The file's bytes, from which the plugin decodes its own fields.
    private let source: Data

    public var isRegression: Bool { labels == nil }

    private struct Common: Decodable {
        struct SplitFile: Decodable { let file: String }
        let name: String
        let plugin: String
        var description: String?
        let dataDirectory: String
        var externalData: Bool?
        var obtain: String?
        var hyperparameters: [String: JSONValue]?
        let splits: [String: SplitFile]
        var labels: [String]?
        var labelNames: [String]?
        let metrics: [String]
        let mainMetric: String
    }
    static let commonKeys: Set<String> = [
        "name", "plugin", "description", "dataDirectory", "externalData", "obtain", "hyperparameters", "splits",
        "labels", "labelNames", "metrics", "mainMetric",
    ]

    /// Reads `Tasks/NAME.json` (or a path to a task file) and checks it: its keys, its plugin's layout of every
    /// split, its metrics and labels, and its hyper-parameters.
    public static func load(_ nameOrPath: String, tasksDirectory: String = "Tasks",
                            plugins: [any TaskPlugin.Type] = TaskPlugins.all) throws -> TaskSpec {
        let path = nameOrPath.hasSuffix(".json") ? nameOrPath : tasksDirectory + "/" + nameOrPath + ".json"
        guard let data = FileManager.default.contents(atPath: path) else {
            let known = (try? FileManager.default.contentsOfDirectory(atPath: tasksDirectory))?
                .filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted() ?? []
            throw DataError(file: path, "task file not found" + (known.isEmpty ? "" : "; known tasks: \(known.joined(separator: ", "))"))
        }
        return try TaskSpec(data: data, path: path, plugins: plugins)
    }

    /// A task described in code rather than in a file: the fields a task file has, as JSON values, checked as a
    /// file is. A relative `dataDirectory` is taken from `directory`; errors name the task as "NAME (in code)".
    ///
    /// ```swift
    /// let task = try TaskSpec([
    ///     "name": "paraphrase", "plugin": "sequence-classification", "dataDirectory": "/data/glue/MRPC",
    ///     "splits": ["train": ["file": "train.tsv", "textA": 3, "textB": 4, "label": 0],
    ///                "dev": ["file": "dev.tsv", "textA": 3, "textB": 4, "label": 0]],
    ///     "labels": ["0", "1"], "metrics": ["accuracy", "f1"], "mainMetric": "f1",
    /// ])
    /// ```
    public init(_ fields: [String: JSONValue], directory: String = FileManager.default.currentDirectoryPath,
                plugins: [any TaskPlugin.Type] = TaskPlugins.all) throws {
        let name: String
        if case .text(let text)? = fields["name"] { name = text } else { name = "task" }
        let data = try JSONEncoder().encode(JSONValue.object(fields))
        self = try TaskSpec(data: data, path: (directory as NSString).appendingPathComponent("\(name) (in code)"), plugins: plugins)
    }

    /// A task from a task file's bytes; `path` names it in errors, and its folder is where relative data paths start.
    private init(data: Data, path: String, plugins: [any TaskPlugin.Type]) throws {
        let common: Common
        do { common = try JSONDecoder().decode(Common.self, from: data) } catch {
            throw DataError(file: path, "is not a valid task file: \(JSONKeys.explain(error))")
        }
        let plugin = try TaskPlugins.named(common.plugin, in: plugins, file: path)
        name = common.name
        self.plugin = plugin
        description = common.description
        dataDirectory = common.dataDirectory
        externalData = common.externalData ?? false
        obtain = common.obtain
        hyperparameters = common.hyperparameters ?? [:]
        splits = common.splits.mapValues(\.file)
        labels = common.labels
        labelNames = common.labelNames ?? common.labels
        metrics = common.metrics
        mainMetric = common.mainMetric
        self.path = path
        source = data
        try validate(plugins: plugins)
    }

    private func validate(plugins: [any TaskPlugin.Type]) throws {
        // The name makes the run's folder: no separators, nothing that climbs out of the output folder.
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        guard !name.isEmpty, !name.hasPrefix("."), name.allSatisfy(allowed.contains) else {
            throw DataError(file: path, "name '\(name)' must be letters, digits, '.', '_' and '-', not starting with '.' (it names the run's folder)")
        }
        guard metrics.contains(mainMetric) else {
            throw DataError(file: path, "mainMetric '\(mainMetric)' is not one of metrics \(metrics)")
        }
        for (key, names) in [("labels", labels), ("labelNames", labelNames)] {
            guard let names else { continue }
            if names.count < 2 { throw DataError(file: path, "\(key) must name at least two classes") }
            var seen: Set<String> = []
            for name in names where !seen.insert(name).inserted {
                throw DataError(file: path, "\(key) repeats '\(name)'; each class is named once")
            }
        }
        if let labelNames, labelNames.count != labels?.count {
            throw DataError(file: path, "labelNames has \(labelNames.count) names for \(labels?.count ?? 0) labels; one name per label, in their order")
        }
        _ = try Hyperparameters().applying(hyperparameters, from: path, plugins: plugins)
        try plugin.checkTaskFile(self)
    }

    private struct RawSplits: Decodable { let splits: [String: JSONValue] }

    /// The file's bytes, for checks of its keys.
    var contents: Data { source }

    /// The plugin's fields of the task file.
    public func settings<Settings: TaskFileSection>(as: Settings.Type) throws -> Settings {
        do { return try JSONDecoder().decode(Settings.self, from: source) } catch {
            throw DataError(file: path, "is not a valid \(plugin.name) task file: \(JSONKeys.explain(error))")
        }
    }

    /// How a split's file is laid out, as the plugin reads it.
    public func layout<Layout: TaskFileSection>(of split: String, as: Layout.Type) throws -> Layout {
        guard let raw = try? JSONDecoder().decode(RawSplits.self, from: source).splits[split] else {
            throw DataError(file: path, "task '\(name)' has no '\(split)' split; it has \(splits.keys.sorted().joined(separator: ", "))")
        }
        guard case .object(let fields) = raw else { throw DataError(file: path, "split '\(split)' must be a JSON object") }
        try JSONKeys.check(Set(fields.keys), file: path, allowed: Layout.keys.union(["file"]), context: "split '\(split)': ")
        do { return try JSONDecoder().decode(Layout.self, from: JSONEncoder().encode(raw)) } catch {
            throw DataError(file: path, "split '\(split)': \(JSONKeys.explain(error))")
        }
    }

    /// Path of a split's file. External data is looked up under `dataDirectory` (else `BERTKIT_DATA_DIR`).
    public func file(of split: String, dataDirectory root: String? = nil) throws -> String {
        guard let file = splits[split] else {
            throw DataError(file: path, "task '\(name)' has no '\(split)' split; it has \(splits.keys.sorted().joined(separator: ", "))")
        }
        let base: String
        if externalData {
            guard let root = root ?? ProcessInfo.processInfo.environment["BERTKIT_DATA_DIR"] else {
                throw DataError(file: path, "task '\(name)' reads data the repository does not carry: name the folder that holds \(dataDirectory)/ with --data-dir or BERTKIT_DATA_DIR. \(obtain ?? "")")
            }
            base = root
        } else {
            base = (path as NSString).deletingLastPathComponent
        }
        let folder = dataDirectory.hasPrefix("/") ? dataDirectory : (base as NSString).appendingPathComponent(dataDirectory)
        let full = (folder as NSString).appendingPathComponent(file)
        if externalData && !FileManager.default.fileExists(atPath: full) {
            throw DataError(file: full, "file not found. \(obtain ?? "")")
        }
        return full
    }
}

extension KeyedDecodingContainer {
    /// A range of a task file, written `[first, end)` as a list of two whole numbers (articles, documents).
    func decodeRangeIfPresent(forKey key: Key) throws -> Range<Int>? {
        guard let range = try decodeIfPresent([Int].self, forKey: key) else { return nil }
        guard range.count == 2, 0 <= range[0], range[0] <= range[1] else {
            throw DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription: "expected [first, end), found \(range)")
        }
        return range[0]..<range[1]
    }
}
