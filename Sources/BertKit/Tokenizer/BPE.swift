/// Byte-pair encoding as Hugging Face's tokenizers apply it: a word starts as its characters (with the continuation
/// prefix on all but the first and the end-of-word suffix on the last, when the model has them), and the adjacent
/// pair of lowest merge rank is merged, leftmost first, until no pair has a merge. A character outside the
/// vocabulary becomes its UTF-8 bytes' `<0xXX>` tokens (byte fallback) or the unknown token (consecutive ones
/// fused into one, with `fuseUnknown`).
struct BPE: Sendable {
    let vocabulary: Vocabulary
    /// Merge of the pair (left id, right id): its rank and the id of the merged token.
    let merges: [UInt64: (rank: Int32, id: Int32)]
    let unknownId: Int32?
    let continuationPrefix: [Unicode.Scalar]
    let endOfWordSuffix: [Unicode.Scalar]
    let fuseUnknown: Bool
    /// The ids of `<0x00>` ... `<0xFF>` (nil for those the vocabulary lacks), when byte fallback is on.
    let byteIds: [Int32?]?
    /// Whether a word that is a token as a whole stays one without merging.
    let ignoreMerges: Bool

    static func pair(_ left: Int32, _ right: Int32) -> UInt64 { UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right)) }

    /// One symbol of a word being merged: its token and the scalars of the word it covers, linked to its neighbours.
    private struct Symbol {
        var id: Int32
        var range: Range<Int>
        var previous: Int
        var next: Int
    }

    /// Tokens of `scalars[word]` as (id, range of scalars).
    func split(_ scalars: [Unicode.Scalar], _ word: Range<Int>) -> [(id: Int32, range: Range<Int>)] {
        if ignoreMerges, let id = vocabulary.id(scalars: Array(scalars[word])) { return [(id, word)] }
        var symbols: [Symbol] = []
        symbols.reserveCapacity(word.count)
        var unknown: Range<Int>? = nil
        func add(_ id: Int32, _ range: Range<Int>) {
            symbols.append(Symbol(id: id, range: range, previous: symbols.count - 1, next: symbols.count + 1))
        }
        var key: [Unicode.Scalar] = []
        for i in word {
            key.removeAll(keepingCapacity: true)
            if i != word.lowerBound { key += continuationPrefix }
            key.append(scalars[i])
            if i == word.upperBound - 1 { key += endOfWordSuffix }
            if let id = vocabulary.id(scalars: key) {
                if let u = unknown, let unknownId { add(unknownId, u); unknown = nil }
                add(id, i..<(i + 1))
                continue
            }
            if let byteIds {
                let bytes = Array(String(String.UnicodeScalarView(key)).utf8)
                if bytes.allSatisfy({ byteIds[Int($0)] != nil }) {
                    // A pending unknown stays pending here, as in the tokenizers library.
                    for b in bytes { add(byteIds[Int(b)]!, i..<(i + 1)) }
                    continue
                }
            }
            guard let unknownId else { continue }
            if let u = unknown {
                if fuseUnknown {
                    unknown = u.lowerBound..<(i + 1)
                    continue
                }
                add(unknownId, u)
            }
            unknown = i..<(i + 1)
        }
        if let u = unknown, let unknownId { add(unknownId, u) }
        guard symbols.count > 1 else { return symbols.map { ($0.id, $0.range) } }
        symbols[symbols.count - 1].next = -1

        // A heap of candidate merges by (rank, position); stale ones (a side already merged away) are skipped.
        var queue = MergeQueue()
        for i in 0..<(symbols.count - 1) {
            if let m = merges[Self.pair(symbols[i].id, symbols[i + 1].id)] { queue.push(rank: m.rank, position: i, id: m.id) }
        }
        while let top = queue.pop() {
            let left = symbols[top.position]
            guard !left.range.isEmpty, left.next != -1 else { continue }
            let right = symbols[left.next]
            guard let m = merges[Self.pair(left.id, right.id)], m.id == top.id else { continue }
            symbols[top.position].id = top.id
            symbols[top.position].range = left.range.lowerBound..<right.range.upperBound
            symbols[top.position].next = right.next
            symbols[left.next].range = 0..<0
            if right.next != -1 { symbols[right.next].previous = top.position }
            let merged = symbols[top.position]
            if merged.previous >= 0, let m = merges[Self.pair(symbols[merged.previous].id, merged.id)] {
                queue.push(rank: m.rank, position: merged.previous, id: m.id)
            }
            if merged.next != -1, let m = merges[Self.pair(merged.id, symbols[merged.next].id)] {
                queue.push(rank: m.rank, position: top.position, id: m.id)
            }
        }
        return symbols.filter { !$0.range.isEmpty }.map { ($0.id, $0.range) }
    }
}

/// A binary min-heap of merges ordered by rank, then position.
private struct MergeQueue {
    private var items: [(rank: Int32, position: Int, id: Int32)] = []

    private func less(_ a: Int, _ b: Int) -> Bool {
        items[a].rank != items[b].rank ? items[a].rank < items[b].rank : items[a].position < items[b].position
    }

    mutating func push(rank: Int32, position: Int, id: Int32) {
        items.append((rank, position, id))
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard less(child, parent) else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> (rank: Int32, position: Int, id: Int32)? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var parent = 0
            while true {
                let l = 2 * parent + 1, r = l + 1
                var smallest = parent
                if l < items.count && less(l, smallest) { smallest = l }
                if r < items.count && less(r, smallest) { smallest = r }
                if smallest == parent { break }
                items.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return top
    }
}
