import ArgumentParser
import BertKit
import Foundation

/// Measures the toolkit and PyTorch + transformers on the same work, in one run, and writes a table.
@main
struct Benchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Encoder throughput against PyTorch: GEMM rate, forward and forward+backward tokens/s.")

    @Option(help: "Model folder.") var model = "models/all-MiniLM-L6-v2"
    @Option(help: "Sequences per batch.") var batch = 32
    @Option(help: "Tokens per sequence.") var length = 128
    @Option(help: "Seconds to time each measurement.") var seconds = 10.0
    @Option(help: "Python with torch and transformers for the reference (or set BERTKIT_PYTHON).")
    var python = ProcessInfo.processInfo.environment["BERTKIT_PYTHON"] ?? "python3"
    @Option(help: "Where to write the table.") var output = "benchmarks/encoder.md"

    func run() throws {
        var lines = ["# Encoder throughput, batch \(batch) × length \(length)", ""]
        lines.append("machine: \(machineDescription()), \(Parallel.workers) cores; GEMM: \(Gemm.backendDescription); \(Date())")
        lines.append("")

        let gemm = measureGemm()
        lines.append("| GEMM (m × k × n, fp32) | GFLOP/s |")
        lines.append("|---|---:|")
        for (shape, rate) in gemm { lines.append("| \(shape) | \(String(format: "%.0f", rate)) |") }
        lines.append("")

        let ours = try measureEncoder()
        let reference = runPyTorch()
        let tokens = Double(batch * length)
        lines.append("| encoder | forward tokens/s | forward+backward tokens/s | forward ms/batch | forward+backward ms/batch |")
        lines.append("|---|---:|---:|---:|---:|")
        lines.append(row("bertkit (fp32)", tokens / ours.forward, tokens / ours.train, ours.forward, ours.train))
        if let reference {
            lines.append(row("PyTorch \(reference.version) (fp32, \(reference.threads) threads)",
                             tokens / reference.forward, tokens / reference.train, reference.forward, reference.train))
            lines.append("")
            lines.append(String(format: "bertkit / PyTorch: forward %.2f×, forward+backward %.2f×",
                                reference.forward / ours.forward, reference.train / ours.train))
        } else {
            lines.append("")
            lines.append("PyTorch not measured: `\(python)` has no torch + transformers (set --python or BERTKIT_PYTHON).")
        }
        let flops = ours.flopsPerToken
        lines.append(String(format: "model FLOP utilisation: forward %.0f GFLOP/s, forward+backward %.0f GFLOP/s (matmul FLOPs only)",
                            flops * tokens / ours.forward / 1e9, 3 * flops * tokens / ours.train / 1e9))
        let table = lines.joined(separator: "\n") + "\n"
        print(table)
        try FileManager.default.createDirectory(atPath: (output as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        try AtomicFile.write(Data(table.utf8), to: output)
        print("written to \(output)")
    }

    func row(_ name: String, _ forwardRate: Double, _ trainRate: Double, _ forward: Double, _ train: Double) -> String {
        String(format: "| %@ | %.0f | %.0f | %.0f | %.0f |", name, forwardRate, trainRate, forward * 1000, train * 1000)
    }

    /// Median seconds of `step` over repeated calls within the time budget, after two warm-up calls.
    func timed(_ step: () -> Void) -> Double {
        step(); step()
        var times: [Double] = []
        let start = Date()
        while Date().timeIntervalSince(start) < seconds || times.count < 3 {
            let t = Date()
            step()
            times.append(Date().timeIntervalSince(t))
        }
        return times.sorted()[times.count / 2]
    }

    func measureGemm() -> [(String, Double)] {
        let m = batch * length
        return [(384, 384), (384, 1536), (1536, 384)].map { (k, n) in
            let a = [Float](repeating: 0.5, count: m * k), b = [Float](repeating: 0.25, count: k * n)
            var c = [Float](repeating: 0, count: m * n)
            let t = timed {
                Gemm.multiply(.none, .transposed, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: k, c: &c, ldc: n)
            }
            return ("\(m) × \(k) × \(n)", 2 * Double(m * n * k) / t / 1e9)
        }
    }

    struct Measurement { let forward: Double; let train: Double; let flopsPerToken: Double }

    func measureEncoder() throws -> Measurement {
        let checkpoint = try BertCheckpoint(directory: model)
        let c = checkpoint.config
        let store = ParameterStore(BertEncoder.parameters(c))
        _ = try checkpoint.loadWeights(into: store)
        let encoder = BertEncoder(config: c, store: store, maxBatch: batch, maxLength: length)
        var generator = SeededRandom(seed: 0)
        let ids = (0..<(batch * length)).map { _ in Int32(1000 + generator.nextBits() % UInt64(c.vocabSize - 1000)) }
        let input = EncoderBatch(batchSize: batch, sequenceLength: length, tokenIds: ids,
                                 tokenTypeIds: [Int32](repeating: 0, count: ids.count),
                                 lengths: [Int](repeating: length, count: batch))
        let dHidden = (0..<(batch * length * c.hiddenSize)).map { _ in generator.next() }
        let dPooled = [Float](repeating: 1, count: batch * c.hiddenSize)
        let forward = timed { encoder.forward(input) }
        var step: UInt64 = 0
        let train = timed {
            step += 1
            encoder.forward(input, dropout: .training(seed: step))
            store.zeroGradients()
            encoder.backward(dSequenceOutput: dHidden, dPooledOutput: dPooled)
        }
        let (h, i, L) = (Double(c.hiddenSize), Double(c.intermediateSize), Double(length))
        let perLayer = 2 * (4 * h * h + 2 * h * i) + 2 * 2 * L * h
        return Measurement(forward: forward, train: train, flopsPerToken: perLayer * Double(c.numHiddenLayers))
    }

    struct Reference { let version: String; let threads: Int; let forward: Double; let train: Double }

    func runPyTorch() -> Reference? {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/bench_pytorch.py").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python, script, "--model", model, "--batch", "\(batch)", "--length", "\(length)",
                             "--seconds", "\(seconds)", "--threads", "\(Parallel.workers)"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0,
              let line = String(data: data, encoding: .utf8)?.split(separator: "\n").last,
              let json = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let forward = json["forward_seconds"] as? Double, let train = json["forward_backward_seconds"] as? Double
        else { return nil }
        let version = "\(json["torch"] ?? "?") + transformers \(json["transformers"] ?? "?")"
        return Reference(version: version, threads: json["threads"] as? Int ?? 0, forward: forward, train: train)
    }

    func machineDescription() -> String {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let name = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }?
            .split(separator: ":", maxSplits: 1).last?.trimmingCharacters(in: .whitespaces)
        return name ?? "unknown CPU"
    }
}
