/// Text part-way through tokenisation: its Unicode scalars, each with the range of the original text's scalars it
/// came from, so that every token maps back to the characters it covers. This is Hugging Face tokenizers'
/// `NormalizedString`, counted in scalars (what Python's string indices count) rather than in UTF-8 bytes.
struct NormalizedText: Sendable {
    var scalars: [Unicode.Scalar]
    /// For each scalar, the original scalars it stands for.
    var origins: [Range<Int>]
    /// Where this text begins in the original: the alignment of a scalar inserted before everything else.
    var start: Int

    /// `scalars`, which are the original text's scalars from `start` on, unchanged.
    init<S: Collection>(_ scalars: S, start: Int) where S.Element == Unicode.Scalar {
        self.scalars = Array(scalars)
        origins = (0..<self.scalars.count).map { (start + $0)..<(start + $0 + 1) }
        self.start = start
    }

    init(scalars: [Unicode.Scalar], origins: [Range<Int>], start: Int) {
        self.scalars = scalars
        self.origins = origins
        self.start = start
    }

    var isEmpty: Bool { scalars.isEmpty }
    var count: Int { scalars.count }

    /// The original scalars behind `scalars[range]`: from the first one's origin to the last one's.
    func original(_ range: Range<Int>) -> Range<Int> {
        guard !range.isEmpty else { return range }
        return origins[range.lowerBound].lowerBound..<origins[range.upperBound - 1].upperBound
    }

    /// The scalars of `range` as a text of their own (a pre-tokenizer's split).
    func slice(_ range: Range<Int>) -> NormalizedText {
        NormalizedText(scalars: Array(scalars[range]), origins: Array(origins[range]),
                       start: range.isEmpty ? start : origins[range.lowerBound].lowerBound)
    }

    /// One scalar of a transformation and how it relates to the scalars it replaces: 0 replaces the next old scalar,
    /// +1 is inserted (and takes the origin of the old scalar before it), -n replaces the next old scalar and removes
    /// the n after it.
    typealias Change = (scalar: Unicode.Scalar, change: Int)

    /// Replaces `scalars[range]` by `changes`, after dropping the first `skipping` old scalars of the range; the
    /// origins follow the rules of `Change`, exactly as Hugging Face's `transform_range`.
    mutating func transform(_ changes: [Change], in range: Range<Int>? = nil, skipping: Int = 0) {
        let range = range ?? 0..<scalars.count
        var newScalars: [Unicode.Scalar] = []
        var newOrigins: [Range<Int>] = []
        newScalars.reserveCapacity(changes.count)
        newOrigins.reserveCapacity(changes.count)
        var old = range.lowerBound + skipping
        for (scalar, change) in changes {
            let origin: Range<Int>
            if change > 0 {
                origin = old >= 1 ? origins[old - 1] : start..<start
            } else {
                origin = origins[old]
                old += 1 - change
            }
            newScalars.append(scalar)
            newOrigins.append(origin)
        }
        scalars.replaceSubrange(range, with: newScalars)
        origins.replaceSubrange(range, with: newOrigins)
    }

    /// Each scalar becomes the scalars `map` gives for it (none to drop it), all with its origin. This is the
    /// common case of `transform` (one scalar in, some out), without building the list of changes.
    mutating func map(_ map: (Unicode.Scalar, inout [Unicode.Scalar]) -> Void) {
        var newScalars: [Unicode.Scalar] = []
        var newOrigins: [Range<Int>] = []
        newScalars.reserveCapacity(scalars.count)
        newOrigins.reserveCapacity(scalars.count)
        var out: [Unicode.Scalar] = []
        for (s, origin) in zip(scalars, origins) {
            out.removeAll(keepingCapacity: true)
            map(s, &out)
            for o in out {
                newScalars.append(o)
                newOrigins.append(origin)
            }
        }
        scalars = newScalars
        origins = newOrigins
    }

    /// Puts `prefix` before the text (nothing when the text is empty); its scalars take the first scalar's origin.
    mutating func prepend(_ prefix: [Unicode.Scalar]) {
        guard let first = scalars.first, !prefix.isEmpty else { return }
        let changes = prefix.enumerated().map { ($0.element, $0.offset == 0 ? 0 : 1) } + [(first, 1)]
        transform(changes, in: 0..<1)
    }

