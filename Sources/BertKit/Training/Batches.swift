/// The order of training examples in an epoch: shuffled by a seed, and (optionally) grouped so that each
/// batch holds sequences of similar length, as transformers' `group_by_length` does: shuffle, cut into
/// mega-batches of 50 batches, sort each by length, cut into batches, then shuffle the batches.
public enum Batches {
    public static func epoch(lengths: [Int], batchSize: Int, seed: UInt64, epoch: Int, groupByLength: Bool) -> [ArraySlice<Int>] {
        var generator = SeededRandom(seed: Dropout.streamSeed(seed, site: UInt64(epoch) &+ 0x5EED))
        var order = Array(lengths.indices)
        shuffle(&order, &generator)
        if groupByLength {
            let mega = 50 * batchSize
            for start in stride(from: 0, to: order.count, by: mega) {
                let range = start..<min(start + mega, order.count)
                order[range].sort { (lengths[$0], $0) > (lengths[$1], $1) }
            }
        }
        var batches = stride(from: 0, to: order.count, by: batchSize).map { order[$0..<min($0 + batchSize, order.count)] }
        if groupByLength { shuffle(&batches, &generator) }
        return batches
    }

    /// Fisher-Yates with the toolkit's own generator, so an order depends on the seed alone.
    static func shuffle<T>(_ items: inout [T], _ generator: inout SeededRandom) {
        guard items.count > 1 else { return }
        for i in stride(from: items.count - 1, to: 0, by: -1) {
            let j = Int(generator.nextBits() % UInt64(i + 1))
            items.swapAt(i, j)
        }
    }

    /// The indices of `lengths` in batches of at most `batchSize` sequences of similar length, shortest first:
    /// how evaluation and prediction visit their examples (less padding; results go back by index).
    public static func byLength(_ lengths: [Int], batchSize: Int) -> [ArraySlice<Int>] {
        let order = shortestFirst(lengths)
        return stride(from: 0, to: order.count, by: batchSize).map { order[$0..<min($0 + batchSize, order.count)] }
    }

    /// The indices of `lengths`, shortest first: the order of `byLength`'s batches, and of a caller's sequences
    /// in a `PredictionQueue` (so that a lone caller's batches are `byLength`'s).
    static func shortestFirst(_ lengths: [Int]) -> [Int] { lengths.indices.sorted { lengths[$0] < lengths[$1] } }
}
