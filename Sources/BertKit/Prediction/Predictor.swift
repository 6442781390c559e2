import Foundation

/// A sequence as the encoder reads it: `[CLS] … [SEP]` token ids and their segments.
public struct ModelInput: Sendable {
    public var ids: [Int32]
    public var typeIds: [Int32]

    public init(ids: [Int32], typeIds: [Int32]? = nil) {
        self.ids = ids
        self.typeIds = typeIds ?? [Int32](repeating: 0, count: ids.count)
    }
}

/// One head's prediction, in the steps that `Predictor.predict` drives for every head alike: each input record is
/// prepared (tokenised, cut into windows), the windows of all records go through the model in batches of
/// similar length (`EvaluationLoop`), and each record's result is made from its windows' outputs, in input order.
/// `finetune predict` writes each result as a line (`run`); `FineTunedModel` returns them as values.
protocol Predictor: SendableMetatype {
    /// A record made ready for the model, with what its result needs (offsets, words, the text).
    associatedtype Example
    /// An example's result, as a program receives it (`FineTunedModel`).
    associatedtype Output

    /// Written once, before the results (a TSV file's column names).
    var header: String? { get }
    /// Sequences per forward pass.
    var batchSize: Int { get }
    /// Tokens per sequence at most, `[CLS]` and `[SEP]` included (what the activation buffers are sized for).
    var maxLength: Int { get }
    /// The model's parameters, fixed while the predictor runs (`ParameterStore.withFixedWeights`).
    var parameters: ParameterStore { get }
    /// How a TSV input's columns are read (nil: the head reads no TSV).
    var tsvColumns: ((TaskSpec, String) throws -> TSVLayout)? { get }

    /// Reads one record, the `index`-th of the input; an input the head cannot use is an error naming the
    /// record's file and line.
    func prepare(_ record: InputRecord, index: Int) throws -> Example
    /// The sequences the encoder reads for an example (several windows for a long text).
    func sequences(of example: Example) -> [ModelInput]
    /// The head's outputs for each sequence of a batch.
    func forward(_ batch: [ModelInput]) -> [[Float]]
    /// An example's result, from its sequences' outputs.
    func result(of example: Example, outputs: [[Float]]) throws -> Output
    /// The result as one output line (JSON, TSV, or a CoNLL sentence).
    func line(_ output: Output, of example: Example) -> String
}

extension Predictor {
    var header: String? { nil }
    var tsvColumns: ((TaskSpec, String) throws -> TSVLayout)? { nil }

    /// Every record's example and result, in input order, and the seconds spent in the model (from when the
    /// weights are packed). The batches are shared among `processes`; only process 0 gets the results (the others
    /// get none).
    func predict(_ records: [InputRecord], processes: ProcessGroup = .single)
        throws -> (results: [(example: Example, output: Output)], seconds: Double)
    {
        let prepared = try prepare(records)
        let loop = EvaluationLoop(batchSize: batchSize, processes: processes)
        var started = ContinuousClock.now
        let outputs = try parameters.withFixedWeights {
            started = ContinuousClock.now
            return try loop.outputs(lengths: prepared.sequences.map(\.ids.count)) { batch in
                forward(batch.map { prepared.sequences[$0] }).map { $0.map(Double.init) }
            }
        }
        let seconds = started.seconds
        guard processes.isMain else { return ([], seconds) }
        return (try results(prepared, outputs: outputs.map { $0.map { Float($0) } }), seconds)
    }

    /// The records prepared, and all their sequences in one list: what goes through the model, in
    /// `EvaluationLoop`'s batches (`predict`) or in a `PredictionQueue`'s, shared with other callers.
    func prepare(_ records: [InputRecord]) throws -> PreparedRecords<Example> {
        let examples = try records.enumerated().map { try prepare($1, index: $0) }
        var prepared = PreparedRecords(records: records, examples: examples)
        for (e, example) in examples.enumerated() {
            let windows = sequences(of: example)
            prepared.sequences += windows
            prepared.owners += Array(repeating: e, count: windows.count)
        }
        return prepared
    }

