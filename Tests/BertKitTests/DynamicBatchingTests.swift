import Foundation
import Synchronization
import Testing
import BertKit

/// The queue behind `FineTunedModel` and `SentenceEncoder`: callers at the same time share forward passes and still
/// get the bytes a lone call gets; a lone call gets `EvaluationLoop`'s batches; a large call cannot starve a small
/// one; deadlines and cancellation take a call's texts out; and `InputLengthLimit` refuses or cuts long inputs.
struct DynamicBatchingTests {
    static let classifier = Fixture.path("pipelines/text-classifier")

    func texts(_ count: Int) -> [String] {
        (0..<count).map { "text \($0) about town \($0 % 13), \(String(repeating: "very ", count: $0 % 7))nice weather." }
    }

    /// The forward passes of a model, as its queue reports them.
    /// The report hook runs on the model's worker, so it can also hold the worker at a pass (`holdAt`) until the
    /// test `release`s it: the queue's state at that moment is then the test's to arrange, whatever the scheduler does.
    final class Reports: Sendable {
        private let reports = Mutex<[BatchReport]>([])
        private let hold = Mutex<(pass: Int?, held: Bool)>((nil, false))
        private let released = DispatchSemaphore(value: 0)
        func append(_ report: BatchReport) {
            let count = reports.withLock { $0.append(report); return $0.count }
            let holding = hold.withLock { state in
                if state.pass == count { state.held = true }
                return state.held
            }
            if holding { released.wait() }
        }
        func holdAt(pass: Int) { hold.withLock { $0 = (pass, false) } }
        /// Waits (without blocking a thread of the cooperative pool) until the worker is held.
        func waitHeld() async throws {
            while !hold.withLock({ $0.held }) { try await Task.sleep(for: .milliseconds(1)) }
        }
        func release() {
            hold.withLock { $0 = (nil, false) }
            released.signal()
        }
        var all: [BatchReport] { reports.withLock { $0 } }
        var count: Int { reports.withLock { $0.count } }
        func clear() { reports.withLock { $0.removeAll() } }
    }

