/// Owns the activation and gradient buffers of a model. Buffers are allocated once, when a model is built
/// for its largest batch shape, and freed together; training steps only reuse them.
final class BufferPool {
    private var buffers: [UnsafeMutableRawPointer] = []
    private(set) var bytesAllocated = 0

    /// `count` zeroed elements of `T`, alive as long as the pool.
    func allocate<T: BitwiseCopyable>(_ count: Int, of type: T.Type) -> UnsafeMutablePointer<T> {
        let bytes = max(count, 1) * MemoryLayout<T>.stride
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        buffers.append(raw)
        bytesAllocated += bytes
        return raw.bindMemory(to: T.self, capacity: max(count, 1))
    }

    func floats(_ count: Int) -> UnsafeMutablePointer<Float> { allocate(count, of: Float.self) }
    func bytes(_ count: Int) -> UnsafeMutablePointer<UInt8> { allocate(count, of: UInt8.self) }
    func int32s(_ count: Int) -> UnsafeMutablePointer<Int32> { allocate(count, of: Int32.self) }

    deinit { buffers.forEach { $0.deallocate() } }
}
