/// Owns the activation and gradient buffers of a model. Buffers are allocated once, when a model is built
/// for its largest batch shape, and freed together; training steps only reuse them.
final class BufferPool {
    private var floatBuffers: [UnsafeMutablePointer<Float>] = []
    private var byteBuffers: [UnsafeMutablePointer<UInt8>] = []
    private var intBuffers: [UnsafeMutablePointer<Int32>] = []
    private(set) var bytesAllocated = 0

    func floats(_ count: Int) -> UnsafeMutablePointer<Float> {
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
        p.initialize(repeating: 0, count: max(count, 1))
        floatBuffers.append(p)
        bytesAllocated += count * 4
        return p
    }

    func bytes(_ count: Int) -> UnsafeMutablePointer<UInt8> {
        let p = UnsafeMutablePointer<UInt8>.allocate(capacity: max(count, 1))
        p.initialize(repeating: 0, count: max(count, 1))
        byteBuffers.append(p)
        bytesAllocated += count
        return p
    }

    func int32s(_ count: Int) -> UnsafeMutablePointer<Int32> {
        let p = UnsafeMutablePointer<Int32>.allocate(capacity: max(count, 1))
        p.initialize(repeating: 0, count: max(count, 1))
        intBuffers.append(p)
        bytesAllocated += count * 4
        return p
    }

    deinit {
        floatBuffers.forEach { $0.deallocate() }
        byteBuffers.forEach { $0.deallocate() }
        intBuffers.forEach { $0.deallocate() }
    }
}
