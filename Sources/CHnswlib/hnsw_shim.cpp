// The C shim over hnswlib: see include/herd_hnsw.h.
// NOTE: hnswlib's searchKnn reads the index-wide `ef_`; a search with another ef takes the lock
// exclusively to change it, so a server with one ef (the common case) never serialises searches.
#include "herd_hnsw.h"

#include <hnswlib/hnswlib.h>

#include <cstring>
#include <exception>
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

extern "C" long herd_hnsw_search(herd_hnsw *index, const float *query, size_t k, size_t ef, int64_t *labels,
                                 float *distances, char *error) {
    try {
        if (ef < k) ef = k;
        if (index->ef != ef) {
            std::unique_lock<std::shared_mutex> exclusive(index->lock);
            index->graph->setEf(ef);
            index->ef = ef;
        }
        std::shared_lock<std::shared_mutex> shared(index->lock);
        auto result = index->graph->searchKnn(query, k);
        long found = static_cast<long>(result.size());
        for (long i = found - 1; i >= 0; i--) {  // the queue pops the worst first
            labels[i] = static_cast<int64_t>(result.top().second);
            distances[i] = result.top().first;
            result.pop();
        }
        return found;
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
