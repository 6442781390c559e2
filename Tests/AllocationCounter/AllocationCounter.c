#define _GNU_SOURCE
#include "AllocationCounter.h"

#include <link.h>
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

// glibc's own entry points, which these definitions forward to.
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);
extern void __libc_free(void *pointer);

static atomic_long allocations;
static atomic_long gemm_library_allocations;

long allocation_count(void) { return atomic_load(&allocations); }
long gemm_library_allocation_count(void) { return atomic_load(&gemm_library_allocations); }

// The address range of oneDNN's shared library in this process, found once at load time (the allocator runs
// for every allocation of the process, so the check itself must be two comparisons).
static uintptr_t gemm_library_start, gemm_library_end;

static int find_gemm_library(struct dl_phdr_info *info, size_t size, void *unused) {
    (void)size;
    (void)unused;
    if (!info->dlpi_name || !strstr(info->dlpi_name, "libdnnl")) return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *segment = &info->dlpi_phdr[i];
        if (segment->p_type != PT_LOAD) continue;
        uintptr_t start = info->dlpi_addr + segment->p_vaddr, end = start + segment->p_memsz;
        if (gemm_library_start == 0 || start < gemm_library_start) gemm_library_start = start;
        if (end > gemm_library_end) gemm_library_end = end;
    }
    return 1;
}

__attribute__((constructor)) static void locate_gemm_library(void) { dl_iterate_phdr(find_gemm_library, NULL); }

static inline int called_from_gemm_library(const void *caller) {
    uintptr_t address = (uintptr_t)caller;
    return address >= gemm_library_start && address < gemm_library_end;
}

// Inlined into each entry point, so that the return address is that entry point's caller.
#define note_allocation()                                                                 \
    do {                                                                                  \
        atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);                 \
        if (called_from_gemm_library(__builtin_return_address(0)))                        \
            atomic_fetch_add_explicit(&gemm_library_allocations, 1, memory_order_relaxed); \
    } while (0)

void *malloc(size_t size) {
    note_allocation();
    return __libc_malloc(size);
}

void *calloc(size_t count, size_t size) {
    note_allocation();
    return __libc_calloc(count, size);
}

void *realloc(void *pointer, size_t size) {
    note_allocation();
    return __libc_realloc(pointer, size);
}

void *memalign(size_t alignment, size_t size) {
    note_allocation();
    return __libc_memalign(alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size) {
    note_allocation();
    return __libc_memalign(alignment, size);
}

int posix_memalign(void **result, size_t alignment, size_t size) {
    note_allocation();
    void *pointer = __libc_memalign(alignment, size);
    if (pointer == NULL) return ENOMEM;
    *result = pointer;
    return 0;
}

void free(void *pointer) { __libc_free(pointer); }
