import Foundation
import Synchronization

/// How a loaded model batches the sequences of callers that ask at the same time (dynamic batching).
public struct Batching: Sendable {
    /// The most tokens in one forward pass; nil: `batch_size` sequences of the model's length, as many as its
    /// activation buffers hold. Smaller budgets answer a lone short request sooner and fill the cores less.
    public var maxTokens: Int?
    /// Called on the model's worker after each forward pass (a server's metrics); it should return at once.
    public var report: (@Sendable (BatchReport) -> Void)?

    public init(maxTokens: Int? = nil, report: (@Sendable (BatchReport) -> Void)? = nil) {
        self.maxTokens = maxTokens
        self.report = report
    }
}

/// One forward pass of a model's queue.
public struct BatchReport: Sendable {
    /// Sequences in the pass, and their tokens (no padding: the encoder packs them).
    public let sequences, tokens: Int
    /// The pass's wall time.
    public let seconds: Double
    /// Sequences still waiting once the pass was taken from the queue.
    public let waiting: Int
    /// Calls whose sequences are waiting or in the pass.
    public let callers: Int
}

/// Why a queued call ended without its results.
public enum QueueError: Error, CustomStringConvertible, Sendable {
    /// Its deadline passed before its sequences had gone through the model.
    case deadlinePassed
    /// Its caller cancelled it (a server's client disconnected).
    case cancelled

    public var description: String {
        switch self {
        case .deadlinePassed: "the request's deadline passed before the model got to all of its texts"
        case .cancelled: "the request was cancelled"
        }
    }
}

