import ArgumentParser
import BertKit
import Foundation

/// Measures the toolkit and PyTorch + transformers on the same work, in one run, and writes a table.
@main
struct Benchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Encoder throughput against PyTorch (fp32 and bf16 autocast): GEMM rate, forward and forward+backward tokens/s, MFU.")

    @Option(help: "Model folder (with --shape model).") var model = "models/all-MiniLM-L6-v2"
    @Option(help: "model: the checkpoint in --model; base: BERT-base (12 layers, hidden 768), random weights.")
    var shape = "model"
    @Option(help: "With --shape base: the family's base shape (bert: BERT-base; roberta: RoBERTa-base, whose vocabulary, positions and token types differ), against the same family's PyTorch model.")
    var family = "bert"
    @Option(help: "Sequences per batch.") var batch = 32
    @Option(help: "Tokens per sequence.") var length = 128
    @Option(help: "Seconds to time each measurement.") var seconds = 10.0
    @Option(help: "Python with torch and transformers for the reference (or set BERTKIT_PYTHON).")
    var python = ProcessInfo.processInfo.environment["BERTKIT_PYTHON"] ?? "python3"
    @Option(help: "Where to write the table.") var output = "benchmarks/encoder.md"
    @Option(help: "bf16 rows (toolkit and PyTorch autocast): on, off, or auto (only where the CPU has bf16 dot products).")
    var bf16 = "auto"
    @Option(help: "encoder: throughput against PyTorch; checkpoint: the time and size of a training checkpoint (writes benchmarks/checkpoint.md unless --output says otherwise); steps: whole training steps at --batch and each of --lengths (benchmarks/steps.md); load: loading --model as a SentenceEncoder and --classifier as a FineTunedModel, and a call on one text (benchmarks/load.md); results-db: a results.db of --runs runs and --metric-rows metric rows, for timing finetune dashboard (scripts/bench/dashboard_speed.py); tokenizers: texts per second through each kind of tokenizer against the tokenizers library (benchmarks/tokenizers.md).")
    var measure = "encoder"
    @Option(help: "Sequence lengths for --measure steps, comma-separated.") var lengths = "16,32,64,128"
    @Option(help: "A fine-tuned sequence-classification folder for --measure load.") var classifier: String?
    @Option(help: "Runs in the results.db that --measure results-db writes (to --output).") var runs = 1000
    @Option(help: "Metric rows in the results.db that --measure results-db writes.") var metricRows = 1_000_000

    func run() throws {
        if measure == "steps" {
            return try StepCost(model: model, batch: batch, lengths: lengths.split(separator: ",").compactMap { Int($0) },
                                seconds: seconds, output: output == "benchmarks/encoder.md" ? "benchmarks/steps.md" : output).run()
        }
        if measure == "load" {
            return try LoadCost(encoder: model, classifier: classifier,
                                output: output == "benchmarks/encoder.md" ? "benchmarks/load.md" : output).run()
        }
        if measure == "results-db" {
            return try SyntheticResults(runs: runs, metricRows: metricRows,
                                        output: output == "benchmarks/encoder.md" ? "benchmarks/results-1000-runs.db" : output).run()
        }
        if measure == "tokenizers" {
            return try TokenizerSpeed(model: model, python: python,
                                      output: output == "benchmarks/encoder.md" ? "benchmarks/tokenizers.md" : output).run()
        }
        if measure == "checkpoint" {
            return try CheckpointCost(model: model, output: output == "benchmarks/encoder.md" ? "benchmarks/checkpoint.md" : output).run()
        }
        guard ["model", "base"].contains(shape) else { throw ValidationError("--shape is model or base") }
        guard ["on", "off", "auto"].contains(bf16) else { throw ValidationError("--bf16 is on, off or auto") }
        let name = shape == "base" ? "\(family == "bert" ? "BERT" : "RoBERTa")-base shape (random weights)" : (model as NSString).lastPathComponent
        var lines = ["# Encoder throughput: \(name), batch \(batch) × length \(length)", ""]
        lines.append("machine: \(machineDescription()), \(Parallel.workers) cores; GEMM: \(Gemm.backendDescription); \(Date())")
        lines.append("")

        let withBFloat16 = bf16 == "on" || (bf16 == "auto" && Gemm.hasNativeBFloat16)
        let gemm = measureGemm(try config(), precision: .float32)
        let gemm16 = withBFloat16 ? measureGemm(try config(), precision: .bfloat16) : nil
        let multiplyAddPeak = MultiplyAddPeak.measure(seconds: seconds)
        lines.append("| GEMM (m × k × n) | fp32 x·Wᵀ | fp32 dY·W | fp32 dYᵀ·X | fp32 x·Wᵀ, packed W | bf16 x·Wᵀ |")
        lines.append("|---|---:|---:|---:|---:|---:|")
        for (i, rates) in gemm.enumerated() {
            let rate16 = gemm16.map { String(format: "%.0f", $0[i].forward) } ?? "–"
            let others = [rates.inputGradient, rates.weightGradient, rates.packed]
                .map { $0.map { String(format: "%.0f", $0) } ?? "–" }.joined(separator: " | ")
            lines.append(String(format: "| %@ | %.0f | %@ | %@ |", rates.shape, rates.forward, others, rate16))
        }
        lines.append("")
        lines.append(String(format: "GFLOP/s. x·Wᵀ is a linear layer's forward product (training's, through sgemm), dY·W and dYᵀ·X its backward products, \"packed W\" the forward product of evaluation and prediction (weights packed once, `PackedWeights`). Multiply-add peak of the same %d cores, each running independent 16-lane multiply-adds and nothing else (`MultiplyAddPeak`): %.0f GFLOP/s.", Parallel.workers, multiplyAddPeak))
        lines.append("")

        let ours = try measureEncoder(precision: .float32)
        let ours16 = withBFloat16 ? try measureEncoder(precision: .bfloat16) : nil
        let reference = runPyTorch(withBFloat16: withBFloat16)
        let tokens = Double(batch * length)
        let peak = gemm.map(\.forward).max() ?? 1
        let flops = flopsPerToken(try config())
        lines.append("| encoder | forward tokens/s | forward+backward tokens/s | forward ms/batch | forward+backward ms/batch | MFU forward | MFU forward+backward | peak RSS MB |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        func add(_ name: String, _ m: Measurement) {
            lines.append(String(format: "| %@ | %.0f | %.0f | %.0f | %.0f | %.0f %% | %.0f %% | %.0f |", name, tokens / m.forward,
                                tokens / m.train, m.forward * 1000, m.train * 1000, 100 * flops * tokens / m.forward / 1e9 / peak,
                                100 * 3 * flops * tokens / m.train / 1e9 / peak, m.peakMegabytes))
        }
        func ratios(_ name: String, _ ours: Measurement, _ theirs: Measurement) {
            lines.append(String(format: "%@: forward %.2f×, forward+backward %.2f×, peak memory %.2f×", name,
                                theirs.forward / ours.forward, theirs.train / ours.train,
                                ours.peakMegabytes / theirs.peakMegabytes))
        }
        add("bertkit (fp32)", ours)
        if let ours16 { add("bertkit (bf16)", ours16) }
        if let reference {
            add("PyTorch \(reference.version) (fp32, \(reference.threads) threads)", reference.fp32)
            if let theirs16 = reference.bf16 { add("PyTorch (bf16 autocast)", theirs16) }
            lines.append("")
            ratios("bertkit fp32 / PyTorch fp32", ours, reference.fp32)
            if let ours16 {
                ratios("bertkit bf16 / PyTorch fp32", ours16, reference.fp32)
                if let theirs16 = reference.bf16 { ratios("bertkit bf16 / PyTorch bf16 autocast", ours16, theirs16) }
            }
        } else {
            lines.append("")
            lines.append("PyTorch not measured: `\(python)` has no torch + transformers (set --python or BERTKIT_PYTHON).")
        }
        if !withBFloat16 {
            lines.append("bf16 not measured: \(Gemm.hasNativeBFloat16 ? "--bf16 off" : "this CPU has no bf16 dot products (AVX512_BF16), where both sides would emulate them (--bf16 on measures that anyway)").")
        }
        lines.append("Peak RSS: the process's peak resident memory over each precision's forward and forward+backward timings, reset between precisions (parameters and gradients included; no optimizer state on either side).")
        lines.append(String(format: "MFU: model FLOPs (matmuls: 2 per weight per token, attention 4·T·hidden per token per layer; backward twice the forward) per second over the best measured fp32 GEMM rate, %.0f GFLOP/s, for every row, so bf16 rows can pass 100 %%.", peak))
        let table = lines.joined(separator: "\n") + "\n"
        print(table)
        try FileManager.default.createDirectory(atPath: (output as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        try AtomicFile.write(Data(table.utf8), to: output)
        print("written to \(output)")
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

    /// The encoder's shape: the base model of `--family` (transformers' defaults for its config), or the checkpoint's.
    func config() throws -> BertConfig {
        guard shape == "base" else { return try BertCheckpoint(directory: model).config }
        var c = BertConfig()
        guard family != "bert" else { return c }
        guard EncoderFamily(rawValue: family) == .roberta else { throw ValidationError("--family is bert or roberta") }
        (c.modelType, c.vocabSize, c.maxPositionEmbeddings, c.typeVocabSize, c.padTokenId, c.layerNormEps) = (family, 50265, 514, 1, 1, 1e-5)
        return c
    }

    /// A linear layer's products at one shape, GFLOP/s: the forward one, and in fp32 the backward ones and
    /// evaluation's packed forward product.
    struct GemmRates {
        let shape: String
        let forward: Double
        var inputGradient, weightGradient, packed: Double?
    }

    /// The encoder's GEMM shapes (hidden to hidden, hidden to intermediate and back, over all tokens), each as a
    /// linear layer's forward product and, in fp32, its two backward products and the packed product.
    func measureGemm(_ c: BertConfig, precision: Precision) -> [GemmRates] {
        let m = batch * length
        let (h, i) = (c.hiddenSize, c.intermediateSize)
        return [(h, h), (h, i), (i, h)].map { (k, n) in
            let x = [Float](repeating: 0.5, count: m * k), w = [Float](repeating: 0.25, count: k * n)
            let dy = [Float](repeating: 0.125, count: m * n)
            var y = [Float](repeating: 0, count: m * n), dx = [Float](repeating: 0, count: m * k)
            var dw = [Float](repeating: 0, count: n * k)
            let flops = 2 * Double(m * n * k) / 1e9
            let forward = timed {
                Gemm.multiply(.none, .transposed, m: m, n: n, k: k, a: x, lda: k, b: w, ldb: k, c: &y, ldc: n,
                              precision: precision)
            }
            var rates = GemmRates(shape: "\(m) × \(k) × \(n)", forward: flops / forward)
            guard precision == .float32 else { return rates }
            let inputGradient = timed {
                Gemm.multiply(.none, .none, m: m, n: k, k: n, a: dy, lda: n, b: w, ldb: k, c: &dx, ldc: k)
            }
            let weightGradient = timed {
                Gemm.multiply(.transposed, .none, m: n, n: k, k: m, a: dy, lda: n, b: x, ldb: k, c: &dw, ldc: k)
            }
            let packedWeights = PackedWeights(kind: .float32, outFeatures: n, inFeatures: k)
            w.withUnsafeBytes { packedWeights.pack($0.baseAddress!) }
            let packed = timed { packedWeights.multiply(x, rows: m, ldx: k, &y, ldy: n) }
            (rates.inputGradient, rates.weightGradient, rates.packed) = (flops / inputGradient, flops / weightGradient,
                                                                         flops / packed)
            return rates
        }
    }

    /// Median seconds per batch of a forward and of a forward+backward pass, and the peak resident memory.
    struct Measurement {
        let forward: Double
        let train: Double
        let peakMegabytes: Double
    }

    func measureEncoder(precision: Precision) throws -> Measurement {
        ProcessMemory.resetPeak()
        let c = try config()
        let store = ParameterStore(BertEncoder.parameters(c))
        if shape == "base" {
            store.initialiseRandomly(seed: 1)
        } else {
            _ = try BertCheckpoint(directory: model).loadWeights(into: store)
        }
        let encoder = BertEncoder(config: c, store: store, context: BuildContext(maxBatch: batch, maxLength: length, precision: precision))
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
        return Measurement(forward: forward, train: train, peakMegabytes: ProcessMemory.peakMegabytes)
    }

    /// Model FLOPs of a forward pass per token: the matrix products only.
    func flopsPerToken(_ c: BertConfig) -> Double {
        let (h, i, L) = (Double(c.hiddenSize), Double(c.intermediateSize), Double(length))
        let perLayer = 2 * (4 * h * h + 2 * h * i) + 2 * 2 * L * h
        return perLayer * Double(c.numHiddenLayers)
    }

    struct Reference {
        let version: String
        let threads: Int
        let fp32: Measurement
        let bf16: Measurement?
    }

    func runPyTorch(withBFloat16: Bool) -> Reference? {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/bench/bench_pytorch.py").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python, script, "--model", model, "--shape", shape, "--family", family, "--batch", "\(batch)",
                             "--length", "\(length)", "--seconds", "\(seconds)", "--threads", "\(Parallel.workers)"]
            + (withBFloat16 ? [] : ["--no-bf16"])
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0,
              let line = String(data: data, encoding: .utf8)?.split(separator: "\n").last,
              let json = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let forward = json["forward_seconds"] as? Double, let train = json["forward_backward_seconds"] as? Double,
              let memory = json["peak_rss_mb"] as? Double
        else { return nil }
        var bf16: Measurement?
        if let forward = json["bf16_forward_seconds"] as? Double, let train = json["bf16_forward_backward_seconds"] as? Double,
           let memory = json["bf16_peak_rss_mb"] as? Double {
            bf16 = Measurement(forward: forward, train: train, peakMegabytes: memory)
        }
        let version = "\(json["torch"] ?? "?") + transformers \(json["transformers"] ?? "?")"
        return Reference(version: version, threads: json["threads"] as? Int ?? 0,
                         fp32: Measurement(forward: forward, train: train, peakMegabytes: memory), bf16: bf16)
    }
}

/// The CPU's name, family and model (which tell Zen 3, 4 and 5 apart where the name says only "AMD EPYC").
func machineDescription() -> String {
    let lines = ((try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? "").split(separator: "\n")
    func field(_ name: String) -> String? {
        lines.first { $0.hasPrefix(name) }?.split(separator: ":", maxSplits: 1).last?.trimmingCharacters(in: .whitespaces)
    }
    guard let name = field("model name") else { return "unknown CPU" }
    return "\(name) (family \(field("cpu family") ?? "?"), model \(field("model\t") ?? "?"))"
}
