import CMPI
import Kernels

/// Sums float buffers over the processes of a job through memory that the processes of each host share, and
/// across hosts between the processes of the same index on each host.
///
/// Open MPI's allreduce between two processes of one host copies every fragment through its shared-memory
/// transport several times. Here each process writes a chunk of its buffer once into its slot of a window that
/// the host's processes share, sums its slice of the chunk over all slots, and copies the whole sum back: three
/// times faster for BERT-base's gradients on two processes (BENCHMARKS.md). A chunk of a megabyte per slot stays
/// in cache from writing to reading. With several hosts, each slice is summed across hosts by MPI_Allreduce
/// among the processes that own it, so every process of a host carries a share of the network traffic.
///
/// Every process gets the same sums: each slice is added up by one process (its own values, then the other
/// slots in host order; then across hosts) and copied by all.
final class SharedMemorySum {
    /// The processes of this host.
    private let host: MPI_Comm
    /// The processes with this one's index on the other hosts; nil on one host.
    private let peers: MPI_Comm?
    private let window: MPI_Win
    /// Each of the host's processes' slot of the window, in host order.
    private let slots: [UnsafeMutablePointer<Float>]
    /// This process's index on its host.
    private let index: Int

    /// Floats per slot, summed at a time.
    static let chunk = 1 << 18

    /// Joins the processes of `world` host by host (a collective call). Nil where it does not apply: each host
    /// runs one process, or hosts run different numbers of processes (their slices would not line up); the
    /// group then sums with MPI_Allreduce alone.
    static func make(world: MPI_Comm, rank: Int, size: Int) throws -> SharedMemorySum? {
        var host: MPI_Comm? = nil
        try ProcessGroup.check(MPI_Comm_split_type(world, Int32(MPI_COMM_TYPE_SHARED), Int32(rank),
                                                   bertkit_mpi_info_null(), &host), "MPI_Comm_split_type")
        var local: Int32 = 0, index: Int32 = 0
        try ProcessGroup.check(MPI_Comm_size(host, &local), "MPI_Comm_size")
        try ProcessGroup.check(MPI_Comm_rank(host, &index), "MPI_Comm_rank")
        var extremes: [Int32] = [local, -local]  // the largest and the smallest count of processes on a host
        try ProcessGroup.check(MPI_Allreduce(bertkit_mpi_in_place(), &extremes, 2, bertkit_mpi_int(), bertkit_mpi_max(), world),
                               "MPI_Allreduce")
        guard extremes[0] == -extremes[1], local > 1 else {
            try ProcessGroup.check(MPI_Comm_free(&host), "MPI_Comm_free")
            return nil
        }
        var peers: MPI_Comm? = nil
        try ProcessGroup.check(MPI_Comm_split(world, index, Int32(rank), &peers), "MPI_Comm_split")
        if Int(local) == size { try ProcessGroup.check(MPI_Comm_free(&peers), "MPI_Comm_free"); peers = nil }

        var base: UnsafeMutableRawPointer? = nil
        var window: MPI_Win? = nil
        try ProcessGroup.check(MPI_Win_allocate_shared(MPI_Aint(chunk * MemoryLayout<Float>.stride), Int32(MemoryLayout<Float>.stride),
                                                       bertkit_mpi_info_null(), host, &base, &window), "MPI_Win_allocate_shared")
        try ProcessGroup.check(MPI_Win_set_errhandler(window, bertkit_mpi_errors_return()), "MPI_Win_set_errhandler")
        var slots: [UnsafeMutablePointer<Float>] = []
        for p in 0..<local {
            var bytes: MPI_Aint = 0, unit: Int32 = 0
            var slot: UnsafeMutableRawPointer? = nil
            try ProcessGroup.check(MPI_Win_shared_query(window, p, &bytes, &unit, &slot), "MPI_Win_shared_query")
            slots.append(slot!.assumingMemoryBound(to: Float.self))
        }
        // One passive epoch for the window's whole life; MPI_Win_sync and a barrier order the accesses.
        try ProcessGroup.check(MPI_Win_lock_all(Int32(MPI_MODE_NOCHECK), window), "MPI_Win_lock_all")
        return SharedMemorySum(host: host!, peers: peers, window: window!, slots: slots, index: Int(index))
    }

    private init(host: MPI_Comm, peers: MPI_Comm?, window: MPI_Win, slots: [UnsafeMutablePointer<Float>], index: Int) {
        (self.host, self.peers, self.window, self.slots, self.index) = (host, peers, window, slots, index)
    }

    /// Replaces `buffer` on every process by its sum over the processes of the job.
    func sum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws {
        let mine = slots[index]
        var done = 0
        while done < count {
            let n = min(Self.chunk, count - done)
            mine.update(from: buffer + done, count: n)
            try synchronize()
            let slice = self.slice(index, of: n)
            for (p, other) in slots.enumerated() where p != index {
                Elementwise.add(mine + slice.lowerBound, other + slice.lowerBound, mine + slice.lowerBound, count: slice.count)
            }
            if let peers {
                try ProcessGroup.check(MPI_Allreduce(bertkit_mpi_in_place(), mine + slice.lowerBound, Int32(slice.count), bertkit_mpi_float(),
                                                     bertkit_mpi_sum(), peers), "MPI_Allreduce (gradients across hosts)")
            }
            try synchronize()
            for (p, slot) in slots.enumerated() {
                let owned = self.slice(p, of: n)
                (buffer + done + owned.lowerBound).update(from: slot + owned.lowerBound, count: owned.count)
            }
            try synchronize()  // before the next chunk overwrites the slots
            done += n
        }
    }

    /// The part of a chunk of `n` floats that process `p` of the host sums.
    private func slice(_ p: Int, of n: Int) -> Range<Int> { (n * p / slots.count)..<(n * (p + 1) / slots.count) }

    /// Makes every process's writes to the window visible to the others, once all have arrived.
    private func synchronize() throws {
        try ProcessGroup.check(MPI_Win_sync(window), "MPI_Win_sync")
        try ProcessGroup.check(MPI_Barrier(host), "MPI_Barrier (host)")
        try ProcessGroup.check(MPI_Win_sync(window), "MPI_Win_sync")
    }
}
