import Foundation
import Testing
import BertKit

/// The rules that let processes share a batch (`BatchShare`): shares split the batch, and a share computed
/// alone, padded to the batch's length with dropout drawn from its position, gives exactly the batch's rows.
struct BatchShareTests {
    @Test func sharesSplitTheBatchInOrderAndEvenly() {
        let batch = [7, 3, 9, 1, 4][...]
        for processes in 1...7 {
            let shares = (0..<processes).map { BatchShare(batch, rank: $0, of: processes) }
            #expect(shares.flatMap { Array($0.examples) } == Array(batch))
            let sizes = shares.map(\.positions.count)
            #expect(sizes.max()! - sizes.min()! <= 1)
        }
        let share = BatchShare(batch, rank: 1, of: 2)
        #expect(share.positions == 2..<5 && share.examples == [9, 1, 4][...])
        #expect(share.paddedLength { $0 * 10 } == 90, "the whole batch's longest")
    }

    @Test func aLauncherIsRecognisedByItsVariables() {
        #expect(!ProcessGroup.isOneOfSeveral([:]))
        #expect(!ProcessGroup.isOneOfSeveral(["OMPI_COMM_WORLD_SIZE": "1"]))
        #expect(ProcessGroup.isOneOfSeveral(["OMPI_COMM_WORLD_SIZE": "4"]))
        #expect(ProcessGroup.isOneOfSeveral(["PMIX_RANK": "0", "SLURM_NTASKS": "2"]))
        #expect(ProcessGroup.isLauncherVariable("OMPI_COMM_WORLD_RANK") && !ProcessGroup.isLauncherVariable("BERTKIT_THREADS"))
    }

    static let lengths = [9, 14, 6, 11]
    static func sequences() -> [[Int32]] {
        lengths.enumerated().map { s, n in (0..<n).map { Int32(($0 * 7 + s * 13) % 90 + 5) } }
    }

    /// Every dropout site of the encoder and of the token classifier's head, with dropout on: the rows of
    /// sequences 1 and 2 computed alone (padded to the batch's length, `firstSequence` 1) equal theirs in the
    /// whole batch. Another mask would change them by O(1).
    @Test func aShareGetsTheMasksItsSequencesHaveInTheWholeBatch() throws {
        let checkpoint = try BertCheckpoint(directory: Fixture.path("tiny-bert"))
        let model = TokenClassifier(config: checkpoint.config, labels: 5, context: BuildContext(maxBatch: 4, maxLength: 16))
        _ = try checkpoint.loadWeights(into: model.parameters, mayBeNew: TokenClassifier.isHeadParameter, seed: 3)
        let all = Self.sequences(), T = Self.lengths.max()!
        let dropout = DropoutMode.training(seed: 12345)
        model.forward(EncoderBatch(padding: all, padId: 0), dropout: dropout)
        let whole = Array(UnsafeBufferPointer(start: model.logits, count: 4 * T * 5))
        model.forward(EncoderBatch(padding: Array(all[1...2]), padId: 0, length: T), dropout: .training(seed: 12345, firstSequence: 1))
        let share = Array(UnsafeBufferPointer(start: model.logits, count: 2 * T * 5))
        for b in 0..<2 {
            for t in 0..<Self.lengths[b + 1] {
                let row = (b * T + t) * 5, wholeRow = ((b + 1) * T + t) * 5
                for c in 0..<5 { #expect(abs(share[row + c] - whole[wholeRow + c]) <= 1e-5, "sequence \(b + 1), token \(t)") }
            }
        }
        model.forward(EncoderBatch(padding: Array(all[1...2]), padId: 0, length: T), dropout: dropout)
        let unshifted = Array(UnsafeBufferPointer(start: model.logits, count: 2 * T * 5))
        #expect(zip(unshifted, share).contains { abs($0 - $1) > 1e-3 }, "without the position, the masks differ")
    }

    /// The same through the pooled-only path of a sequence classifier (the last layer computes `[CLS]` rows only,
    /// drawing the masks of the rows they stand for) and its head's dropout.
    @Test func aShareOfASequenceClassifierGetsTheWholeBatchsMasks() throws {
        let checkpoint = try BertCheckpoint(directory: Fixture.path("tiny-bert"))
        let model = SequenceClassifier(config: checkpoint.config, outputs: 3, context: BuildContext(maxBatch: 4, maxLength: 16))
        _ = try checkpoint.loadWeights(into: model.parameters, mayBeNew: SequenceClassifier.isHeadParameter, seed: 3)
        let all = Self.sequences(), T = Self.lengths.max()!
        model.forward(EncoderBatch(padding: all, padId: 0), dropout: .training(seed: 99))
        let whole = Array(UnsafeBufferPointer(start: model.logits, count: 4 * 3))
        model.forward(EncoderBatch(padding: Array(all[2...3]), padId: 0, length: T), dropout: .training(seed: 99, firstSequence: 2))
        let share = Array(UnsafeBufferPointer(start: model.logits, count: 2 * 3))
        for i in 0..<6 { #expect(abs(share[i] - whole[6 + i]) <= 1e-5) }
    }
}
