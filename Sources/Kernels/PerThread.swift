import Foundation

/// One instance of a class per thread, made on the thread's first use and released when the thread ends: working
/// memory that each thread reuses from call to call without locks (the GEMMs' scratch).
final class PerThread<Value: AnyObject>: @unchecked Sendable {
    private let key: pthread_key_t
    private let make: @Sendable () -> Value

    init(_ make: @escaping @Sendable () -> Value) {
        var key = pthread_key_t()
        let status = pthread_key_create(&key) { pointer in
            if let pointer { Unmanaged<AnyObject>.fromOpaque(pointer).release() }
        }
        precondition(status == 0, "pthread_key_create failed")
        self.key = key
        self.make = make
    }

    /// The calling thread's instance.
    var value: Value {
        if let existing = pthread_getspecific(key) {
            return Unmanaged<AnyObject>.fromOpaque(existing).takeUnretainedValue() as! Value
        }
        let value = make()
        pthread_setspecific(key, Unmanaged<AnyObject>.passRetained(value).toOpaque())
        return value
    }
}
