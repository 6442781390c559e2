import Foundation

/// Plain text in the format of BERT's original pre-training data: one sentence per line, a blank line between
/// documents.
///
/// A corpus is read whole even when parts of it are bad: a line that is not valid UTF-8 is skipped, and a
/// document left with no text is dropped; each is reported in `problems` with its file and line, so a few
/// broken lines in a large corpus do not stop a run.
public struct TextCorpus: Sendable {
    public struct Document: Sendable {
        public let sentences: [String]
        /// 1-based line of the document's first sentence.
        public let line: Int
    }

    public let path: String
    public let documents: [Document]
    /// Lines and documents that were skipped, and why.
    public let problems: [DataError]

    /// Reads the file at `path`; throws only when it cannot be read at all.
    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError(file: path, "cannot read the corpus file; expected one sentence per line, a blank line between documents")
        }
        self.path = path
        var documents: [Document] = []
        var problems: [DataError] = []
        var sentences: [String] = []
        var firstLine = 0
        var sawLines = false

        func endDocument() {
            if !sentences.isEmpty {
                documents.append(Document(sentences: sentences, line: firstLine))
            } else if sawLines {
                problems.append(DataError(file: path, line: firstLine, "document has no readable text; skipped"))
            }
            sentences = []
            sawLines = false
        }

        let bytes = [UInt8](data)
        var start = 0
        var line = 0
        while start < bytes.count {
            line += 1
            var end = start
            while end < bytes.count && bytes[end] != 0x0A { end += 1 }
            var contentEnd = end
            if contentEnd > start && bytes[contentEnd - 1] == 0x0D { contentEnd -= 1 }
            let raw = bytes[start..<contentEnd]
            start = end + 1

            guard let text = String(validating: raw, as: UTF8.self) else {
                problems.append(DataError(file: path, line: line, "not valid UTF-8; line skipped"))
                if !sawLines { firstLine = line }
                sawLines = true
                continue
            }
            let sentence = text.trimmingCharacters(in: .whitespaces)
            if sentence.isEmpty {
                endDocument()
                continue
            }
            if !sawLines { firstLine = line }
            sawLines = true
            sentences.append(sentence)
        }
        endDocument()
        self.documents = documents
        self.problems = problems
    }
}
