/// The number format matrix products read their inputs in: the user's `--precision`. Products accumulate in
/// fp32 and write fp32 either way, so master weights, optimizer state and every other kernel stay fp32 (mixed
/// precision, as in PyTorch's autocast).
public enum Precision: String, Sendable, CaseIterable, Codable {
    /// IEEE single precision throughout.
    case float32 = "fp32"
    /// Inputs rounded to bfloat16 (8 bits of mantissa, fp32's range); about twice fp32's multiply rate on a
    /// CPU with bf16 dot products (AVX512_BF16 or AMX), slower than fp32 without (`Gemm.hasNativeBFloat16`).
    case bfloat16 = "bf16"
    /// Prediction only: the weights' products in int8 (dynamic quantisation, `Int8Gemm`); the products of two
    /// activations (attention's) and everything else in fp32.
    case int8 = "int8"

    /// The formats a model can train in (int8 only predicts).
    public static let training: [Precision] = [.float32, .bfloat16]

    /// The format of products between two activations (attention's): int8 quantises only products with weights.
    public var activationProducts: Precision { self == .int8 ? .float32 : self }

    /// What a user of this precision should know about this CPU, or nil: bf16 without bf16 dot products is
    /// emulated (the same results, slower than fp32).
    public var hardwareNote: String? {
        if self == .int8 && !Int8Gemm.hasVNNI {
            return "this CPU has no VNNI instructions: int8 weights are quantised to 7 bits so that oneDNN's 16-bit pair sums cannot saturate"
        }
        guard self == .bfloat16, !Gemm.hasNativeBFloat16 else { return nil }
        return "this CPU has no bf16 dot-product instructions (AVX512_BF16): bf16 products are widened to fp32, "
            + "with the same results as bf16 hardware but slower than --precision fp32"
    }
}
