import CDNNL
import CKernels
import Foundation

/// A linear layer's weights quantised once for int8 products, as PyTorch's and ONNX Runtime's dynamic
/// quantisation do it: each output channel (a row of `W`, `[out, in]`) symmetric around zero with its own
/// scale, so that the largest weight of the row becomes ±`Int8Gemm.weightLimit`. Each row's sum of quantised
/// weights is kept too: it takes the activations' zero points back out of the integer products.
public final class QuantizedWeights: @unchecked Sendable {
    public let outFeatures: Int
    public let inFeatures: Int
    package let values: UnsafeMutablePointer<Int8>
    package let scales: UnsafeMutablePointer<Float>
    package let sums: UnsafeMutablePointer<Int32>
    /// The quantised weights in the integer GEMM's packed layout, made by `quantize`.
    let packed: PackedWeights
    /// Whether `quantize` has run (the weights are loaded after the layer is built).
    public var isQuantized: Bool { packed.isPacked }

    public init(outFeatures: Int, inFeatures: Int) {
        self.outFeatures = outFeatures
        self.inFeatures = inFeatures
        values = .allocate(capacity: outFeatures * inFeatures)
        scales = .allocate(capacity: outFeatures)
        sums = .allocate(capacity: outFeatures)
        packed = PackedWeights(kind: .int8, outFeatures: outFeatures, inFeatures: inFeatures)
    }

    deinit {
        values.deallocate()
        scales.deallocate()
        sums.deallocate()
    }

    /// `quantize(weights)` unless that has run: the weights of an int8 model do not change once loaded.
    public func quantizeOnce(_ weights: UnsafePointer<Float>) {
        if !isQuantized { quantize(weights) }
    }

    /// Quantises `weights` (`[out, in]`, fp32): q = round(w / scale), scale = max|w| / limit per row.
    public func quantize(_ weights: UnsafePointer<Float>) {
        let limit = Float(Int8Gemm.weightLimit)
        for j in 0..<outFeatures {
            let row = weights + j * inFeatures
            var largest: Float = 0
            for k in 0..<inFeatures { largest = max(largest, abs(row[k])) }
            let scale = largest > 0 ? largest / limit : 1
            var sum: Int32 = 0
            for k in 0..<inFeatures {
                let q = Int8(max(-limit, min(limit, (row[k] / scale).rounded(.toNearestOrEven))))
                values[j * inFeatures + k] = q
                sum += Int32(q)
            }
            scales[j] = scale
            sums[j] = sum
        }
        packed.pack(values)
    }
}

/// `y = x · Wᵀ` with int8 products (dynamic quantisation): each row of the activations `x` is quantised when
/// the product runs, asymmetric in [0, 255] over its own range (which always holds 0, so that 0 stays exact),
/// multiplied by the quantised weights on oneDNN's integer kernels (a u8 × s8 → s32 matmul over the weights packed
/// once, `PackedWeights`: AMX or AVX-512 VNNI tiles where the CPU has them), and the int32 sums scaled back:
/// y[i, j] = sx[i] · sw[j] · (Σ qx·qw − zx[i] · Σ qw[j]). Rows are split across the cores. Everything around the products (bias, softmax, LayerNorm, GELU) stays fp32.
public enum Int8Gemm {
    /// Whether the CPU multiplies u8 by s8 into int32 without intermediate int16 sums (VNNI).
    public static let hasVNNI: Bool = {
        // oneDNN's own answer, from CPUID, rather than /proc/cpuinfo: that file describes the host, not the CPU an
        // emulator or a restricted VM presents, and oneDNN picks its int8 kernels by what CPUID says.
        let isa = dnnl_get_effective_cpu_isa().rawValue
        return isa & dnnl_cpu_isa_avx512_core_vnni.rawValue == dnnl_cpu_isa_avx512_core_vnni.rawValue
            || isa & dnnl_cpu_isa_avx2_vnni.rawValue == dnnl_cpu_isa_avx2_vnni.rawValue
    }()

    /// The largest quantised weight. Without VNNI, oneDNN adds pairs of u8·s8 products in int16 first, which
    /// saturates with full 8-bit weights (255 · 127 · 2 > 32767); 7-bit weights cannot (ONNX Runtime's
    /// `reduce_range` does the same on such CPUs).
    public static let weightLimit: Int32 = hasVNNI ? 127 : 63

