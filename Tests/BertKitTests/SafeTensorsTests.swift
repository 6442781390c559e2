import Foundation
import Testing
import BertKit

@Suite struct SafeTensorsTests {
    /// F16 and BF16 tensors (zeros, subnormals, overflow to infinity) convert to the exact float32 values
    /// PyTorch gives for them.
    @Test func halfPrecisionConvertsExactly() throws {
        let file = try SafeTensorsFile(path: Fixture.path("dtypes.safetensors"))
        for name in ["f16", "bf16"] {
            let converted = try file.floats(name)
            let expected = try file.floats(name + "_as_f32")
            #expect(converted.map(\.bitPattern) == expected.map(\.bitPattern), "\(name)")
        }
    }

    /// `bert.` prefixes, LayerNorm gamma/beta and bf16 storage load into the same parameters; the
    /// pre-training heads are reported as ignored.
    @Test func legacyNamesAndPrefixesLoad() throws {
        let checkpoint = try BertCheckpoint(directory: Fixture.path("tiny-bert"))
        let reference = ParameterStore(BertEncoder.parameters(checkpoint.config))
        _ = try checkpoint.loadWeights(into: reference)
        let store = ParameterStore(BertEncoder.parameters(checkpoint.config))
        let report = try CheckpointLoader.load(try SafeTensorsFile(path: Fixture.path("tiny-bert-legacy.safetensors")),
                                               into: store, mayBeNew: { _ in false })
        #expect(report.loaded.count == store.parameters.count)
        #expect(Set(report.ignored) == ["cls.predictions.bias", "cls.seq_relationship.weight"])
        for i in 0..<store.count {
            let r = reference.values[i]
            // bf16 keeps 8 significant bits: the loaded value is r rounded to bf16.
            #expect(abs(store.values[i] - r) <= abs(r) * 0x1p-8)
        }
    }

    @Test func newHeadParametersAreInitialisedAndReported() throws {
        let checkpoint = try BertCheckpoint(directory: Fixture.path("tiny-bert"))
        let h = checkpoint.config.hiddenSize
        let store = ParameterStore(BertEncoder.parameters(checkpoint.config) + Linear.declare("classifier", in: h, out: 3))
        let report = try checkpoint.loadWeights(into: store, mayBeNew: { $0.hasPrefix("classifier.") }, seed: 7)
        #expect(report.initialised == ["classifier.weight", "classifier.bias"])
        let weights = Array(store["classifier.weight"].values)
        #expect(weights.contains { $0 != 0 })
        #expect(weights.allSatisfy { abs($0) < 0.02 * 6 })
        #expect(store["classifier.bias"].values.allSatisfy { $0 == 0 })
    }

    /// A weight that is NaN or infinite is refused when the model loads, naming the file, the tensor and the index.
    @Test func nonFiniteWeightsAreRefusedAtLoad() throws {
        let folder = NSTemporaryDirectory() + "bertkit-nan-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.copyItem(atPath: Fixture.path("tiny-bert"), toPath: folder)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: folder + "/model.safetensors"))
        let headerLength = Int(bytes.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let header = try JSONSerialization.jsonObject(with: bytes.subdata(in: 8..<(8 + headerLength))) as! [String: Any]
        let entry = header["encoder.layer.1.output.dense.weight"] as! [String: Any]
        let start = 8 + headerLength + (entry["data_offsets"] as! [Int])[0] + 4 * 3
        for (k, byte) in withUnsafeBytes(of: Float.nan.bitPattern.littleEndian, Array.init).enumerated() { bytes[start + k] = byte }
        try bytes.write(to: URL(fileURLWithPath: folder + "/model.safetensors"))
        let checkpoint = try BertCheckpoint(directory: folder)
        do {
            _ = try checkpoint.loadWeights(into: ParameterStore(BertEncoder.parameters(checkpoint.config)))
            Issue.record("expected the NaN to be refused")
        } catch {
            #expect("\(error)" == folder + "/model.safetensors: tensor 'encoder.layer.1.output.dense.weight' holds nan at index 3: every weight must be a finite number")
        }
    }

    @Test func missingTensorIsAnError() throws {
        let checkpoint = try BertCheckpoint(directory: Fixture.path("tiny-bert"))
        let store = ParameterStore(BertEncoder.parameters(checkpoint.config) + Linear.declare("classifier", in: 32, out: 2))
        #expect(throws: CheckpointError.self) { _ = try checkpoint.loadWeights(into: store) }
        do { _ = try checkpoint.loadWeights(into: store) } catch {
            #expect("\(error)".contains("missing tensor 'classifier.weight'"))
        }
    }

    @Test func wrongShapeIsAnError() throws {
        var config = try BertCheckpoint(directory: Fixture.path("tiny-bert")).config
        config.intermediateSize += 1
        let store = ParameterStore(BertEncoder.parameters(config))
        let file = try SafeTensorsFile(path: Fixture.path("tiny-bert/model.safetensors"))
        do {
            _ = try CheckpointLoader.load(file, into: store, mayBeNew: { _ in false })
            Issue.record("expected a shape error")
        } catch {
            #expect("\(error)".contains("has shape [48, 32]; expected [49, 32]"))
        }
    }

    /// A temporary file holding `bytes`.
    func temporaryFile(_ bytes: Data) throws -> String {
        let path = NSTemporaryDirectory() + "bertkit-\(UUID().uuidString).safetensors"
        try bytes.write(to: URL(fileURLWithPath: path))
        return path
    }

    func header(_ json: String, data: Int) -> Data {
        var d = Data()
        withUnsafeBytes(of: UInt64(json.utf8.count).littleEndian) { d.append(contentsOf: $0) }
        d.append(contentsOf: Array(json.utf8))
        d.append(Data(count: data))
        return d
    }

    func expectError(_ bytes: Data, containing message: String) throws {
        let path = try temporaryFile(bytes)
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            _ = try SafeTensorsFile(path: path)
            Issue.record("expected an error containing '\(message)'")
        } catch {
            #expect("\(error)".contains(path), "the error names the file")
            #expect("\(error)".contains(message), "\(error)")
        }
    }

