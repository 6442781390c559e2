import Foundation

/// A task as its file under `Tasks/` describes it: which plugin (head) it uses, where its data is, which
/// columns hold the texts and the target, its labels (or regression) and its metrics. A new GLUE-style task is
/// a new file, not new code.
public struct TaskSpec: Decodable, Sendable {
    /// How one split is laid out in its file. Columns are 0-based; a negative column counts from the end.
    public struct Split: Decodable, Sendable {
        public let file: String
        /// TSV (sequence classification): whether the first line is a header.
        public var header: Bool = true
        /// TSV: the columns of text A, text B and the label (absent for unlabelled test data).
        public var textA: Int? = nil
        public var textB: Int? = nil
        public var label: Int? = nil
        /// CoNLL (token classification): the columns of the word and of its tag.
        public var tokenColumn: Int = 0
        public var tagColumn: Int = -1
        /// SQuAD (span QA): the articles of the file that make up this split, `[first, end)`; all when absent.
        public var articles: [Int]? = nil
        /// Plain-text corpus (pre-training): the documents of the file that make up this split, `[first, end)`.
        public var documents: [Int]? = nil

        enum CodingKeys: String, CodingKey {
            case file, header, textA, textB, label, tokenColumn, tagColumn, articles, documents
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            file = try c.decode(String.self, forKey: .file)
            header = try c.decodeIfPresent(Bool.self, forKey: .header) ?? true
            textA = try c.decodeIfPresent(Int.self, forKey: .textA)
            textB = try c.decodeIfPresent(Int.self, forKey: .textB)
            label = try c.decodeIfPresent(Int.self, forKey: .label)
            tokenColumn = try c.decodeIfPresent(Int.self, forKey: .tokenColumn) ?? 0
            tagColumn = try c.decodeIfPresent(Int.self, forKey: .tagColumn) ?? -1
            articles = try c.decodeIfPresent([Int].self, forKey: .articles)
            documents = try c.decodeIfPresent([Int].self, forKey: .documents)
        }
    }