    /// Each record's example and result, from the outputs of every sequence of `prepared`, in its order.
    func results(_ prepared: PreparedRecords<Example>, outputs: [[Float]]) throws -> [(example: Example, output: Output)] {
        var perExample = [[[Float]]](repeating: [], count: prepared.examples.count)
        for (owner, output) in zip(prepared.owners, outputs) { perExample[owner].append(output) }
        if let bad = perExample.firstIndex(where: { !Self.isFinite($0) }) {
            let record = prepared.records[bad]
            throw DataError(file: record.file, line: record.line, "the model's outputs are not finite numbers (NaN or infinity)")
        }
        return try zip(prepared.examples, perExample).map { ($0, try result(of: $0, outputs: $1)) }
    }

    /// Predicts over the request's input and writes the results: for a file, all of them at once (`predict`),
    /// process 0 writing them under a temporary name then renaming; for standard input (`-`), each line's result
    /// as soon as it is ready, flushed.
    func run(_ request: PredictionRequest) throws -> PredictionReport {
        let processes = request.setup.processes
        if request.input == "-" {
            guard !processes.isDistributed else { throw UsageError("--input - reads standard input in one process; run predict alone") }
            return try stream(request)
        }
        let records = try request.records(tsvColumns: tsvColumns)
        let (results, seconds) = try predict(records, processes: processes)
        guard processes.isMain else { return PredictionReport(examples: records.count, seconds: seconds) }
        let lines = results.map { line($0.output, of: $0.example) }
        let text = ((header.map { [$0] } ?? []) + lines).map { $0 + "\n" }.joined()
        if request.output == "-" {
            FileHandle.standardOutput.write(Data(text.utf8))
        } else {
            try AtomicFile.write(Data(text.utf8), to: request.output)
        }
        return PredictionReport(examples: records.count, seconds: seconds)
    }

    /// Standard input, line by line: each line's result (or `{"error": …}` naming the line, so that the n-th
    /// output line always answers the n-th input line) is written and flushed before the next line is read.
    private func stream(_ request: PredictionRequest) throws -> PredictionReport {
        let format = request.inputFormat
        guard format == .text || format == .jsonl else { throw UsageError("--input - reads text or JSONL lines, not \(format.rawValue)") }
        // Results written as they come would leave a partial file where a finished one belongs.
        guard request.output == "-" else { throw UsageError("--input - writes its results to standard output (--output -)") }
        let output = FileHandle.standardOutput
        if let header { output.write(Data((header + "\n").utf8)) }
        var count = 0, seconds = 0.0, line = 0
        // The weights packed once for the whole stream, not once per line.
        parameters.withFixedWeights {
            while let text = readLine(strippingNewline: true) {
                line += 1
                let result: String
                do {
                    let record = try InputRecord.parse(text, format: format, file: "<stdin>", line: line)
                    let (results, time) = try predict([record])
                    seconds += time
                    result = self.line(results[0].output, of: results[0].example)
                    count += 1
                } catch {
                    FileHandle.standardError.write(Data("\(error)\n".utf8))
                    result = JSONOutput.line(["error": "\(error)"])
                }
                output.write(Data((result + "\n").utf8))  // unbuffered: the reader has it now
            }
        }
        return PredictionReport(examples: count, seconds: seconds)
    }
}

extension Predictor {
    /// Whether every output of an example is a finite number: JSON has no NaN, and a score of NaN answers nothing.
    static func isFinite(_ outputs: [[Float]]) -> Bool { outputs.allSatisfy { $0.allSatisfy(\.isFinite) } }
}

/// Probabilities from logits (softmax), in double precision: what every head's prediction reports as scores.
func softmax<Logits: Collection<Float>>(_ logits: Logits) -> [Double] {
    let top = Double(logits.max() ?? 0)
    let e = logits.map { Foundation.exp(Double($0) - top) }, total = e.reduce(0, +)
    return e.map { $0 / total }
}

/// Records made ready for a model: their examples and, in one list, every sequence the model reads for them
/// (`owners[i]` is the example that sequence `i` belongs to; an example's windows are consecutive).
struct PreparedRecords<Example> {
    let records: [InputRecord]
    let examples: [Example]
    var sequences: [ModelInput] = []
    var owners: [Int] = []
}

/// One JSON object per output line, keys sorted, so that equal results are equal lines.
enum JSONOutput {
    static func line(_ object: [String: Any]) -> String {
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }
}

extension ContinuousClock.Instant {
    /// Seconds from this instant to now.
    var seconds: Double {
        let elapsed = duration(to: .now).components
        return Double(elapsed.seconds) + Double(elapsed.attoseconds) * 1e-18
    }
}
