import CDNNL
import Foundation
import Synchronization

/// A weight matrix `W` (`[out, in]`, as `torch.nn.Linear` stores it) copied into oneDNN's packed GEMM layout,
/// for products `y = x · Wᵀ` while the weights do not change (evaluation and prediction).
///
/// `dnnl_sgemm` and `dnnl_gemm_u8s8s32` pack their `B` operand inside every call, on every thread that
/// computes a block of rows; a matmul primitive whose weights were reordered beforehand into the layout its
/// kernel reads (`format_tag_any`) skips that. Its kernel is the same JIT GEMM: integer products are the same,
/// and fp32 products differ from the unpacked call's only where that call picks another kernel for the shape
/// (a single row, some splits), in the order of the sums (`PackedWeightsTests`). The number of rows is a
/// run-time dimension: one primitive serves every batch, and blocks of rows run at the same time on the pool's
/// threads, each with its own stream and scratchpad. The copy lives in storage the caller gives, or in its own
/// (`pack`).
///
/// Integer products are the exception to the run-time number of rows: oneDNN 2.6 gives its brgemm kernels (AMX
/// and AVX-512 VNNI tiles) only to primitives of a fixed shape, and falls back to the JIT GEMM otherwise. An int8
/// product therefore runs in blocks of at most `int8RowBlock` rows, each by a primitive made for its number of
/// rows on first use and kept, all reading one packed layout (the one chosen for a full block). Integer sums are
/// exact in any kernel, so the results are the same bits.
/// Creating the small memory objects of a call allocates: fine for evaluation and prediction, which is one
/// reason a training step, whose weights change every step anyway, does not use this.
public final class PackedWeights: @unchecked Sendable {
    /// The number formats of one kind of product: the activations', the weights' and the result's.
    public enum Kind: Sendable {
        /// fp32 × fp32 → fp32.
        case float32
        /// u8 × s8 → s32 (`Int8Gemm`'s quantised rows and weights).
        case int8

        var formats: (source: dnnl_data_type_t, weights: dnnl_data_type_t, destination: dnnl_data_type_t) {
            switch self {
            case .float32: (dnnl_f32, dnnl_f32, dnnl_f32)
            case .int8: (dnnl_u8, dnnl_s8, dnnl_s32)
            }
        }

        /// Bytes of one source and one result element.
        var elementBytes: (source: Int, destination: Int) {
            switch self {
            case .float32: (4, 4)
            case .int8: (1, 4)
            }
        }
    }

    /// The most rows one int8 primitive multiplies; a product of more runs in blocks of this many.
    public static let int8RowBlock = 128

    /// A matmul primitive and the scratchpad it needs.
    private struct Product: @unchecked Sendable {
        let primitive: dnnl_primitive_t
        let scratchpadSize: Int
    }

    public let kind: Kind
    public let outFeatures: Int
    public let inFeatures: Int
    /// The primitives, shared by every matrix of the same kind and shape.
    private let plan: Plan
    /// Bytes the packed copy takes (`pack`'s storage); at least the weights' own size.
    public var byteCount: Int { plan.byteCount }
    /// The packed copy, while there is one.
    private var packedMemory: dnnl_memory_t?
    /// The copy's storage when `pack` was given none.
    private var ownedStorage: UnsafeMutableRawPointer?

    /// The product for weights `[out, in]` of `kind`'s weight format, and the packed layout it reads; `pack`
    /// then fills a copy.
    public init(kind: Kind, outFeatures: Int, inFeatures: Int) {
        self.kind = kind
        self.outFeatures = outFeatures
        self.inFeatures = inFeatures
        plan = Plan.shared(kind, outFeatures: outFeatures, inFeatures: inFeatures)
    }

    deinit {
        unpack()
    }

    /// The matmul primitives over packed weights of one kind and shape, with the reorder that packs them. Made once
    /// per kind and shape in a process (each compiles kernels) and kept, as oneDNN's own primitive cache would.
    private final class Plan: @unchecked Sendable {
        let kind: Kind
        let outFeatures: Int, inFeatures: Int
        let reorder: dnnl_primitive_t
        var stored = dnnl_memory_desc_t()
        var layout: dnnl_memory_desc_t
        let byteCount: Int
        /// fp32: one primitive for any number of rows.
        private let anyRows: Product?
        /// int8: a primitive per number of rows (1 to `int8RowBlock`), made on first use.
        private let byRows = Mutex<[Int: Product]>([:])

        private struct Key: Hashable {
            let int8: Bool, outFeatures: Int, inFeatures: Int
        }
        private static let plans = Mutex<[Key: Plan]>([:])