    @Test func malformedFilesAreRejectedWithTheReason() throws {
        try expectError(Data([1, 2, 3]), containing: "8-byte header length")
        try expectError(header("{}", data: 0).prefix(9), containing: "exceeds the file size")
        try expectError(header("{not json", data: 0), containing: "not valid JSON")
        try expectError(header(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: 4), containing: "truncated")
        try expectError(header(#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: 8), containing: "needs 12 bytes")
        try expectError(header(#"{"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}}"#, data: 8), containing: "unknown dtype 'Q4'")
        try expectError(header(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#, data: 8), containing: "not an increasing range")
        try expectError(header(#"{"a":{"dtype":"F32","shape":[2]}}"#, data: 8), containing: "expected {dtype, shape, data_offsets")
    }

    @Test func truncatedRealCheckpointIsRejected() throws {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: Fixture.path("tiny-bert/model.safetensors")))
        try expectError(bytes.prefix(bytes.count - 100), containing: "truncated")
    }

    @Test func writerRoundTripsAndLeavesNoTemporaryFile() throws {
        let directory = NSTemporaryDirectory() + "bertkit-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let a: [Float] = [1, -2.5, .pi, 0, 1e-30, -.infinity]
        let b: [Float] = (0..<7).map { Float($0) / 3 }
        let path = directory + "/model.safetensors"
        try a.withUnsafeBufferPointer { a in
            try b.withUnsafeBufferPointer { b in
                try SafeTensorsWriter.write([.init(name: "x.weight", shape: [2, 3], values: a),
                                             .init(name: "b", shape: [7], values: b)], to: path)
            }
        }
        let file = try SafeTensorsFile(path: path)
        #expect(try file.floats("x.weight") == a)
        #expect(try file.floats("b") == b)
        #expect(try file.entry("x.weight").shape == [2, 3])
        #expect(file.metadata == ["format": "pt"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["model.safetensors"])
    }

    @Test func configDefaultsAndValidation() throws {
        let config = try JSONDecoder().decode(BertConfig.self, from: Data(#"{"hidden_size": 64, "num_attention_heads": 4}"#.utf8))
        #expect(config.hiddenSize == 64 && config.numHiddenLayers == 12 && config.layerNormEps == 1e-12)
        let path = try temporaryFile(Data(#"{"hidden_size": 30, "num_attention_heads": 4}"#.utf8))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(throws: CheckpointError.self) { _ = try BertConfig.load(path: path) }
    }
}

/// The sha256 recorded for each artifact: coreutils' `sha256sum` of the file; for a folder, of its files' relative
/// paths and bytes in path order.
@Suite struct FileDigestTests {
    func sha256sum(_ path: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        process.arguments = [path]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return String(text.prefix(64))
    }

    @Test func filesAndFoldersHashAsSHA256SumDoes() throws {
        let directory = NSTemporaryDirectory() + "bertkit-digest-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory + "/folder/sub", withIntermediateDirectories: true)
        try "abc".write(toFile: directory + "/abc.txt", atomically: true, encoding: .utf8)
        #expect(try FileDigest.sha256(ofFile: directory + "/abc.txt") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        // Larger than one 1 MiB read: the model's weights.
        let weights = Fixture.miniLMDirectory + "/model.safetensors"
        #expect(try FileDigest.sha256(ofFile: weights) == (try sha256sum(weights)))
        try "x".write(toFile: directory + "/folder/a.txt", atomically: true, encoding: .utf8)
        try "yz".write(toFile: directory + "/folder/sub/b.txt", atomically: true, encoding: .utf8)
        try "a.txtxsub/b.txtyz".write(toFile: directory + "/concatenated", atomically: true, encoding: .utf8)
        #expect(try FileDigest.sha256(ofFile: directory + "/folder") == (try sha256sum(directory + "/concatenated")))
    }
}
