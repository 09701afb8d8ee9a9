// The C shim over hnswlib: see include/herd_hnsw.h.
// NOTE: searches walk the graph with the ef of the call (`search_knn`), not hnswlib's index-wide `ef_`:
// searches with different ef run side by side under the shared lock.
#include "herd_hnsw.h"

#include <hnswlib/hnswlib.h>

#include <cstring>
#include <algorithm>
#include <exception>
#include <queue>
#include <stdexcept>
#include <memory>
#include <mutex>
#include <shared_mutex>

struct herd_hnsw {
    std::unique_ptr<hnswlib::SpaceInterface<float>> space;
    std::unique_ptr<hnswlib::HierarchicalNSW<float>> graph;
    std::shared_mutex lock;
    std::mutex growLock;
    size_t ef = 0;
    size_t inflight = 0;  // vectors being added right now (guarded by growLock)
};

static void set_error(char *error, const char *message) {
    if (!error) return;
    std::strncpy(error, message, HERD_HNSW_ERROR_SIZE - 1);
    error[HERD_HNSW_ERROR_SIZE - 1] = 0;
}

static hnswlib::SpaceInterface<float> *make_space(int dim, int space) {
    if (space == 0) return new hnswlib::InnerProductSpace(dim);
    return new hnswlib::L2Space(dim);
}

extern "C" herd_hnsw *herd_hnsw_create(int dim, int space, size_t max_elements, size_t M, size_t ef_construction,
                                       size_t seed, char *error) {
    try {
        auto index = std::make_unique<herd_hnsw>();
        index->space.reset(make_space(dim, space));
        index->graph.reset(new hnswlib::HierarchicalNSW<float>(index->space.get(), max_elements < 1 ? 1 : max_elements,
                                                                M, ef_construction, seed));
        index->ef = 10;
        return index.release();
    } catch (const std::exception &e) {
        set_error(error, e.what());
        return nullptr;
    }
}

extern "C" herd_hnsw *herd_hnsw_load(const char *path, int dim, int space, size_t max_elements, char *error) {
    try {
        auto index = std::make_unique<herd_hnsw>();
        index->space.reset(make_space(dim, space));
        index->graph.reset(new hnswlib::HierarchicalNSW<float>(index->space.get(), std::string(path), false, max_elements));
        index->ef = 10;
        return index.release();
    } catch (const std::exception &e) {
        set_error(error, e.what());
        return nullptr;
    }
}

extern "C" void herd_hnsw_free(herd_hnsw *index) { delete index; }

// Makes sure `n` more vectors fit beside those present and those other threads are adding.
static void grow_for(herd_hnsw *index, size_t n) {
    std::lock_guard<std::mutex> grow(index->growLock);
    size_t needed = index->graph->cur_element_count + index->inflight + n;
    if (needed > index->graph->max_elements_) {
        std::unique_lock<std::shared_mutex> exclusive(index->lock);
        size_t capacity = index->graph->max_elements_ * 2;
        index->graph->resizeIndex(capacity > needed ? capacity : needed);
    }
    index->inflight += n;
}

static void done_adding(herd_hnsw *index, size_t n) {
    std::lock_guard<std::mutex> grow(index->growLock);
    index->inflight -= n;
}

extern "C" int herd_hnsw_reserve(herd_hnsw *index, size_t n, char *error) {
    try {
        std::lock_guard<std::mutex> grow(index->growLock);
        if (n > index->graph->max_elements_) {
            std::unique_lock<std::shared_mutex> exclusive(index->lock);
            index->graph->resizeIndex(n);
        }
        return 0;
    } catch (const std::exception &e) {
        set_error(error, e.what());
        return -1;
    }
}

extern "C" int herd_hnsw_add(herd_hnsw *index, const float *data, const int64_t *labels, size_t n, char *error) {
    size_t dim = *static_cast<size_t *>(index->space->get_dist_func_param());
    try {
        grow_for(index, n);
    } catch (const std::exception &e) {
        set_error(error, e.what());
        return -1;
    }
    int status = 0;
    try {
        // Adds run under the shared lock: searches and other adds continue meanwhile.
        std::shared_lock<std::shared_mutex> shared(index->lock);
        for (size_t i = 0; i < n; i++) {
            index->graph->addPoint(data + i * dim, static_cast<hnswlib::labeltype>(labels[i]));
        }
    } catch (const std::exception &e) {
        set_error(error, e.what());
        status = -1;
    }
    done_adding(index, n);
    return status;
}