        static func shared(_ kind: Kind, outFeatures: Int, inFeatures: Int) -> Plan {
            plans.withLock { plans in
                let key = Key(int8: kind == .int8, outFeatures: outFeatures, inFeatures: inFeatures)
                if let plan = plans[key] { return plan }
                let plan = Plan(kind, outFeatures: outFeatures, inFeatures: inFeatures)
                plans[key] = plan
                return plan
            }
        }

        private init(_ kind: Kind, outFeatures: Int, inFeatures: Int) {
            self.kind = kind
            self.outFeatures = outFeatures
            self.inFeatures = inFeatures
            let engine = OneDNN.engine
            // op(B) = Wᵀ is `in × out`, stored as W: strides (1, in).
            var any = dnnl_memory_desc_t()
            OneDNN.check(dnnl_memory_desc_init_by_strides(&stored, 2, [Int64(inFeatures), Int64(outFeatures)], kind.formats.weights,
                                                          [1, Int64(inFeatures)]), "weights descriptor")
            OneDNN.check(dnnl_memory_desc_init_by_tag(&any, 2, [Int64(inFeatures), Int64(outFeatures)], kind.formats.weights,
                                                      dnnl_format_tag_any), "packed weights descriptor")
            // The packed layout is the one oneDNN picks for fp32 at any number of rows, for int8 at a full block.
            let (product, descriptor) = Self.create(kind, rows: kind == .int8 ? int8RowBlock : nil, outFeatures: outFeatures,
                                                    inFeatures: inFeatures, weights: &any)
            defer { dnnl_primitive_desc_destroy(descriptor) }
            layout = dnnl_primitive_desc_query_md(descriptor, dnnl_query_weights_md, 0)!.pointee
            byteCount = max(1, dnnl_memory_desc_get_size(&layout))
            switch kind {
            case .float32: anyRows = product
            case .int8: anyRows = nil; byRows.withLock { $0[int8RowBlock] = product }
            }

            var reorderDescriptor: dnnl_primitive_desc_t?, reorder: dnnl_primitive_t?
            OneDNN.check(dnnl_reorder_primitive_desc_create(&reorderDescriptor, &stored, engine, &layout, engine, nil), "reorder")
            defer { dnnl_primitive_desc_destroy(reorderDescriptor) }
            OneDNN.check(dnnl_primitive_create(&reorder, reorderDescriptor), "reorder primitive")
            self.reorder = reorder!
        }

        /// The primitive for `rows` rows (nil: any number, given when it runs), with contiguous rows; and its
        /// descriptor, for the caller to query and destroy.
        private static func create(_ kind: Kind, rows: Int?, outFeatures: Int, inFeatures: Int,
                                   weights: inout dnnl_memory_desc_t) -> (Product, dnnl_primitive_desc_t?) {
            let m = rows.map(Int64.init) ?? OneDNN.runtimeDimension
            var source = dnnl_memory_desc_t(), destination = dnnl_memory_desc_t()
            OneDNN.check(dnnl_memory_desc_init_by_strides(&source, 2, [m, Int64(inFeatures)], kind.formats.source,
                                                          [rows == nil ? OneDNN.runtimeDimension : Int64(inFeatures), 1]), "source descriptor")
            OneDNN.check(dnnl_memory_desc_init_by_strides(&destination, 2, [m, Int64(outFeatures)], kind.formats.destination,
                                                          [rows == nil ? OneDNN.runtimeDimension : Int64(outFeatures), 1]), "result descriptor")
            var description = dnnl_matmul_desc_t()
            OneDNN.check(dnnl_matmul_desc_init(&description, &source, &weights, nil, &destination), "matmul descriptor")
            var attributes: dnnl_primitive_attr_t?
            OneDNN.check(dnnl_primitive_attr_create(&attributes), "primitive attributes")
            defer { dnnl_primitive_attr_destroy(attributes) }
            // Each calling thread brings its own scratchpad, so that blocks of rows can run at the same time.
            OneDNN.check(dnnl_primitive_attr_set_scratchpad_mode(attributes, dnnl_scratchpad_mode_user), "scratchpad mode")
            var descriptor: dnnl_primitive_desc_t?
            OneDNN.check(dnnl_primitive_desc_create(&descriptor, &description, attributes, OneDNN.engine, nil), "matmul")
            var primitive: dnnl_primitive_t?
            OneDNN.check(dnnl_primitive_create(&primitive, descriptor), "matmul primitive")
            let scratchpad = dnnl_memory_desc_get_size(dnnl_primitive_desc_query_md(descriptor, dnnl_query_scratchpad_md, 0))
            return (Product(primitive: primitive!, scratchpadSize: scratchpad), descriptor)
        }

