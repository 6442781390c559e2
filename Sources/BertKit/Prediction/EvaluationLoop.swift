/// The one loop that runs a model over many sequences: training's evaluation, `finetune evaluate` and
/// `finetune predict` all go through it, as transformers' `evaluation_loop` serves its evaluation and prediction.
///
/// Sequences are batched by length (shortest first, so that little is padding), the batches are shared among
/// the processes of a group (each computes every `size`-th batch, all receive every result), and each
/// sequence's outputs come back in input order. A head supplies only its forward pass over a batch; what the
/// outputs mean (logits, a label, start and end scores, loss terms) is its own, and so are decoding and scoring.
public struct EvaluationLoop: Sendable {
    /// Sequences per forward pass.
    public let batchSize: Int
    /// The processes that share the batches.
    public let processes: ProcessGroup

    public init(batchSize: Int, processes: ProcessGroup = .single) {
        precondition(batchSize > 0, "a batch holds at least one sequence")
        self.batchSize = batchSize
        self.processes = processes
    }

    /// The same batches on this process alone (files that process 0 writes by itself after training).
    public var alone: EvaluationLoop { EvaluationLoop(batchSize: batchSize) }

    /// Each sequence's outputs, in input order. `lengths` are the sequences' token counts; `forward` runs one
    /// batch (indices into `lengths`, of similar length) and returns the outputs of each of its sequences, in
    /// the batch's order. Values travel between processes as `Double`, so `Float` outputs arrive unchanged.
    public func outputs(lengths: [Int], forward: (ArraySlice<Int>) throws -> [[Double]]) throws -> [[Double]] {
        let batches = Batches.byLength(lengths, batchSize: batchSize)
        // A batch's result is one flat message: each sequence's output count, then its outputs.
        let messages = try processes.gather(batches.count) { b in
            let rows = try forward(batches[b])
            precondition(rows.count == batches[b].count, "a forward pass returns one output row per sequence of its batch")
            var message: [Double] = []
            message.reserveCapacity(rows.reduce(rows.count) { $0 + $1.count })
            for row in rows {
                message.append(Double(row.count))
                message += row
            }
            return message
        }
        var outputs = [[Double]](repeating: [], count: lengths.count)
        for (indices, message) in zip(batches, messages) {
            var at = message.startIndex
            for i in indices {
                let n = Int(message[at])
                outputs[i] = Array(message[(at + 1)..<(at + 1 + n)])
                at += 1 + n
            }
        }
        return outputs
    }
}
