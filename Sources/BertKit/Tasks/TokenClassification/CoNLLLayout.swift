import Foundation

/// How a split of a token classification task is laid out: a CoNLL column file, with the columns of the word
/// and of its tag (0-based; a negative column counts from the end of the line).
public struct CoNLLLayout: TaskFileSection {
    public var tokenColumn = 0
    public var tagColumn = -1

    public static var keys: Set<String> { ["tokenColumn", "tagColumn"] }

    enum CodingKeys: String, CodingKey { case tokenColumn, tagColumn }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        tokenColumn = try c.decodeIfPresent(Int.self, forKey: .tokenColumn) ?? 0
        tagColumn = try c.decodeIfPresent(Int.self, forKey: .tagColumn) ?? -1
    }
}

/// A token classification task file's own field: the tag scheme of its files (IOB1 files are converted to IOB2).
public struct CoNLLSettings: TaskFileSection {
    public var scheme = TagScheme.iob2

    public static var keys: Set<String> { ["scheme"] }

    enum CodingKeys: String, CodingKey { case scheme }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        scheme = try c.decodeIfPresent(TagScheme.self, forKey: .scheme) ?? .iob2
    }
}

extension TaskSetup {
    /// The sentences of a split of a CoNLL-style task, tags converted to IOB2 and checked against its labels.
    func sentences(_ split: String) throws -> [TaggedSentence] {
        let (layout, file, _) = try self.split(split, as: CoNLLLayout.self)
        return try CoNLLFile.read(path: file, tokenColumn: layout.tokenColumn, tagColumn: layout.tagColumn,
                                  scheme: spec.settings(as: CoNLLSettings.self).scheme, labels: spec.labels ?? [])
    }
}