        /// The primitive that multiplies `rows` rows: fp32's for any number, or int8's for exactly `rows`
        /// (at most `int8RowBlock`), made now if this is the first product of that many rows.
        func product(rows: Int) -> Product {
            if let anyRows { return anyRows }
            return byRows.withLock { made in
                if let product = made[rows] { return product }
                let (product, descriptor) = Self.create(kind, rows: rows, outFeatures: outFeatures, inFeatures: inFeatures, weights: &layout)
                dnnl_primitive_desc_destroy(descriptor)
                made[rows] = product
                return product
            }
        }

        /// Whether one primitive serves any number of rows; otherwise products run in blocks of `int8RowBlock`.
        var takesAnyRows: Bool { anyRows != nil }
    }

    /// Whether `pack` has made a copy that `unpack` has not let go.
    public var isPacked: Bool { packedMemory != nil }

    /// Copies `weights` (`[out, in]`, row-major) into the packed layout: in `storage` (`byteCount` bytes, 64-byte
    /// aligned), which products read until `unpack` and which must stay as long, or, without it, in storage of
    /// this object's own, freed by `unpack`.
    public func pack(_ weights: UnsafeRawPointer, into storage: UnsafeMutableRawPointer? = nil) {
        unpack()
        let storage = storage ?? {
            ownedStorage = .allocate(byteCount: byteCount, alignment: 64)
            return ownedStorage!
        }()
        precondition(Int(bitPattern: storage) % 64 == 0, "packed weights need 64-byte aligned storage")
        let engine = OneDNN.engine
        var storedMemory: dnnl_memory_t?
        OneDNN.check(dnnl_memory_create(&packedMemory, &plan.layout, engine, storage), "packed weights")
        OneDNN.check(dnnl_memory_create(&storedMemory, &plan.stored, engine, UnsafeMutableRawPointer(mutating: weights)), "weights")
        defer { dnnl_memory_destroy(storedMemory) }
        Gemm.prepareThisThread()
        var arguments = [dnnl_exec_arg_t(arg: DNNL_ARG_FROM, memory: storedMemory),
                         dnnl_exec_arg_t(arg: DNNL_ARG_TO, memory: packedMemory)]
        let stream = OneDNN.Stream.forThisThread
        OneDNN.check(dnnl_primitive_execute(plan.reorder, stream.stream, 2, &arguments), "reorder of the weights")
        OneDNN.check(dnnl_stream_wait(stream.stream), "reorder of the weights")
    }

    /// Lets the packed copy go, and its storage when `pack` allocated it.
    public func unpack() {
        dnnl_memory_destroy(packedMemory)
        packedMemory = nil
        ownedStorage?.deallocate()
        ownedStorage = nil
    }

    /// `y[rows, out]` (rows `ldy` apart) = `x[rows, in]` (rows `ldx` apart) · Wᵀ (+ `bias`, as
    /// `Gemm.multiply(bias:)` adds it) for fp32 weights, in blocks of rows across the cores when the product is
    /// large enough (as `Gemm.multiply` splits its products).
    public func multiply(_ x: UnsafePointer<Float>, rows: Int, ldx: Int, _ y: UnsafeMutablePointer<Float>, ldy: Int,
                         bias: UnsafePointer<Float>? = nil) {
        precondition(kind == .float32, "an fp32 product with \(kind) weights")
        Gemm.splitRows(rows, work: rows * inFeatures * outFeatures, minimumChunk: 16,
                       RowBlocks(weights: self, x: x, ldx: ldx, y: y, ldy: ldy, bias: bias))
    }

    private struct RowBlocks: Parallel.RangeBody {
        let weights: PackedWeights
        let x: UnsafePointer<Float>, ldx: Int
        let y: UnsafeMutablePointer<Float>, ldy: Int
        let bias: UnsafePointer<Float>?

        func callAsFunction(_ rows: Range<Int>) {
            let block = y + rows.lowerBound * ldy
            weights.multiplyOnThisThread(x + rows.lowerBound * ldx, rows: rows.count, ldx: ldx, block, ldy: ldy)
            if let bias { Elementwise.addBias(bias, to: block, rows: rows.count, width: weights.outFeatures, stride: ldy) }
        }
    }

    /// The same product on the calling thread alone; `x` and `y` hold `kind`'s source and result formats. An
    /// int8 product's rows are contiguous (`ldx` is `inFeatures`, `ldy` is `outFeatures`): its primitives are made
    /// for that shape.
    public func multiplyOnThisThread(_ x: UnsafeRawPointer, rows: Int, ldx: Int, _ y: UnsafeMutableRawPointer, ldy: Int) {
        guard rows > 0 else { return }
        precondition(isPacked, "a product over weights not packed")
        guard !plan.takesAnyRows else { return multiplyBlock(x, rows: rows, ldx: ldx, y, ldy: ldy) }
        precondition(ldx == inFeatures && ldy == outFeatures, "an int8 product over rows that are not contiguous")
        let bytes = kind.elementBytes
        for first in stride(from: 0, to: rows, by: Self.int8RowBlock) {
            multiplyBlock(x + first * ldx * bytes.source, rows: min(Self.int8RowBlock, rows - first), ldx: ldx,
                          y + first * ldy * bytes.destination, ldy: ldy)
        }
    }

