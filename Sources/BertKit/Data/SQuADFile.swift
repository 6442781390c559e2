import Foundation

/// A question about a paragraph, with its gold answers (none for an unanswerable SQuAD 2.0 question).
public struct SQuADExample: Sendable {
    public struct Answer: Sendable, Equatable {
        public let text: String
        /// Offset of the answer in `context`, in Unicode scalars (code points), as SQuAD counts it.
        public let start: Int

        package init(text: String, start: Int) {
            self.text = text
            self.start = start
        }
    }

    public let id: String
    public let question: String
    public let context: String
    public let answers: [Answer]
    /// SQuAD 2.0: the question has no answer in the paragraph.
    public let isImpossible: Bool
    /// Index of the article (the Wikipedia page) the paragraph belongs to.
    public let article: Int

    package init(id: String, question: String, context: String, answers: [Answer], isImpossible: Bool, article: Int) {
        (self.id, self.question, self.context, self.answers, self.isImpossible, self.article) = (id, question, context, answers, isImpossible, article)
    }
}

/// SQuAD JSON files, v1.1 and v2.0: `{"version", "data": [{"title", "paragraphs": [{"context", "qas": [...]}]}]}`.
public enum SQuADFile {
    /// Reads the questions of the articles in `articles` (all when nil). Every answer is checked against its
    /// context: an `answer_start` that does not point at the answer text is an error naming the question.
    public static func read(path: String, articles: Range<Int>? = nil) throws -> [SQuADExample] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError(file: path, "file not found or unreadable")
        }
        return try parse(data, path: path, articles: articles)
    }

    /// Parses the bytes of a file; `path` names it in errors.
    public static func parse(_ data: Data, path: String, articles: Range<Int>? = nil) throws -> [SQuADExample] {
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              let documents = root["data"] as? [[String: Any]]
        else { throw DataError(file: path, "is not a SQuAD file: expected a JSON object with a \"data\" list") }
        var examples: [SQuADExample] = []
        let chosen = articles ?? 0..<documents.count
        guard chosen.lowerBound >= 0 && chosen.upperBound <= documents.count else {
            throw DataError(file: path, "has \(documents.count) articles; articles \(chosen) were asked for")
        }
        for a in chosen {
            guard let paragraphs = documents[a]["paragraphs"] as? [[String: Any]] else {
                throw DataError(file: path, "article \(a) has no \"paragraphs\" list")
            }
            for paragraph in paragraphs {
                guard let context = paragraph["context"] as? String, let questions = paragraph["qas"] as? [[String: Any]] else {
                    throw DataError(file: path, "a paragraph of article \(a) lacks \"context\" or \"qas\"")
                }
                let scalars = Array(context.unicodeScalars)
                for q in questions {
                    guard let id = q["id"] as? String, let question = q["question"] as? String else {
                        throw DataError(file: path, "a question of article \(a) lacks \"id\" or \"question\"")
                    }
                    var answers: [SQuADExample.Answer] = []
                    for answer in q["answers"] as? [[String: Any]] ?? [] {
                        guard let text = answer["text"] as? String, let start = answer["answer_start"] as? Int else {
                            throw DataError(file: path, "question \(id): an answer lacks \"text\" or \"answer_start\"")
                        }
                        let length = text.unicodeScalars.count
                        guard start >= 0, start + length <= scalars.count,
                              scalars[start..<(start + length)].elementsEqual(text.unicodeScalars) else {
                            throw DataError(file: path, "question \(id): answer_start \(start) does not point at \"\(text)\" in its context")
                        }
                        answers.append(.init(text: text, start: start))
                    }
                    let impossible = q["is_impossible"] as? Bool ?? false
                    if !impossible && answers.isEmpty {
                        throw DataError(file: path, "question \(id) has no answers and is not marked is_impossible")
                    }
                    examples.append(SQuADExample(id: id, question: question, context: context, answers: answers,
                                                 isImpossible: impossible, article: a))
                }
            }
        }
        return examples
    }
}
