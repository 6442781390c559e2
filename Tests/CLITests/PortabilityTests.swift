import Foundation
import Testing

/// The release binary built here runs on an x86-64 CPU without AVX-512 and without bf16 instructions: each head's
/// `predict` (and `encode`) under `qemu-x86_64 -cpu Haswell` (AVX2, FMA; Debian's qemu-user, installed by
/// scripts/setup) gives the numbers the native run gives, within fp32 tolerance (oneDNN's AVX2 and AVX-512 kernels
/// sum in different orders; the toolkit's own loops give the same bits at every CPU level).
@Suite(.serialized) struct PortabilityTests {
    static let fixtures = CommandLineTests.fixtures
    static let pipelines = fixtures + "/pipelines"
    static let emulator = "/usr/bin/qemu-x86_64"

    struct Output { let status: Int32; let output: String; let error: String }

    /// Runs `finetune` natively, or under the emulator as a Haswell.
    func run(_ arguments: [String], emulated: Bool) throws -> Output {
        let process = Process()
        if emulated {
            process.executableURL = URL(fileURLWithPath: Self.emulator)
            process.arguments = ["-cpu", "Haswell", CommandLineTests.binary] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: CommandLineTests.binary)
            process.arguments = arguments
        }
        process.currentDirectoryURL = URL(fileURLWithPath: CommandLineTests.root)
        let (out, err) = (Pipe(), Pipe())
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let error = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        // qemu names the Haswell features its translator does not model (TSX, x2APIC, ...); none is one the program uses.
        let messages = String(decoding: error, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.hasPrefix("qemu-x86_64: warning: TCG doesn't support requested feature") }
        return Output(status: process.terminationStatus, output: String(decoding: output, as: UTF8.self),
                      error: messages.joined(separator: "\n"))
    }

    /// Every number in `a` within `tolerance` of the one at the same place in `b`; everything else equal.
    func expectClose(_ a: Any, _ b: Any, tolerance: Double, at path: String) {
        switch (a, b) {
        case let (x as [String: Any], y as [String: Any]):
            #expect(Set(x.keys) == Set(y.keys), "\(path): keys \(x.keys.sorted()) vs \(y.keys.sorted())")
            for (key, value) in x { if let other = y[key] { expectClose(value, other, tolerance: tolerance, at: "\(path).\(key)") } }
        case let (x as [Any], y as [Any]):
            #expect(x.count == y.count, "\(path): \(x.count) vs \(y.count) elements")
            for (i, (u, v)) in zip(x, y).enumerated() { expectClose(u, v, tolerance: tolerance, at: "\(path)[\(i)]") }
        case let (x as NSNumber, y as NSNumber) where !(x is Bool):
            #expect(abs(x.doubleValue - y.doubleValue) <= tolerance, "\(path): \(x) vs \(y)")
        default:
            #expect("\(a)" == "\(b)", "\(path)")
        }
    }

    func predictions(_ output: String) throws -> [Any] {
        try output.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8), options: .fragmentsAllowed) }
    }

    /// One prediction command per head the toolkit has, over the inputs of the pipeline-equality tests.
    static let heads: [(model: String, input: String)] = [
        ("text-classifier", "texts.jsonl"), ("text-classifier", "pairs.jsonl"), ("token-classifier", "texts.jsonl"),
        ("question-answering", "questions.jsonl"), ("masked-lm", "masked.jsonl"),
    ]

    @Test func everyHeadPredictsTheSameOnAnAVX2CPUWithoutAVX512OrBF16() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.emulator),
                     "qemu-user is not installed (scripts/setup installs it)")
        for head in Self.heads {
            let arguments = ["predict", "--model", Self.pipelines + "/" + head.model, "--input", Self.pipelines + "/" + head.input]
            let native = try run(arguments, emulated: false)
            let haswell = try run(arguments, emulated: true)
            #expect(native.status == 0, "\(head): \(native.error)")
            #expect(haswell.status == 0, "\(head) under qemu -cpu Haswell exited \(haswell.status): \(haswell.error)")
            expectClose(try predictions(haswell.output), try predictions(native.output), tolerance: 1e-5,
                        at: "\(head.model) on \(head.input)")
        }
        let encode = ["encode", "Café naïve résumé, 東京", "--model", Self.fixtures + "/tiny-bert"]
        let (native, haswell) = (try run(encode, emulated: false), try run(encode, emulated: true))
        #expect(haswell.status == 0, "\(haswell.error)")
        let embedding = { (text: String) in text.split(separator: "\n").first { $0.hasPrefix("embedding") } ?? "" }
        #expect(!embedding(native.output).isEmpty && embedding(haswell.output) == embedding(native.output))
    }

    /// Without AVX512_BF16, bf16 products are widened to fp32 (the same results as bf16 hardware) and the user is
    /// told; without VNNI, int8 weights use 7 bits, also said.
    @Test func bf16AndInt8SayWhatTheCPULacksAndStillPredict() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.emulator),
                     "qemu-user is not installed (scripts/setup installs it)")
        let arguments = ["predict", "--model", Self.pipelines + "/text-classifier", "--input", Self.pipelines + "/texts.jsonl"]
        let bf16 = try run(arguments + ["--precision", "bf16"], emulated: true)
        #expect(bf16.status == 0, "\(bf16.error)")
        #expect(bf16.error.contains("no bf16 dot-product instructions (AVX512_BF16)"), "\(bf16.error)")
        let nativeBF16 = try run(arguments + ["--precision", "bf16"], emulated: false)
        expectClose(try predictions(bf16.output), try predictions(nativeBF16.output), tolerance: 1e-5, at: "bf16")

        let int8 = try run(arguments + ["--precision", "int8"], emulated: true)
        #expect(int8.status == 0, "\(int8.error)")
        #expect(int8.error.contains("no VNNI instructions"), "\(int8.error)")
        let fp32 = try run(arguments, emulated: false)
        // Dynamic int8 stays near fp32 on this model: the same labels, scores within a hundredth.
        let (quantized, reference) = (try predictions(int8.output), try predictions(fp32.output))
        #expect(quantized.count == reference.count)
        for (q, r) in zip(quantized, reference) {
            let (qd, rd) = (q as! [String: Any], r as! [String: Any])
            #expect(qd["label"] as? String == rd["label"] as? String)
            #expect(abs((qd["score"] as! Double) - (rd["score"] as! Double)) < 0.01, "\(qd) vs \(rd)")
        }
    }
}
