/// The examples of a training batch that one process computes: the whole batch when a process trains alone,
/// a contiguous share of it when a group of processes does (`ProcessGroup`).
///
/// A task computes its share so that the shares' losses and gradients add up to exactly what one process
/// computes over the whole batch:
/// - the loss is normalised by the whole batch's count (examples, labelled tokens, masked positions);
/// - sequences are padded to the whole batch's longest (`paddedLength`);
/// - dropout numbers its draws from the share's position in the batch (`DropoutMode.firstSequence`, which the
///   trainer sets).
/// The same seed then gives the same masks, and the same run, at any number of processes.
public struct BatchShare: Sendable {
    /// Every example of the batch, in order.
    public let batch: ArraySlice<Int>
    /// The positions in `batch` of this process's examples.
    public let positions: Range<Int>

    public init(batch: ArraySlice<Int>, positions: Range<Int>) {
        precondition(positions.lowerBound >= 0 && positions.upperBound <= batch.count)
        self.batch = batch
        self.positions = positions
    }

    /// The whole batch, for one process.
    public init(whole batch: ArraySlice<Int>) {
        self.init(batch: batch, positions: 0..<batch.count)
    }

    /// Process `rank`'s share of `batch` among `processes`: contiguous, in rank order, sizes differing by at
    /// most one (a process may get none when the batch is smaller than the group).
    public init(_ batch: ArraySlice<Int>, rank: Int, of processes: Int) {
        let n = batch.count
        self.init(batch: batch, positions: (n * rank / processes)..<(n * (rank + 1) / processes))
    }

    /// This process's examples.
    public var examples: ArraySlice<Int> {
        batch[(batch.startIndex + positions.lowerBound)..<(batch.startIndex + positions.upperBound)]
    }

    public var isEmpty: Bool { positions.isEmpty }

    /// The length of the batch's longest sequence, which every sequence of the share is padded to.
    public func paddedLength(_ length: (Int) -> Int) -> Int {
        batch.map(length).max() ?? 1
    }
}