    /// `y[rows, out]` (rows `ldy` apart) = `x[rows, in]` (rows `ldx` apart) · Wᵀ (+ `bias`, as
    /// `Gemm.multiply(bias:)` adds it).
    public static func multiply(_ x: UnsafePointer<Float>, rows: Int, ldx: Int, weights: QuantizedWeights,
                                _ y: UnsafeMutablePointer<Float>, ldy: Int, bias: UnsafePointer<Float>? = nil) {
        guard rows > 0 else { return }
        precondition(weights.isQuantized, "int8 weights used before they were quantised")
        let scratch = Int8Scratch.forThisThread
        scratch.reserve(rows: rows, inFeatures: weights.inFeatures, outFeatures: weights.outFeatures)
        let body = RowBlocks(x: x, ldx: ldx, weights: weights, y: y, ldy: ldy, bias: bias, quantized: scratch.quantized,
                             sums: scratch.sums, rowScales: scratch.rowScales, zeroPoints: scratch.zeroPoints)
        Gemm.splitRows(rows, work: rows * weights.inFeatures * weights.outFeatures, minimumChunk: 8, body)
    }

    /// Quantise, multiply and scale back a block of rows.
    struct RowBlocks: Parallel.RangeBody {
        let x: UnsafePointer<Float>, ldx: Int
        let weights: QuantizedWeights
        let y: UnsafeMutablePointer<Float>, ldy: Int
        let bias: UnsafePointer<Float>?
        let quantized: UnsafeMutablePointer<UInt8>, sums: UnsafeMutablePointer<Int32>
        let rowScales: UnsafeMutablePointer<Float>, zeroPoints: UnsafeMutablePointer<Int32>

        func callAsFunction(_ range: Range<Int>) {
            let (k, n) = (weights.inFeatures, weights.outFeatures)
            for i in range { quantizeRow(i, k) }
            weights.packed.multiplyOnThisThread(quantized + range.lowerBound * k, rows: range.count, ldx: k,
                                                 sums + range.lowerBound * n, ldy: n)
            for i in range { dequantizeRow(i, n) }
            if let bias { Elementwise.addBias(bias, to: y + range.lowerBound * ldy, rows: range.count, width: n, stride: ldy) }
        }

        /// Row `i` of `x` to u8 with its own scale and zero point (CKernels/quantize.c, compiled for the CPU's
        /// vector width).
        @inline(__always)
        private func quantizeRow(_ i: Int, _ k: Int) {
            bertkit_quantize_row(x + i * ldx, k, quantized + i * k, rowScales + i, zeroPoints + i)
        }

        /// y[i, j] = sx[i] · sw[j] · (Σ qx·qw − zx[i] · Σ qw[j]); the integers stay far inside Int32.
        @inline(__always)
        private func dequantizeRow(_ i: Int, _ n: Int) {
            bertkit_dequantize_row(sums + i * n, n, rowScales[i], zeroPoints[i], weights.scales, weights.sums,
                                   y + i * ldy)
        }
    }
}

/// The int8 product's working memory, one per calling thread (as `GemmScratch`), grown to the largest product
/// and then reused.
final class Int8Scratch {
    /// The calling thread's scratch, made on its first use and released when the thread ends.
    static var forThisThread: Int8Scratch { perThread.value }
    private static let perThread = PerThread { Int8Scratch() }

    private(set) var quantized = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
    private(set) var sums = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
    private(set) var rowScales = UnsafeMutablePointer<Float>.allocate(capacity: 1)
    private(set) var zeroPoints = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
    private var capacity = (rows: 1, quantized: 1, sums: 1)

    deinit {
        quantized.deallocate()
        sums.deallocate()
        rowScales.deallocate()
        zeroPoints.deallocate()
    }

    func reserve(rows: Int, inFeatures: Int, outFeatures: Int) {
        if rows * inFeatures > capacity.quantized {
            quantized.deallocate()
            quantized = .allocate(capacity: rows * inFeatures)
            capacity.quantized = rows * inFeatures
        }
        if rows * outFeatures > capacity.sums {
            sums.deallocate()
            sums = .allocate(capacity: rows * outFeatures)
            capacity.sums = rows * outFeatures
        }
        if rows > capacity.rows {
            rowScales.deallocate()
            zeroPoints.deallocate()
            rowScales = .allocate(capacity: rows)
            zeroPoints = .allocate(capacity: rows)
            capacity.rows = rows
        }
    }
}