// hnswlib's searchKnn (0.6) walked the same way with the ef of the call, without its metric
// counters: searchKnn bumps two index-wide atomics per hop (`metric_hops`,
// `metric_distance_computations`), a cache line that concurrent searches pass back and forth.
// The answer is built exactly as searchKnn builds it (the same heaps, the same tie order).
static std::priority_queue<std::pair<float, hnswlib::labeltype>> search_knn(const hnswlib::HierarchicalNSW<float> &g, const float *query,
                                                                          size_t k, size_t ef) {
    std::priority_queue<std::pair<float, hnswlib::labeltype>> result;
    if (g.cur_element_count == 0) return result;
    hnswlib::tableint currObj = g.enterpoint_node_;
    float curdist = g.fstdistfunc_(query, g.getDataByInternalId(currObj), g.dist_func_param_);
    for (int level = g.maxlevel_; level > 0; level--) {
        bool changed = true;
        while (changed) {
            changed = false;
            unsigned int *data = (unsigned int *)g.get_linklist(currObj, level);
            int size = g.getListCount(data);
            hnswlib::tableint *datal = (hnswlib::tableint *)(data + 1);
            for (int i = 0; i < size; i++) {
                hnswlib::tableint cand = datal[i];
                if (cand >= g.max_elements_) throw std::runtime_error("HNSW graph links to a node beyond the index (corrupt index file)");
                float d = g.fstdistfunc_(query, g.getDataByInternalId(cand), g.dist_func_param_);
                if (d < curdist) {
                    curdist = d;
                    currObj = cand;
                    changed = true;
                }
            }
        }
    }
    auto top = g.num_deleted_ ? g.template searchBaseLayerST<true, false>(currObj, query, std::max(ef, k))
                              : g.template searchBaseLayerST<false, false>(currObj, query, std::max(ef, k));
    while (top.size() > k) top.pop();
    while (!top.empty()) {
        result.push(std::pair<float, hnswlib::labeltype>(top.top().first, g.getExternalLabel(top.top().second)));
        top.pop();
    }
    return result;
}

// Writes a search's answer best first into `labels`/`distances`; returns how many there are.
static long drain_best_first(std::priority_queue<std::pair<float, hnswlib::labeltype>> result, int64_t *labels,
                             float *distances) {
    long found = static_cast<long>(result.size());
    for (long i = found - 1; i >= 0; i--) {  // the queue pops the worst first
        labels[i] = static_cast<int64_t>(result.top().second);
        distances[i] = result.top().first;
        result.pop();
    }
    return found;
}

extern "C" long herd_hnsw_search(herd_hnsw *index, const float *query, size_t k, size_t ef, int64_t *labels,
                                 float *distances, char *error) {
    try {
        if (ef < k) ef = k;
        std::shared_lock<std::shared_mutex> shared(index->lock);
        return drain_best_first(search_knn(*index->graph, query, k, ef), labels, distances);
    } catch (const std::exception &e) {
        set_error(error, e.what());
        return -1;
    }
}

// hnswlib's own searchKnn (index-wide ef, metric counters): the reference `search_knn` is tested against.
extern "C" long herd_hnsw_search_reference(herd_hnsw *index, const float *query, size_t k, size_t ef, int64_t *labels,
                                           float *distances, char *error) {
    try {
        if (ef < k) ef = k;
        std::unique_lock<std::shared_mutex> exclusive(index->lock);
        index->graph->setEf(ef);
        index->ef = ef;
        return drain_best_first(index->graph->searchKnn(query, k), labels, distances);
    } catch (const std::exception &e) {
        set_error(error, e.what());
        return -1;
    }
}

extern "C" int herd_hnsw_save(herd_hnsw *index, const char *path, char *error) {
    try {
        std::unique_lock<std::shared_mutex> exclusive(index->lock);
        index->graph->saveIndex(std::string(path));
        return 0;
    } catch (const std::exception &e) {
        set_error(error, e.what());
        return -1;
    }
}

extern "C" size_t herd_hnsw_count(herd_hnsw *index) {
    std::shared_lock<std::shared_mutex> shared(index->lock);
    return index->graph->cur_element_count;
}

extern "C" size_t herd_hnsw_capacity(herd_hnsw *index) {
    std::shared_lock<std::shared_mutex> shared(index->lock);
    return index->graph->max_elements_;
}
