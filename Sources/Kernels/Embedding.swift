/// Row lookups into embedding tables and their gradient.
public enum Embedding {
    /// `output[t] = table[indices[t]]`, or `output[t] += table[indices[t]]` when `accumulate` is set.
    public static func gather(
        _ table: UnsafePointer<Float>, indices: UnsafePointer<Int32>, into output: UnsafeMutablePointer<Float>,
        tokens: Int, width: Int, accumulate: Bool
    ) {
        Parallel.forRanges(tokens, minimumChunk: 64,
                           Gather(table: table, indices: indices, output: output, width: width, accumulate: accumulate))
    }

    /// `dTable[indices[t]] += dOutput[t]` for each token, except tokens whose index is `frozenRow` (as
    /// `torch.nn.Embedding(padding_idx:)`, which never updates the padding row). Tokens may share a row, so
    /// the work is split by columns: every worker owns a slice of every row.
    public static func scatterAdd(
        _ dOutput: UnsafePointer<Float>, indices: UnsafePointer<Int32>, into dTable: UnsafeMutablePointer<Float>,
        tokens: Int, width: Int, frozenRow: Int32? = nil
    ) {
        Parallel.forRanges(width, minimumChunk: 32,
                           ScatterAdd(dOutput: dOutput, indices: indices, dTable: dTable, tokens: tokens, width: width,
                                      frozen: frozenRow ?? -1))
    }

    private struct Gather: Parallel.RangeBody {
        let table: UnsafePointer<Float>
        let indices: UnsafePointer<Int32>
        let output: UnsafeMutablePointer<Float>
        let width: Int
        let accumulate: Bool

        func callAsFunction(_ tokens: Range<Int>) {
            for t in tokens {
                let row = table + Int(indices[t]) * width
                let out = output + t * width
                if accumulate {
                    for c in 0..<width { out[c] += row[c] }
                } else {
                    out.update(from: row, count: width)
                }
            }
        }
    }

    private struct ScatterAdd: Parallel.RangeBody {
        let dOutput: UnsafePointer<Float>
        let indices: UnsafePointer<Int32>
        let dTable: UnsafeMutablePointer<Float>
        let tokens: Int
        let width: Int
        let frozen: Int32

        func callAsFunction(_ columns: Range<Int>) {
            for t in 0..<tokens where indices[t] != frozen {
                let row = dTable + Int(indices[t]) * width
                let grad = dOutput + t * width
                for c in columns { row[c] += grad[c] }
            }
        }
    }
}
