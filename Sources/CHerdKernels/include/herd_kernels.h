#ifndef HERD_KERNELS_H
#define HERD_KERNELS_H
// Tiny C helpers for what Swift cannot express directly.

/// Hints the CPU to fetch the cache line holding `p` for reading (embedding rows about to be
/// gathered: random rows of large tables are memory-latency bound).
static inline void herd_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

/// Same, for a line about to be written (optimizer updates of embedding rows).
static inline void herd_prefetch_write(const void *p) { __builtin_prefetch(p, 1, 3); }

#if defined(__linux__)
#include <malloc.h>
/// Serves large allocations from the heap instead of fresh mmap'd pages (no page faults for
/// per-step buffers) and keeps freed memory for reuse. glibc only; a no-op elsewhere.
static inline void herd_keep_allocations_in_heap(void) {
    mallopt(M_MMAP_THRESHOLD, 1 << 28);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
}
#else
static inline void herd_keep_allocations_in_heap(void) {}
#endif

#if defined(__linux__)
#include <sys/mman.h>
/// Asks the kernel to back `[p, p + bytes)` with transparent huge pages (2 MiB) when it is
/// first touched; with THP in `madvise` mode (Debian's default) nothing else gets them. Returns
/// 0 on success; failure is harmless (normal pages).
static inline int herd_advise_huge_pages(void *p, unsigned long bytes) { return madvise(p, bytes, MADV_HUGEPAGE); }
#else
static inline int herd_advise_huge_pages(void *p, unsigned long bytes) { (void)p; (void)bytes; return -1; }
#endif

#endif