    /// `body` on a thread of its own, awaited: a blocking call must not hold one of the cooperative pool's threads
    /// (as many as cores), which the tests running alongside need.
    func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in Thread { continuation.resume(with: Result { try body() }) }.start() }
    }

    /// A model whose forward passes are recorded.
    func makeModel(batchSize: Int, precision: Precision = .float32, maxTokens: Int? = nil) throws -> (FineTunedModel, Reports) {
        let reports = Reports()
        var options = Hyperparameters()
        options[PredictionOptions.batchSize] = batchSize
        let model = try FineTunedModel(folder: Self.classifier, precision: precision, options: options,
                                       batching: Batching(maxTokens: maxTokens) { reports.append($0) })
        return (model, reports)
    }

    @Test func aLoneCallGetsTheBatchesOfEvaluationLoop() throws {
        let (model, reports) = try makeModel(batchSize: 4)
        let texts = texts(10)
        _ = try model.predictionLines(texts.map { ["text": $0] })
        let lengths = texts.map { model.tokenizer.encode($0, maxLength: 40).ids.count }
        let expected = Batches.byLength(lengths, batchSize: 4).map { ($0.count, $0.reduce(0) { $0 + lengths[$1] }) }
        let seen = reports.all.map { ($0.sequences, $0.tokens) }
        #expect(seen.map(\.0) == expected.map(\.0) && seen.map(\.1) == expected.map(\.1))
    }

    @Test(arguments: [Precision.float32, .int8])
    func callersAtOnceShareBatchesAndGetALoneCallsBytes(precision: Precision) throws {
        let (model, reports) = try makeModel(batchSize: 2, precision: precision)
        let calls = (0..<8).map { c in texts(40).enumerated().filter { $0.offset % 8 == c || $0.offset % 5 == c }.map { ["text": $0.element] } }
        let alone = try calls.map { try model.predictionLines($0) }
        reports.clear()
        // Threads, not tasks: the cooperative pool has as many threads as cores, and each call blocks one.
        let answers = Mutex([Int: [String]]())
        let group = DispatchGroup()
        for i in 0..<(calls.count * 4) {
            group.enter()
            Thread {
                let lines = try? model.predictionLines(calls[i % calls.count])
                answers.withLock { $0[i] = lines }
                group.leave()
            }.start()
        }
        group.wait()
        for (i, lines) in answers.withLock({ $0 }) { #expect(lines == alone[i % calls.count], "call \(i)") }
        #expect(reports.all.contains { $0.callers > 1 && $0.sequences > 1 }, "some forward pass mixed the texts of several calls")
    }

    @Test func aSmallCallIsNotStarvedByALargeOne() async throws {
        let (model, reports) = try makeModel(batchSize: 1)
        reports.holdAt(pass: 1)
        let records = texts(3000).map { ["text": $0] }
        async let large = onThread { try model.predictionLines(records) }
        try await reports.waitHeld()  // the large call's first pass is done and its other 2999 texts wait
        async let small = onThread { try model.classify("a small request") }
        try await Task.sleep(for: .milliseconds(200))
        reports.release()
        _ = try await small
        _ = try await large
        // The passes taken while both calls waited: in turns the small call's text is in the first or second of them;
        // in arrival order it would have waited for the large call's thousands.
        let both = reports.all.enumerated().filter { $0.element.callers == 2 }
        #expect(!both.isEmpty && both.count <= 2, "\(both.count) passes with both calls waiting")
        #expect(both.allSatisfy { $0.element.waiting > 1000 }, "the large call still had thousands of texts waiting")
    }

    @Test func deadlinesAndCancellationTakeACallsTextsOut() async throws {
        let (model, reports) = try makeModel(batchSize: 1)
        await #expect(throws: QueueError.deadlinePassed) {
            try await model.predictionLines([["text": "late"]], deadline: .now - .seconds(1))
        }
        let start = reports.count
        reports.holdAt(pass: start + 3)
        let records = texts(2000).map { ["text": $0] }
        let call = Task { try await model.predictionLines(records, deadline: nil) }
        try await reports.waitHeld()
        call.cancel()
        await #expect(throws: QueueError.cancelled) { try await call.value }
        reports.release()
        #expect(try model.predictionLines([["text": "after"]]).count == 1, "the model goes on serving")
        #expect(reports.count - start == 4, "three passes of the cancelled call and the next call's: \(reports.count - start)")
    }

    @Test func aTokenBudgetTooSmallOrTooLargeIsRefused() throws {
        #expect { _ = try makeModel(batchSize: 4, maxTokens: 10) } throws: { "\($0)".contains("cannot hold one sequence of the model's 40") }
        #expect { _ = try makeModel(batchSize: 4, maxTokens: 1000) } throws: { "\($0)".contains("raise batch_size") }
        let (model, reports) = try makeModel(batchSize: 8, maxTokens: 40)
        _ = try model.predictionLines(texts(12).map { ["text": $0] })
        #expect(reports.all.allSatisfy { $0.tokens <= 40 } && reports.count > 2)
    }

    @Test func inputLengthLimitRefusesOrCutsAtWholeWords() throws {
        let tokenizer = try Tokenizer(directory: Fixture.path("tiny-bert"))
        let limit = InputLengthLimit(maxTokens: 12)
        let short: [String: Any] = ["text": "a short text"]
        let long: [String: Any] = ["text": "the weather in paris was lovely today, and tomorrow it will be even better than today",
                                   "text_pair": "a"]
        #expect(try limit.apply(to: [short], tokenizer: tokenizer, truncate: false)[0] as! [String: String] == short as! [String: String])
        #expect { _ = try limit.apply(to: [short, long], tokenizer: tokenizer, truncate: false) } throws: {
            guard let error = $0 as? InputTooLong else { return false }
            return error.index == 1 && error.limit == 12 && error.tokens > 12
        }
        let cut = try limit.apply(to: [short, long], tokenizer: tokenizer, truncate: true)[1] as! [String: String]
        let text = cut["text"]!, pair = cut["text_pair"]!
        #expect(pair == "a", "the longest text loses words first")
        #expect((long["text"] as! String).hasPrefix(text) && !text.hasSuffix(" "))
        let tokens = tokenizer.tokenize(text).count + tokenizer.tokenize(pair).count
        #expect(tokens <= 12)
        // Whole words: one more word would not fit.
        let words = (long["text"] as! String).split(separator: " ")
        let kept = text.split(separator: " ").count
        #expect(tokenizer.tokenize(words.prefix(kept + 1).joined(separator: " ")).count + tokenizer.tokenize(pair).count > 12)
    }
}
