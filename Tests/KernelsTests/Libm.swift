#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

// Reference values from the C library, named apart from the kernels' own.
func Foundation_exp(_ x: Double) -> Double { exp(x) }
func Foundation_tanh(_ x: Double) -> Double { tanh(x) }
func erf(_ x: Double) -> Double {
    #if canImport(Glibc)
    Glibc.erf(x)
    #else
    Darwin.erf(x)
    #endif
}
