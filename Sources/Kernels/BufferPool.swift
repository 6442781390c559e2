import Foundation

/// Owns the activation and gradient buffers of a model. Buffers are allocated once, when a model is built
/// for its largest batch shape, and freed together; training steps only reuse them.
///
/// Each buffer is its own anonymous memory map: the kernel hands out zeroed pages, and a page becomes resident
/// only when first written. Building a model therefore costs no memory until it runs (the checkpoint, mapped while
/// loading, is gone by then), and a buffer sized for the longest batch costs only what the batches use.
public final class BufferPool {
    private var buffers: [(address: UnsafeMutableRawPointer, bytes: Int)] = []
    public private(set) var bytesAllocated = 0

    public init() {}

    /// `count` zeroed elements of `T`, alive as long as the pool.
    public func allocate<T: BitwiseCopyable>(_ count: Int, of type: T.Type) -> UnsafeMutablePointer<T> {
        let bytes = max(count, 1) * MemoryLayout<T>.stride
        guard let raw = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              raw != MAP_FAILED else {
            fatalError("out of memory: could not map \(bytes) bytes for a model buffer (errno \(errno))")
        }
        buffers.append((raw, bytes))
        bytesAllocated += bytes
        return raw.bindMemory(to: T.self, capacity: max(count, 1))
    }

    public func floats(_ count: Int) -> UnsafeMutablePointer<Float> { allocate(count, of: Float.self) }
    /// A buffer holding a copy of `values`.
    public func floats(copying values: [Float]) -> UnsafeMutablePointer<Float> {
        let buffer = floats(values.count)
        buffer.update(from: values, count: values.count)
        return buffer
    }
    public func bytes(_ count: Int) -> UnsafeMutablePointer<UInt8> { allocate(count, of: UInt8.self) }
    public func int32s(_ count: Int) -> UnsafeMutablePointer<Int32> { allocate(count, of: Int32.self) }

    deinit { buffers.forEach { munmap($0.address, $0.bytes) } }

    /// Sets `count` floats from `start`, inside a buffer of a pool, to zero by handing back to the kernel the
    /// whole pages that hold anything but +0 (the partial pages at either end are written): the region reads as
    /// zeros and costs no memory until it is written again, when only the written pages return. The pages given
    /// back are mapped to the kernel's shared zero page straight away, so that reading the region costs no page
    /// faults. A page that holds only +0 is left as it is: for a region that each step writes in a few places
    /// (a lookup table's gradient), looking at every page costs less than remapping all of them.
    public static func clear(_ start: UnsafeMutablePointer<Float>, count: Int) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let begin = UInt(bitPattern: start), end = begin + UInt(count * MemoryLayout<Float>.stride)
        let first = (begin + UInt(page) - 1) / UInt(page) * UInt(page), last = end / UInt(page) * UInt(page)
        guard first < last else { return start.update(repeating: 0, count: count) }
        let head = Int(first - begin) / MemoryLayout<Float>.stride, tail = Int(end - last) / MemoryLayout<Float>.stride
        start.update(repeating: 0, count: head)
        (start + count - tail).update(repeating: 0, count: tail)
        // Runs of consecutive written pages, each handed back in one pair of calls.
        var run: UInt?
        for address in stride(from: first, to: last, by: page) {
            let written = isNonzero(UnsafePointer(bitPattern: address)!, count: page / MemoryLayout<Float>.stride)
            if written, run == nil { run = address }
            if !written, let start = run { giveBack(start..<address); run = nil }
        }
        if let start = run { giveBack(start..<last) }
    }

    /// Hands whole pages back and maps the zero page over them.
    private static func giveBack(_ pages: Range<UInt>) {
        let address = UnsafeMutableRawPointer(bitPattern: pages.lowerBound), bytes = Int(pages.upperBound - pages.lowerBound)
        let status = madvise(address, bytes, MADV_DONTNEED)
        precondition(status == 0, "madvise(MADV_DONTNEED) failed (errno \(errno))")
        // Map the shared zero page over the pages now: the optimizer reads them all, and a read fault per page
        // cost more than the call. (Before Linux 5.14 the call fails, and the reads fault.)
        _ = madvise(address, bytes, 22 /* MADV_POPULATE_READ */)
    }
}