/// The model of a `FineTunedModel` or `SentenceEncoder` shared by every caller: each call's records are prepared
/// on the caller's thread, its sequences wait here, and one worker thread runs them through the model in batches
/// that mix the sequences of all waiting calls, then each call makes its results from its own outputs.
///
/// A batch holds at most `batch_size` sequences (what the activation buffers hold) and `maxTokens` tokens. It is
/// filled in turns (round-robin over the waiting calls, in arrival order): one sequence of the call at the front,
/// shortest first within a call, then that call goes to the back. So a call with a thousand texts cannot starve a
/// call with one, whose sequence is in the next batch, and calls of one text each are served first come, first
/// served. A lone call gets `EvaluationLoop`'s batches exactly
/// (`Batches.byLength`), so its numbers are `finetune predict`'s; in fp32 and int8 a sequence's outputs do not
/// depend on the other sequences of its batch either (rows are packed, not padded, and products are row by row),
/// so mixed batches give the same bytes. (Sorting a batch by length would buy nothing for that reason.)
///
/// The worker thread is started when a call arrives and no worker is running, and ends when nothing has waited
/// for half a second, so a model that nobody calls holds no thread.
final class PredictionQueue<P: Predictor>: @unchecked Sendable {
    // `predictor.forward` writes the model's activation buffers: only the worker calls it. `prepare` and
    // `results` read the tokenizer and the labels alone, and run on the callers' threads.
    private let predictor: P
    private let maxSequences, maxTokens: Int
    private let report: (@Sendable (BatchReport) -> Void)?
    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)
    /// How long the worker waits for work before it ends.
    static var idleLife: DispatchTimeInterval { .milliseconds(500) }

    /// A call waiting for its outputs.
    private struct Job {
        let ticket: Ticket
        let sequences: [ModelInput]
        /// The sequences, shortest first; `taken` of them are in a batch or done.
        let order: [Int]
        var taken = 0
        var outputs: [[Float]]
        var unanswered: Int
        let deadline: ContinuousClock.Instant?
        let finish: @Sendable (Result<[[Float]], QueueError>) -> Void
    }

    private struct State {
        var jobs: [Job] = []
        /// Whether a worker thread exists, and whether it waits for work (`wake` rouses it).
        var working = false, idle = false
        /// The calls with sequences not yet in a batch, in the order of their next turn: each turn takes one
        /// sequence and sends the call to the back, so every waiting call gets a sequence per round.
        var turns: [Ticket] = []
    }

    /// A call's handle, to cancel it; read and written only under the queue's lock.
    final class Ticket: @unchecked Sendable {
        fileprivate var cancelled = false
    }

    /// `batching.maxTokens` must leave room for the longest sequence the predictor makes (its `maxLength`).
    init(_ predictor: P, batching: Batching) throws {
        let maxLength = predictor.maxLength, full = predictor.batchSize * maxLength
        let maxTokens = batching.maxTokens ?? full
        guard maxTokens >= maxLength else {
            throw UsageError("a batch of \(maxTokens) tokens cannot hold one sequence of the model's \(maxLength); give at least \(maxLength)")
        }
        guard maxTokens <= full else {
            throw UsageError("a batch of \(maxTokens) tokens is more than the \(predictor.batchSize) sequences of \(maxLength) tokens the model's buffers hold (\(full)); raise batch_size")
        }
        self.predictor = predictor
        self.maxSequences = predictor.batchSize
        self.maxTokens = maxTokens
        report = batching.report
    }

    /// Every record's example and result, in order, after its sequences went through the model (blocking).
    func predict(_ records: [InputRecord], deadline: ContinuousClock.Instant? = nil) throws -> [(example: P.Example, output: P.Output)] {
        let prepared = try predictor.prepare(records)
        let done = DispatchSemaphore(value: 0)
        let outcome = Mutex<Result<[[Float]], QueueError>?>(nil)
        submit(prepared.sequences, ticket: Ticket(), deadline: deadline) { result in
            outcome.withLock { $0 = result }
            done.signal()
        }
        done.wait()
        return try predictor.results(prepared, outputs: try outcome.withLock { $0! }.get())
    }

    /// The same, awaited: cancelling the task takes the call's waiting sequences out of the queue.
    func predict(_ records: [InputRecord], deadline: ContinuousClock.Instant? = nil) async throws -> [(example: P.Example, output: P.Output)] {
        let prepared = try predictor.prepare(records)
        let ticket = Ticket(), sequences = UncheckedSendable(prepared.sequences)
        let outputs = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<[[Float]], any Error>) in
                submit(sequences.value, ticket: ticket, deadline: deadline) { continuation.resume(with: $0.mapError { $0 }) }
            }
        } onCancel: {
            cancel(ticket)
        }
        return try predictor.results(prepared, outputs: outputs)
    }

    /// The records as the results' lines (`Predictor.line`), as `finetune predict` writes them.
    func lines(_ records: [InputRecord], deadline: ContinuousClock.Instant?) async throws -> [String] {
        try await predict(records, deadline: deadline).map { predictor.line($0.output, of: $0.example) }
    }

    func lines(_ records: [InputRecord]) throws -> [String] {
        try predict(records).map { predictor.line($0.output, of: $0.example) }
    }

    /// Queues a call's sequences; `finish` gets their outputs in order (on the worker's thread).
    private func submit(_ sequences: [ModelInput], ticket: Ticket, deadline: ContinuousClock.Instant?,
                        finish: @escaping @Sendable (Result<[[Float]], QueueError>) -> Void) {
        if sequences.isEmpty { return finish(.success([])) }
        let order = Batches.shortestFirst(sequences.map(\.ids.count))
        let startWorker = state.withLock { state -> Bool? in
            if ticket.cancelled { return nil }
            state.jobs.append(Job(ticket: ticket, sequences: sequences, order: order, outputs: Array(repeating: [], count: sequences.count),
                                  unanswered: sequences.count, deadline: deadline, finish: finish))
            state.turns.append(ticket)
            defer { state.working = true }
            if state.working && state.idle {
                state.idle = false
                wake.signal()
            }
            return !state.working
        }
        switch startWorker {
        case nil: finish(.failure(.cancelled))
        case true?:
            let worker = Thread { self.work() }
            worker.name = "bertkit.queue"
            worker.start()
        case false?: break
        }
    }

    /// Takes a cancelled call's sequences out of the queue (those already in a batch finish unseen).
    private func cancel(_ ticket: Ticket) {
        let job = state.withLock { state -> Job? in
            ticket.cancelled = true
            return state.jobs.firstIndex { $0.ticket === ticket }.map { state.jobs.remove(at: $0) }
        }
        job?.finish(.failure(.cancelled))
    }

    /// The worker: batches until nothing has waited for `idleLife`.
    private func work() {
        while true {
            var expired: [Job] = []
            let (batch, waiting, callers) = state.withLock { state -> ([(ticket: Ticket, sequence: Int, input: ModelInput)], Int, Int) in
                let now = ContinuousClock.now
                expired = state.jobs.filter { $0.deadline.map { $0 < now } ?? false }
                state.jobs.removeAll { $0.deadline.map { $0 < now } ?? false }
                let batch = Self.take(&state, maxSequences: maxSequences, maxTokens: maxTokens)
                state.idle = batch.isEmpty
                return (batch, state.jobs.reduce(0) { $0 + $1.order.count - $1.taken }, state.jobs.count)
            }
            for job in expired { job.finish(.failure(.deadlinePassed)) }
            if batch.isEmpty {
                // A thread that stays a moment answers the next call sooner than a new one; one that stays for ever
                // would outlive the model.
                if wake.wait(timeout: .now() + Self.idleLife) == .timedOut {
                    let done = state.withLock { state -> Bool in
                        guard state.idle else { return false }
                        state.working = false
                        return true
                    }
                    if done { return }
                }
                continue
            }
            let started = ContinuousClock.now
            let outputs = predictor.forward(batch.map(\.input))
            let seconds = started.seconds
            report?(BatchReport(sequences: batch.count, tokens: batch.reduce(0) { $0 + $1.input.ids.count },
                                seconds: seconds, waiting: waiting, callers: callers))
            let finished = state.withLock { state -> [Job] in
                var finished: [Job] = []
                for (entry, output) in zip(batch, outputs) {
                    guard let j = state.jobs.firstIndex(where: { $0.ticket === entry.ticket }) else { continue }
                    state.jobs[j].outputs[entry.sequence] = output
                    state.jobs[j].unanswered -= 1
                    if state.jobs[j].unanswered == 0 { finished.append(state.jobs.remove(at: j)) }
                }
                return finished
            }
            for job in finished { job.finish(.success(job.outputs)) }
        }
    }

    /// The next batch: turn by turn, the sequence of the call at the front (its shortest not yet taken), the call
    /// then going to the back, until the batch is full. A call whose next sequence does not fit the token budget
    /// sits this batch out and keeps its place at the front.
    private static func take(_ state: inout State, maxSequences: Int, maxTokens: Int) -> [(ticket: Ticket, sequence: Int, input: ModelInput)] {
        var batch: [(ticket: Ticket, sequence: Int, input: ModelInput)] = []
        var tokens = 0, sittingOut: [Ticket] = []
        while batch.count < maxSequences, !state.turns.isEmpty {
            let ticket = state.turns.removeFirst()
            // A call cancelled or past its deadline has left `jobs`; its ticket leaves the turns here.
            guard let j = state.jobs.firstIndex(where: { $0.ticket === ticket }) else { continue }
            let job = state.jobs[j], s = job.order[job.taken], input = job.sequences[s]
            guard tokens + input.ids.count <= maxTokens else {
                sittingOut.append(ticket)
                continue
            }
            batch.append((ticket, s, input))
            tokens += input.ids.count
            state.jobs[j].taken += 1
            if state.jobs[j].taken < job.order.count { state.turns.append(ticket) }
        }
        state.turns.insert(contentsOf: sittingOut, at: 0)
        return batch
    }
}

/// A value handed between threads that Swift cannot prove safe to share; each use says why it is.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// What every head's queue answers alike, whatever its predictor: the lines `finetune predict` writes.
protocol LineQueue: Sendable {
    func lines(_ records: [InputRecord]) throws -> [String]
    func lines(_ records: [InputRecord], deadline: ContinuousClock.Instant?) async throws -> [String]
}

extension PredictionQueue: LineQueue {}