    /// Removes whitespace at the start and/or the end.
    mutating func strip(left: Bool, right: Bool) {
        let leading = left ? scalars.prefix(while: \.properties.isWhitespace).count : 0
        guard leading < scalars.count else { scalars = []; origins = []; return }
        let trailing = right ? scalars.reversed().prefix(while: \.properties.isWhitespace).count : 0
        guard leading > 0 || trailing > 0 else { return }
        scalars = Array(scalars[leading..<(scalars.count - trailing)])
        origins = Array(origins[leading..<(origins.count - trailing)])
    }

    /// Replaces every match of `pattern` by `content`, left to right. As in the tokenizers library, the matched
    /// scalars are removed first and `content` is inserted after them, so all of it takes the origin of the last
    /// matched scalar.
    mutating func replace(_ pattern: SplitPattern, with content: [Unicode.Scalar]) {
        let matches = pattern.matches(in: scalars)
        guard !matches.isEmpty else { return }
        var newScalars: [Unicode.Scalar] = [], newOrigins: [Range<Int>] = []
        newScalars.reserveCapacity(scalars.count)
        newOrigins.reserveCapacity(scalars.count)
        var position = 0
        for match in matches {
            newScalars += scalars[position..<match.lowerBound]
            newOrigins += origins[position..<match.lowerBound]
            newScalars += content
            newOrigins += Array(repeating: origins[match.upperBound - 1], count: content.count)
            position = match.upperBound
        }
        newScalars += scalars[position...]
        newOrigins += origins[position...]
        scalars = newScalars
        origins = newOrigins
    }

    /// The changes that replace `oldCount` scalars by `new`: as many replaced as both have, the rest inserted, or
    /// the surplus old ones removed by the last new one. With nothing new, the removal goes to the change before
    /// (which is how Hugging Face writes it; `transform` then drops them after that scalar).
    static func appendReplacement(of oldCount: Int, by new: [Unicode.Scalar], to changes: inout [Change]) {
        let difference = new.count - oldCount
        for (i, s) in new.enumerated() { changes.append((s, difference > 0 && i >= new.count - difference ? 1 : 0)) }
        if difference < 0, !changes.isEmpty { changes[changes.count - 1].change += difference }
    }

    /// Splits at the matches of `pattern`, which `behavior` keeps or drops; empty pieces are left out.
    func split(_ pattern: SplitPattern, _ behavior: SplitBehavior, invert: Bool = false) -> [NormalizedText] {
        // Every scalar belongs to one run: matched or not, in order.
        var runs: [(range: Range<Int>, isMatch: Bool)] = []
        var position = 0
        for match in pattern.matches(in: scalars) {
            if position < match.lowerBound { runs.append((position..<match.lowerBound, invert)) }
            runs.append((match, !invert))
            position = match.upperBound
        }
        if position < scalars.count { runs.append((position..<scalars.count, invert)) }

        var pieces: [Range<Int>] = []
        switch behavior {
        case .removed:
            pieces = runs.filter { !$0.isMatch }.map(\.range)
        case .isolated:
            pieces = runs.map(\.range)
        case .contiguous:
            var previous: Bool? = nil
            for run in runs {
                if run.isMatch == previous, let last = pieces.popLast() {
                    pieces.append(last.lowerBound..<run.range.upperBound)
                } else {
                    pieces.append(run.range)
                }
                previous = run.isMatch
            }
        case .mergedWithPrevious:
            var previousMatched = false
            for run in runs {
                if run.isMatch && !previousMatched, let last = pieces.popLast() {
                    pieces.append(last.lowerBound..<run.range.upperBound)
                } else {
                    pieces.append(run.range)
                }
                previousMatched = run.isMatch
            }
        case .mergedWithNext:
            var previousMatched = false
            for run in runs {
                if !run.isMatch && previousMatched, let last = pieces.popLast() {
                    pieces.append(last.lowerBound..<run.range.upperBound)
                } else {
                    pieces.append(run.range)
                }
                previousMatched = run.isMatch
            }
        }
        return pieces.filter { !$0.isEmpty }.map(slice)
    }
}

/// What a split does with the text its pattern matched (Hugging Face's `SplitDelimiterBehavior`).
enum SplitBehavior: String, Sendable {
    case removed = "Removed"
    case isolated = "Isolated"
    case mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext"
    case contiguous = "Contiguous"
}
