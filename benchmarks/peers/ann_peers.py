"""ANN peers on the vectors `herd bench ann --write-data DIR` wrote: faiss-cpu IndexIVFFlat (nprobe
sweep) and IndexHNSWFlat, and hnswlib, one query at a time, recall@k against Herd's exact top-k.
Prints one JSON object (last line): {"results": [{"index", "setting", "recall", "qps"}], "best": {...},
"build_s": {index: seconds}}.
With meta "flat_only" (herd bench ann --flat-only): faiss IndexFlatIP alone, on 1 and 2 threads.
The HNSW sides use Herd's M and efConstruction (meta "hnsw_m", "ef_construction"), so all three graphs are
built alike. With meta "cache" (herd bench ann --cache DIR) built indexes are saved there, keyed by data
and settings, and loaded by later runs (their build seconds, from the run that built them, are reported).
"""
import json
import os
import sys
import time

import numpy as np

d = sys.argv[1]
meta = json.load(open(f"{d}/meta.json"))
n, dim, nq, k, target = meta["items"], meta["dim"], meta["queries"], meta["k"], meta.get("target", 0.99)
base = np.fromfile(f"{d}/base.f32", dtype=np.float32).reshape(n, dim)
queries = np.fromfile(f"{d}/queries.f32", dtype=np.float32).reshape(nq, dim)
truth = np.fromfile(f"{d}/truth.i64", dtype=np.int64).reshape(nq, k)
results = []
builds = {}
hnsw_m = meta.get("hnsw_m", 16)
ef_construction = meta.get("ef_construction", 200)
cache = meta.get("cache")
data_key = f"{n}x{dim}-c{meta.get('clusters')}-n{meta.get('noise', 0):.3f}-s{meta.get('seed', 42)}"
EF_LADDER = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024]  # as herd bench ann


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def measure(name, setting, search_one):
    found = np.empty((nq, k), dtype=np.int64)
    t0 = time.perf_counter()
    for i in range(nq):
        found[i] = search_one(queries[i : i + 1])
    secs = time.perf_counter() - t0
    recall = np.mean([len(set(found[i]) & set(truth[i])) / k for i in range(nq)])
    results.append({"index": name, "setting": setting, "recall": float(recall), "qps": nq / secs})
    log(f"{name:28s} {setting:14s} recall@{k} {recall:.4f} {nq / secs:9.0f} queries/s")
    return recall


def cached(name, key, build, save, load):
    """build() → index, or load(path) when a previous run saved it under `cache`; records build seconds."""
    path = f"{cache}/{key}-{data_key}.index" if cache else None
    if path and os.path.exists(path) and os.path.exists(path + ".json"):
        t0 = time.perf_counter()
        index = load(path)
        builds[name] = json.load(open(path + ".json"))["build_s"]
        log(f"{name} loaded from {path} in {time.perf_counter() - t0:.1f} s (built in {builds[name]:.1f} s)")
        return index
    t0 = time.perf_counter()
    index = build()
    builds[name] = time.perf_counter() - t0
    log(f"{name} built in {builds[name]:.1f} s")
    if path:
        os.makedirs(cache, exist_ok=True)
        save(index, path)
        json.dump({"build_s": builds[name], "threads": 2}, open(path + ".json", "w"))
    return index


flat_only = meta.get("flat_only", False)
try:
    import faiss

    if flat_only:
        # The exact index, one query at a time, on one and on both cores (Herd scans a large index
        # on every core; faiss splits a single query's scan only when allowed more threads).
        flat = faiss.IndexFlatIP(dim)
        flat.add(base)
        for threads in [1, 2]:
            faiss.omp_set_num_threads(threads)
            measure("faiss Flat", f"threads={threads}", lambda q: flat.search(q, k)[1][0])
        print(json.dumps({"results": results, "best": max(results, key=lambda r: r["qps"])}))
        sys.exit(0)
    faiss.omp_set_num_threads(1)  # one query at a time: no intra-query threads (as Herd)
    nlist = meta["nlist"]

    def build_ivf():
        quantizer = faiss.IndexFlatIP(dim)
        ivf = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        faiss.omp_set_num_threads(2)
        ivf.train(base)
        ivf.add(base)
        faiss.omp_set_num_threads(1)
        return ivf

    ivf = cached(f"faiss IVF{nlist},Flat", f"faiss-ivf{nlist}", build_ivf, faiss.write_index, faiss.read_index)
    for p in [1, 2, 4, 8, 16, 32, 64, 128]:
        if p > nlist:
            break
        ivf.nprobe = p
        if measure(f"faiss IVF{nlist},Flat", f"nprobe={p}", lambda q: ivf.search(q, k)[1][0]) >= target:
            break
    del ivf
    for m in ([] if meta.get("ivf_only") else [hnsw_m]):
        def build_hnsw():
            hnsw = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
            hnsw.hnsw.efConstruction = ef_construction
            faiss.omp_set_num_threads(2)
            hnsw.add(base)
            faiss.omp_set_num_threads(1)
            return hnsw

        hnsw = cached(f"faiss HNSW{m}", f"faiss-hnsw{m}-efc{ef_construction}", build_hnsw, faiss.write_index, faiss.read_index)
        for ef in EF_LADDER:
            hnsw.hnsw.efSearch = ef
            if measure(f"faiss HNSW{m}", f"efSearch={ef}", lambda q: hnsw.search(q, k)[1][0]) >= target:
                break
        del hnsw
except ImportError as e:
    log(f"faiss-cpu missing ({e}); run benchmarks/peers/setup")

try:
    if meta.get("ivf_only") or flat_only:
        raise ImportError("IVF only (--ivf-only)" if not flat_only else "Flat only (--flat-only)")
    import hnswlib

    for m in [hnsw_m]:
        def build_hnswlib():
            h = hnswlib.Index(space="ip", dim=dim)
            h.init_index(max_elements=n, M=m, ef_construction=ef_construction)
            h.set_num_threads(2)
            h.add_items(base, np.arange(n))
            return h

        def load_hnswlib(path):
            h = hnswlib.Index(space="ip", dim=dim)
            h.load_index(path, max_elements=n)
            return h

        h = cached(f"hnswlib M{m}", f"hnswlib-m{m}-efc{ef_construction}", build_hnswlib, lambda h, p: h.save_index(p), load_hnswlib)
        h.set_num_threads(1)
        for ef in EF_LADDER:
            h.set_ef(max(ef, k))
            if measure(f"hnswlib M{m}", f"ef={ef}", lambda q: h.knn_query(q, k=k)[0][0]) >= target:
                break
except ImportError as e:
    log(f"hnswlib missing ({e}); run benchmarks/peers/setup")

reaching = [r for r in results if r["recall"] >= target]
best = max(reaching, key=lambda r: r["qps"]) if reaching else {}
print(json.dumps({"results": results, "best": best, "build_s": builds, "hnsw_m": hnsw_m, "ef_construction": ef_construction}))
