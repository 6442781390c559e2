import Foundation

/// A task as its file under `Tasks/` describes it: which plugin (head) it uses, where its data is, which
/// columns hold the texts and the target, its labels (or regression) and its metrics. A new GLUE-style task is
/// a new file, not new code.
public struct TaskSpec: Decodable, Sendable {
    /// How one split is laid out in its TSV file. Columns are 0-based.
    public struct Split: Decodable, Sendable {
        public let file: String
        public var header: Bool = true
        public let textA: Int
        public var textB: Int? = nil
        /// Absent for unlabelled (test) data.
        public var label: Int? = nil

        enum CodingKeys: String, CodingKey { case file, header, textA, textB, label }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            file = try c.decode(String.self, forKey: .file)
            header = try c.decodeIfPresent(Bool.self, forKey: .header) ?? true
            textA = try c.decode(Int.self, forKey: .textA)
            textB = try c.decodeIfPresent(Int.self, forKey: .textB)
            label = try c.decodeIfPresent(Int.self, forKey: .label)
        }
    }

    public let name: String
    public let plugin: String
    public var description: String? = nil
    /// Folder of the data files, relative to the task file.
    public let dataDirectory: String
    /// Splits by name: `train` and `dev` are used for training and evaluation, `test` for prediction.
    public let splits: [String: Split]
    /// Class names in label-id order; absent for a regression task.
    public var labels: [String]? = nil
    public let metrics: [String]
    /// The metric that picks the best checkpoint.
    public let mainMetric: String

    /// The file this spec was read from.
    public private(set) var path: String = ""

    enum CodingKeys: String, CodingKey {
        case name, plugin, description, dataDirectory, splits, labels, metrics, mainMetric
    }

    public var isRegression: Bool { labels == nil }

    /// Reads `Tasks/NAME.json` (or a path to a task file).
    public static func load(_ nameOrPath: String, tasksDirectory: String = "Tasks") throws -> TaskSpec {
        let path = nameOrPath.hasSuffix(".json") ? nameOrPath : tasksDirectory + "/" + nameOrPath + ".json"
        guard let data = FileManager.default.contents(atPath: path) else {
            let known = (try? FileManager.default.contentsOfDirectory(atPath: tasksDirectory))?
                .filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted() ?? []
            throw DataError(file: path, "task file not found" + (known.isEmpty ? "" : "; known tasks: \(known.joined(separator: ", "))"))
        }
        var spec: TaskSpec
        do { spec = try JSONDecoder().decode(TaskSpec.self, from: data) } catch {
            throw DataError(file: path, "is not a valid task file: \(error)")
        }
        spec.path = path
        try spec.validate()
        return spec
    }

    func validate() throws {
        guard ["sequence-classification"].contains(plugin) else {
            throw DataError(file: path, "unknown plugin '\(plugin)'; expected sequence-classification")
        }
        for metric in metrics where !Metrics.known.contains(metric) {
            throw DataError(file: path, "unknown metric '\(metric)'; known: \(Metrics.known.sorted().joined(separator: ", "))")
        }
        guard metrics.contains(mainMetric) else {
            throw DataError(file: path, "mainMetric '\(mainMetric)' is not one of metrics \(metrics)")
        }
        if let labels, labels.count < 2 || Set(labels).count != labels.count {
            throw DataError(file: path, "labels must be at least two distinct names")
        }
    }

    /// Absolute path of a split's file.
    public func file(of split: String) throws -> String {
        guard let s = splits[split] else {
            throw DataError(file: path, "task '\(name)' has no '\(split)' split; it has \(splits.keys.sorted().joined(separator: ", "))")
        }
        let base = (path as NSString).deletingLastPathComponent
        return ((base as NSString).appendingPathComponent(dataDirectory) as NSString).appendingPathComponent(s.file)
    }

    /// Reads a split's examples. A line with too few fields, a label not in `labels`, or a value that is not
    /// a number ends the read with an error naming the file and line.
    public func examples(_ split: String, file overridePath: String? = nil) throws -> [TextExample] {
        guard let layout = splits[split] else { _ = try file(of: split); return [] }
        let path = try overridePath ?? file(of: split)
        let table = try TSVFile(path: path, hasHeader: layout.header)
        let needed = [layout.textA, layout.textB, layout.label].compactMap { $0 }.max()! + 1
        let labelIds = Dictionary(uniqueKeysWithValues: (labels ?? []).enumerated().map { ($1, $0) })
        return try table.rows.map { row in
            guard row.fields.count >= needed else {
                throw DataError(file: path, line: row.line,
                                "expected at least \(needed) tab-separated fields, found \(row.fields.count)")
            }
            var target: Target? = nil
            if let column = layout.label {
                let raw = row.fields[column]
                if labels != nil {
                    guard let id = labelIds[raw] else {
                        throw DataError(file: path, line: row.line,
                                        "unknown label '\(raw)'; expected one of \(labels!.joined(separator: ", "))")
                    }
                    target = .label(id)
                } else {
                    guard let value = Float(raw.trimmingCharacters(in: .whitespaces)), value.isFinite else {
                        throw DataError(file: path, line: row.line, "expected a number in column \(column), found '\(raw)'")
                    }
                    target = .value(value)
                }
            }
            return TextExample(textA: row.fields[layout.textA], textB: layout.textB.map { row.fields[$0] },
                               target: target, file: path, line: row.line)
        }
    }
}