    public let name: String
    public let plugin: String
    public var description: String? = nil
    /// Folder of the data files: relative to the task file, or, for `externalData` tasks, to the data
    /// directory the user names (`--data-dir`, or the environment variable `BERTKIT_DATA_DIR`).
    public let dataDirectory: String
    /// Data the repository may not carry (its licence forbids redistribution).
    public var externalData: Bool = false
    /// For external data: how to get it, shown when it is missing.
    public var obtain: String? = nil
    /// Token classification: the tag scheme of the files (IOB1 files are converted to IOB2).
    public var scheme: TagScheme = .iob2
    /// Hyper-parameters this task starts from (a SQuAD task wants longer sequences than a GLUE one); an
    /// experiment and flags override them.
    public var hyperparameters: HyperparameterOverrides = [:]
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
        case name, plugin, description, dataDirectory, externalData, obtain, scheme, splits, labels, metrics, mainMetric
        case hyperparameters
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        plugin = try c.decode(String.self, forKey: .plugin)
        description = try c.decodeIfPresent(String.self, forKey: .description)
        dataDirectory = try c.decode(String.self, forKey: .dataDirectory)
        externalData = try c.decodeIfPresent(Bool.self, forKey: .externalData) ?? false
        obtain = try c.decodeIfPresent(String.self, forKey: .obtain)
        scheme = try c.decodeIfPresent(TagScheme.self, forKey: .scheme) ?? .iob2
        splits = try c.decode([String: Split].self, forKey: .splits)
        labels = try c.decodeIfPresent([String].self, forKey: .labels)
        metrics = try c.decode([String].self, forKey: .metrics)
        mainMetric = try c.decode(String.self, forKey: .mainMetric)
        hyperparameters = try c.decodeIfPresent(HyperparameterOverrides.self, forKey: .hyperparameters) ?? [:]
    }

    /// The plugins a task file can name, and the metrics each reports.
    public static let plugins: [String: Set<String>] = [
        "sequence-classification": Metrics.known,
        "token-classification": ["f1", "precision", "recall", "accuracy"],
        "span-qa": ["exact_match", "f1", "has_answer_exact_match", "has_answer_f1", "no_answer_exact_match", "no_answer_f1"],
        "pretraining": ["mlm_accuracy", "mlm_loss", "perplexity", "nsp_accuracy", "nsp_loss"],
    ]

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
        guard let known = Self.plugins[plugin] else {
            throw DataError(file: path, "unknown plugin '\(plugin)'; expected one of \(Self.plugins.keys.sorted().joined(separator: ", "))")
        }
        for metric in metrics where !known.contains(metric) {
            throw DataError(file: path, "unknown metric '\(metric)' for \(plugin); known: \(known.sorted().joined(separator: ", "))")
        }
        if plugin == "sequence-classification", let (name, _) = splits.first(where: { $0.value.textA == nil }) {
            throw DataError(file: path, "split '\(name)' needs a textA column")
        }
        do { _ = try Hyperparameters().applying(hyperparameters) } catch {
            throw DataError(file: path, "hyperparameters: \(error)")
        }
        if plugin == "token-classification" && labels == nil {
            throw DataError(file: path, "a token classification task needs its labels")
        }
        guard metrics.contains(mainMetric) else {
            throw DataError(file: path, "mainMetric '\(mainMetric)' is not one of metrics \(metrics)")
        }
        if let labels, labels.count < 2 || Set(labels).count != labels.count {
            throw DataError(file: path, "labels must be at least two distinct names")
        }
    }

    /// Path of a split's file. External data is looked up under `dataDirectory` (else `BERTKIT_DATA_DIR`).
    public func file(of split: String, dataDirectory root: String? = nil) throws -> String {
        guard let s = splits[split] else {
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
        let file = ((base as NSString).appendingPathComponent(dataDirectory) as NSString).appendingPathComponent(s.file)
        if externalData && !FileManager.default.fileExists(atPath: file) {
            throw DataError(file: file, "file not found. \(obtain ?? "")")
        }
        return file
    }

    /// Reads a split of a SQuAD-style task: the questions of its articles.
    public func questions(_ split: String, dataDirectory root: String? = nil, file overridePath: String? = nil) throws -> [SQuADExample] {
        let path = try overridePath ?? file(of: split, dataDirectory: root)
        let articles = overridePath == nil ? splits[split]?.articles : nil
        if let articles, articles.count != 2 || articles[0] > articles[1] {
            throw DataError(file: self.path, "split '\(split)': articles must be [first, end), found \(articles)")
        }
        return try SQuADFile.read(path: path, articles: articles.map { $0[0]..<$0[1] })
    }

    /// Reads a split of a CoNLL-style task: its sentences, tags converted to IOB2 and checked against `labels`.
    public func sentences(_ split: String, dataDirectory root: String? = nil, file overridePath: String? = nil) throws -> [TaggedSentence] {
        let path = try overridePath ?? file(of: split, dataDirectory: root)
        let layout = splits[split]!
        return try CoNLLFile.read(path: path, tokenColumn: layout.tokenColumn, tagColumn: layout.tagColumn,
                                  scheme: scheme, labels: labels ?? [])
    }

    /// Reads a split's examples. A line with too few fields, a label not in `labels`, or a value that is not
    /// a number ends the read with an error naming the file and line.
    public func examples(_ split: String, file overridePath: String? = nil) throws -> [TextExample] {
        guard let layout = splits[split] else { _ = try file(of: split); return [] }
        let path = try overridePath ?? file(of: split)
        let table = try TSVFile(path: path, hasHeader: layout.header)
        guard let textA = layout.textA else { throw DataError(file: self.path, "split '\(split)' has no textA column") }
        let needed = [textA, layout.textB, layout.label].compactMap { $0 }.max()! + 1
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
            return TextExample(textA: row.fields[textA], textB: layout.textB.map { row.fields[$0] },
                               target: target, file: path, line: row.line)
        }
    }
}
