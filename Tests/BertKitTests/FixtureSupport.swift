import Foundation
import Testing
@testable import BertKit

/// Files under Tests/BertKitTests/Fixtures, made by scripts/make_fixtures.py.
enum Fixture {
    static let directory: String = Bundle.module.path(forResource: "Fixtures", ofType: nil)!

    static func path(_ name: String) -> String { directory + "/" + name }

    /// The repository's root folder.
    static let repositoryRoot: String = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    /// The default encoder, installed by scripts/setup (its 90 MB of weights are not in the repository).
    static var miniLMDirectory: String {
        ProcessInfo.processInfo.environment["BERTKIT_MODEL"] ?? repositoryRoot + "/models/all-MiniLM-L6-v2"
    }
}

/// ‖actual − expected‖∞ / ‖expected‖∞: the largest error relative to the tensor's scale.
func relativeError(_ actual: UnsafeBufferPointer<Float>, _ expected: [Float]) -> Float {
    precondition(actual.count == expected.count, "sizes differ: \(actual.count) vs \(expected.count)")
    var worst: Float = 0, scale: Float = 0
    for i in 0..<expected.count {
        worst = max(worst, abs(actual[i] - expected[i]))
        scale = max(scale, abs(expected[i]))
    }
    return scale == 0 ? worst : worst / scale
}

func relativeError(_ actual: [Float], _ expected: [Float]) -> Float {
    actual.withUnsafeBufferPointer { relativeError($0, expected) }
}

extension EncoderBatch {
    /// The padded inputs stored in a fixture file.
    init(fixture file: SafeTensorsFile) throws {
        let shape = try file.entry("input_ids").shape
        self.init(batchSize: shape[0], sequenceLength: shape[1],
                  tokenIds: try file.integers("input_ids").map(Int32.init),
                  tokenTypeIds: try file.integers("token_type_ids").map(Int32.init),
                  attentionMask: try file.integers("attention_mask"))
    }
}
