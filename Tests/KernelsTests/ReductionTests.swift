import Testing
import Kernels

/// The vectorised reductions against plain loops, over lengths with and without a partial last vector.
@Suite struct ReductionTests {
    @Test func maximumSumAndDotMatchPlainLoops() {
        var random = TestRandom(seed: 11)
        for count in [1, 7, 16, 17, 33, 130] {
            // All negative, so that a maximum that started from zero, or skipped the tail, is caught.
            let x = random.array(count, -9 ... -1), y = random.array(count)
            x.withUnsafeBufferPointer { x in
                y.withUnsafeBufferPointer { y in
                    let (p, q) = (x.baseAddress!, y.baseAddress!)
                    #expect(maximum(p, count: count) == x.max()!, "maximum of \(count)")
                    #expect(abs(Double(sum(p, count: count)) - x.reduce(0.0) { $0 + Double($1) }) < 1e-4)
                    #expect(abs(Double(dot(p, q, count: count)) - zip(x, y).reduce(0.0) { $0 + Double($1.0 * $1.1) }) < 1e-4)
                }
            }
        }
        // The largest element in a partial last vector, and in the first lane.
        for (count, at) in [(33, 32), (33, 0), (16, 15)] {
            var x = random.array(count, -9 ... -1)
            x[at] = 0.5
            #expect(x.withUnsafeBufferPointer { maximum($0.baseAddress!, count: count) } == 0.5, "\(count), largest at \(at)")
        }
        #expect(maximum(UnsafePointer(bitPattern: 8)!, count: 0) == -.infinity)
    }
}
