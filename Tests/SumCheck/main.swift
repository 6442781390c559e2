// Sums buffers of several sizes over the processes of an MPI job through `ProcessGroup.sum`, and checks each
// sum exactly: process r contributes r · 1024 + (i mod 7) + 0.5 at index i, whose sums floats hold exactly.
// Sizes go across the shared-memory path's chunks of 2^18 floats. Run by CLITests under mpirun (one host with
// three processes; two hosts with two processes each); prints one line and exits 1 on the first wrong value.
import BertKit
import Foundation

let group = ProcessGroup.current
let n = Float(group.size)
let expectedBase = 1024 * n * (n - 1) / 2 + 0.5 * n
for count in [1, 1000, (1 << 18) - 1, 1 << 18, (1 << 18) + 17, 3 * (1 << 18) + 5] {
    var buffer = (0..<count).map { Float(group.rank * 1024 + $0 % 7) + 0.5 }
    try buffer.withUnsafeMutableBufferPointer { try group.sum($0.baseAddress!, count: count) }
    if let wrong = buffer.indices.first(where: { buffer[$0] != expectedBase + n * Float($0 % 7) }) {
        print("process \(group.rank): sum of \(count) floats over \(group.size) processes: [\(wrong)] = \(buffer[wrong]), expected \(expectedBase + n * Float(wrong % 7))")
        exit(1)
    }
}
print("process \(group.rank) of \(group.size): sums exact, shared memory on its host: \(group.sumsThroughSharedMemory)")