    /// One primitive's product of `rows` rows.
    private func multiplyBlock(_ x: UnsafeRawPointer, rows: Int, ldx: Int, _ y: UnsafeMutableRawPointer, ldy: Int) {
        let formats = kind.formats
        let engine = OneDNN.engine
        let product = plan.product(rows: rows)
        var source = dnnl_memory_desc_t(), destination = dnnl_memory_desc_t()
        OneDNN.check(dnnl_memory_desc_init_by_strides(&source, 2, [Int64(rows), Int64(inFeatures)], formats.source,
                                                      [Int64(ldx), 1]), "source descriptor")
        OneDNN.check(dnnl_memory_desc_init_by_strides(&destination, 2, [Int64(rows), Int64(outFeatures)],
                                                      formats.destination, [Int64(ldy), 1]), "result descriptor")
        var sourceMemory: dnnl_memory_t?, destinationMemory: dnnl_memory_t?
        OneDNN.check(dnnl_memory_create(&sourceMemory, &source, engine, UnsafeMutableRawPointer(mutating: x)), "source")
        defer { dnnl_memory_destroy(sourceMemory) }
        OneDNN.check(dnnl_memory_create(&destinationMemory, &destination, engine, y), "result")
        defer { dnnl_memory_destroy(destinationMemory) }
        let stream = OneDNN.Stream.forThisThread
        var arguments = [dnnl_exec_arg_t(arg: DNNL_ARG_SRC, memory: sourceMemory),
                         dnnl_exec_arg_t(arg: DNNL_ARG_WEIGHTS, memory: packedMemory),
                         dnnl_exec_arg_t(arg: DNNL_ARG_DST, memory: destinationMemory),
                         dnnl_exec_arg_t(arg: DNNL_ARG_SCRATCHPAD, memory: stream.scratchpad(product.scratchpadSize))]
        Gemm.prepareThisThread()
        OneDNN.check(dnnl_primitive_execute(product.primitive, stream.stream, Int32(arguments.count), &arguments),
                     "packed product \(rows)×\(inFeatures)×\(outFeatures)")
        OneDNN.check(dnnl_stream_wait(stream.stream), "packed product")
    }
}

/// oneDNN's objects that the packed products share: the CPU engine, and each thread's stream and scratchpad.
enum OneDNN {
    /// `DNNL_RUNTIME_DIM_VAL`: a dimension given when the primitive runs (C's `INT64_MIN`, not imported).
    static let runtimeDimension = Int64.min

    nonisolated(unsafe) static let engine: dnnl_engine_t = {
        var engine: dnnl_engine_t?
        check(dnnl_engine_create(&engine, dnnl_cpu, 0), "CPU engine")
        return engine!
    }()

    static func check(_ status: dnnl_status_t, _ what: @autoclosure () -> String) {
        precondition(status == dnnl_success, "oneDNN failed (status \(status.rawValue)): \(what())")
    }

    /// A thread's stream, and a scratchpad that grows to the largest a primitive asks for.
    final class Stream {
        static var forThisThread: Stream { perThread.value }
        private static let perThread = PerThread { Stream() }

        let stream: dnnl_stream_t
        private var scratchpadMemory: dnnl_memory_t?
        private var scratchpadBytes = -1
        private var buffer: UnsafeMutableRawPointer?

        init() {
            var stream: dnnl_stream_t?
            OneDNN.check(dnnl_stream_create(&stream, OneDNN.engine, dnnl_stream_default_flags.rawValue), "stream")
            self.stream = stream!
        }

        deinit {
            dnnl_memory_destroy(scratchpadMemory)
            buffer?.deallocate()
            dnnl_stream_destroy(stream)
        }

        /// A scratchpad of at least `bytes`, as a memory object of bytes.
        func scratchpad(_ bytes: Int) -> dnnl_memory_t? {
            if bytes > scratchpadBytes {
                dnnl_memory_destroy(scratchpadMemory)
                buffer?.deallocate()
                buffer = .allocate(byteCount: max(1, bytes), alignment: 64)
                var description = dnnl_memory_desc_t()
                OneDNN.check(dnnl_memory_desc_init_by_tag(&description, 1, [Int64(max(1, bytes))], dnnl_u8, dnnl_a),
                             "scratchpad descriptor")
                OneDNN.check(dnnl_memory_create(&scratchpadMemory, &description, OneDNN.engine, buffer), "scratchpad")
                scratchpadBytes = bytes
            }
            return scratchpadMemory
        }
    }
}
