// A small C interface over hnswlib (Debian's header-only libhnswlib-dev), for Swift.
// Every function that can fail returns 0 on success and -1 on failure, with the reason in `error`
// (a NUL-terminated message, at most `HERD_HNSW_ERROR_SIZE` bytes including the NUL).
#ifndef HERD_HNSW_H
#define HERD_HNSW_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HERD_HNSW_ERROR_SIZE 256

/// An index: the hnswlib graph, its space, and a reader/writer lock (searches and adds share it;
/// growing the capacity and changing ef take it exclusively).
typedef struct herd_hnsw herd_hnsw;

/// space: 0 = inner product (hnswlib distance 1 - <q, x>), 1 = squared L2.
herd_hnsw *herd_hnsw_create(int dim, int space, size_t max_elements, size_t M, size_t ef_construction,
                            size_t seed, char *error);
/// Loads an index written by `herd_hnsw_save` (the capacity grows to at least `max_elements`).
herd_hnsw *herd_hnsw_load(const char *path, int dim, int space, size_t max_elements, char *error);
void herd_hnsw_free(herd_hnsw *index);

/// Adds (or replaces, when the label exists) `n` vectors `data[n, dim]` with `labels[n]`, growing
/// the capacity as needed. Safe to call while other threads search.
int herd_hnsw_add(herd_hnsw *index, const float *data, const int64_t *labels, size_t n, char *error);

/// The `k` nearest neighbours of `query[dim]` with search breadth `ef` (at least `k`), best first:
/// `labels[k]` and hnswlib distances `distances[k]`. Returns the number found (≤ k) or -1.
/// Safe to call from many threads at once.
long herd_hnsw_search(herd_hnsw *index, const float *query, size_t k, size_t ef, int64_t *labels,
                      float *distances, char *error);

/// The same search through hnswlib's own `searchKnn` (sets the index-wide ef under the exclusive
/// lock): the reference `herd_hnsw_search` is tested against.
long herd_hnsw_search_reference(herd_hnsw *index, const float *query, size_t k, size_t ef, int64_t *labels,
                                float *distances, char *error);

/// Grows the capacity to at least `n` vectors.
int herd_hnsw_reserve(herd_hnsw *index, size_t n, char *error);

int herd_hnsw_save(herd_hnsw *index, const char *path, char *error);
size_t herd_hnsw_count(herd_hnsw *index);
size_t herd_hnsw_capacity(herd_hnsw *index);

#ifdef __cplusplus
}
#endif
#endif
