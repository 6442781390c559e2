#ifndef ALLOCATION_COUNTER_H
#define ALLOCATION_COUNTER_H

/// Number of heap allocations (malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign) made by any
/// thread of this process. Linked into an executable, this library's definitions of those functions take
/// precedence over the C library's, which still does the work.
long allocation_count(void);

/// The part of `allocation_count()` made by code in oneDNN's library (libdnnl), which allocates the packing
/// workspace of each GEMM call itself; the toolkit cannot hand it a buffer through the GEMM API.
long gemm_library_allocation_count(void);

#endif
