import Kernels

/// Sums a parameter store's gradients across a group of processes, once each has accumulated its share of a
/// step.
///
/// Lookup tables (`Parameter.isLookupTable`) are summed over the rows that some process wrote, and every other
/// parameter whole. A batch touches a few hundred of BERT's 30,522 word embeddings, and the word table holds
/// about half of MiniLM's parameters: summing it whole would double the bytes on the wire, and make its
/// gradient's pages resident (the store gives them back after each step).
final class GradientReduction {
    private let store: ParameterStore
    /// Runs of neighbouring parameters that are summed whole.
    private let dense: [(offset: Int, count: Int)]
    private let tables: [Parameter]
    /// The rows of a table being summed, packed; it grows to the largest union of rows seen.
    private var packed: [Float] = []
    /// Per table row, whether some process wrote it this step; cleared again as the rows are listed.
    private var written: [Bool] = []
    /// This process's written rows, then the union, in row order; reused from step to step.
    private var rows: [Int32] = []

    init(_ store: ParameterStore) {
        self.store = store
        var dense: [(offset: Int, count: Int)] = []
        var tables: [Parameter] = []
        for p in store.parameters {
            if p.isLookupTable && p.shape.count == 2 {
                tables.append(p)
            } else if let last = dense.last, last.offset + last.count == p.offset {
                dense[dense.count - 1].count += p.count
            } else {
                dense.append((p.offset, p.count))
            }
        }
        (self.dense, self.tables) = (dense, tables)
    }

    /// Replaces every gradient by its sum over `processes`.
    func sum(over processes: ProcessGroup) throws {
        let gradients = store.gradients.baseAddress!
        for span in dense { try processes.sum(gradients + span.offset, count: span.count) }
        for table in tables { try sumRows(of: table, over: processes) }
    }

    /// Sums the rows of `table` that any process wrote: each process names its non-zero rows, and all sum the
    /// union of them, packed.
    private func sumRows(of table: Parameter, over processes: ProcessGroup) throws {
        let width = table.shape[1]
        rows.removeAll(keepingCapacity: true)
        for row in 0..<table.shape[0] where isNonzero(table.gradient + row * width, count: width) { rows.append(Int32(row)) }
        let lists = try processes.allGather(rows.withUnsafeBytes { Array($0) })
        if written.count < table.shape[0] { written = [Bool](repeating: false, count: table.shape[0]) }
        for list in lists { list.withUnsafeBytes { for row in $0.bindMemory(to: Int32.self) { written[Int(row)] = true } } }
        rows.removeAll(keepingCapacity: true)
        for row in 0..<table.shape[0] where written[row] {
            rows.append(Int32(row))
            written[row] = false
        }
        guard !rows.isEmpty else { return }
        if packed.count < rows.count * width { packed = [Float](repeating: 0, count: rows.count * width) }
        try packed.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!
            for (i, row) in rows.enumerated() { (base + i * width).update(from: table.gradient + Int(row) * width, count: width) }
            try processes.sum(base, count: rows.count * width)
            for (i, row) in rows.enumerated() { (table.gradient + Int(row) * width).update(from: base + i * width, count: width) }
        }
    }
}
