#!/usr/bin/env python3
"""Python twin of Herd's online recommender (`herd serve`), for benchmarks/compare-serving.sh:
FastAPI on uvicorn, redis-py, faiss-cpu and PyTorch, over the same workspace.

  GET /recommender/recommend/{id}?k=10&canK=50
    user embedding (W/embeddings/user.safetensors)
    -> faiss search of canK items (index over W/embeddings/item.safetensors)
    -> user row + candidate rows from Redis (one pipelined MGET)
    -> ranking rows (item columns from the candidate's row, user columns repeated, others 0; the
       export's batch spec) -> Herd's exported W&D in PyTorch (herd_export.py), one forward
    -> top k as {"ids", "probs", "success", "errorCode", "errorMsg", "coldStart", "degraded",
       "source", "reason", "timingsMs"} (the keys Herd answers with)
  unknown user -> the most popular items (positives in W/features/train.herdtable), coldStart true.
  GET /healthz

Subcommands:
  load   W --redis URL [--prefix P]   writes W/features/{user,item}.herdtable rows (and {user,item}_unseen
                                      rows, keyed by their row key) into Redis under the twin's own keys ({P}user:{id}, {P}item:{id}; pickled tuples)
  serve  W --redis URL --port N [--workers 2] [--index auto|flat|ivf|hnsw]
  check  W --redis URL --herd URL [--users 5] [--canK 50]
                                      asks Herd's recommender for a few users, scores the same (user,
                                      candidate) rows with the twin and requires |Δprob| <= 1e-4
  The last stdout line of load/check is a JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import time
import urllib.request

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from herdtable import read_herdtable  # noqa: E402


def log(msg: str) -> None:
    print(f"[py_serving] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------
# Workspace tables -> Redis


def table_rows(path: str):
    """(column names, column types, key-less row tuples iterator factory) of a .herdtable; values are
    Python ints/floats, tuples for lists, None for nulls."""
    rows, cols = read_herdtable(path)
    names = list(cols)
    pycols = []
    for name in names:
        t, validity, data = cols[name]
        if t in ("int64", "double"):
            vals = data.tolist()
        elif t.endswith("_list"):
            o, inner = data
            if isinstance(inner, tuple):
                raise SystemExit(f"{path}: column {name} is {t}; the twin handles numeric lists only")
            flat = inner.tolist()
            vals = [tuple(flat[o[i]:o[i + 1]]) for i in range(rows)]
        elif t == "string":
            o, b = data
            vals = [b[o[i]:o[i + 1]].decode() for i in range(rows)]
        else:
            raise SystemExit(f"{path}: column {name} has type {t}")
        if validity is not None:
            vals = [v if ok else None for v, ok in zip(vals, validity.tolist())]
        pycols.append(vals)
    types = [cols[n][0] for n in names]
    return names, types, rows, pycols


def redis_client(url: str):
    import redis

    return redis.Redis.from_url(url, socket_timeout=5)


def key_column(workspace: str, kind: str) -> str:
    from herd_export import read_safetensors

    _, meta = read_safetensors(os.path.join(workspace, "embeddings", f"{kind}.safetensors"))
    key = meta.get("key_column")
    if not key:
        raise SystemExit(f"{workspace}/embeddings/{kind}.safetensors names no key_column")
    return key


def cmd_load(a) -> int:
    r = redis_client(a.redis)
    t0 = time.perf_counter()
    total = 0
    for kind in ("user", "item"):
        names, types, n, cols = table_rows(os.path.join(a.workspace, "features", f"{kind}.herdtable"))
        key = key_column(a.workspace, kind)
        k = names.index(key)
        r.set(f"{a.prefix}schema:{kind}", json.dumps({"names": names, "types": types, "key": key}))
        pipe = r.pipeline(transaction=False)
        batch = {}

        def put(rows_keys):
            nonlocal batch
            for rk, row in rows_keys:
                batch[f"{a.prefix}{kind}:{rk}"] = pickle.dumps(row, protocol=5)
                if len(batch) == 5000:
                    pipe.mset(batch)
                    batch = {}

        put((row[k], row) for row in zip(*cols))
        # NOTE: as `herd nearline` does: entities unseen in training (W/features/<kind>_unseen.herdtable,
        # key column 0) go in under their row key `<key>_key` (numbered after the index), which is how
        # the embeddings and the ANN index name them.
        unseen_path = os.path.join(a.workspace, "features", f"{kind}_unseen.herdtable")
        unseen = 0
        if os.path.exists(unseen_path):
            unames, _, unseen, ucols = table_rows(unseen_path)
            rk = ucols[unames.index(key + "_key")]
            pick = [ucols[unames.index(c)] for c in names]
            put(zip(rk, zip(*pick)))
        if batch:
            pipe.mset(batch)
        pipe.execute()
        total += n + unseen
        log(f"{kind}: {n} rows ({len(names)} columns) -> {a.prefix}{kind}:<{key}>, {unseen} unseen -> <{key}_key>")
    secs = time.perf_counter() - t0
    print(json.dumps({"rows": total, "seconds": secs, "rows_per_s": total / secs}))
    return 0


# ----------------------------------------------------------------------------------------------
# The pipeline


class Pipeline:
    def __init__(self, workspace: str, redis_url: str, prefix: str, index: str = "auto", model: str = "wnd",
                 build_index: bool = True, torch_threads: int = 1, bf16: bool = False):
        import torch

        from herd_export import WideAndDeepExport, latest_export, read_safetensors

        torch.set_num_threads(torch_threads)
        self.torch = torch
        # --bf16: the forward under torch.autocast(cpu, bfloat16) (Linear layers on BF16 oneDNN kernels).
        self.bf16 = bf16
        self.prefix = prefix
        self.r = redis_client(redis_url)
        schemas = {}
        for kind in ("user", "item"):
            raw = self.r.get(f"{prefix}schema:{kind}")
            if raw is None:
                raise SystemExit(f"Redis {redis_url} holds no {prefix}schema:{kind}: run `py_serving.py load` first")
            schemas[kind] = json.loads(raw)
        self.user_schema, self.item_schema = schemas["user"], schemas["item"]

        u, _ = read_safetensors(os.path.join(workspace, "embeddings", "user.safetensors"))
        self.user_row = {int(i): j for j, i in enumerate(u["ids"].tolist())}
        self.user_emb = np.ascontiguousarray(u["embeddings"], dtype=np.float32)
        it, _ = read_safetensors(os.path.join(workspace, "embeddings", "item.safetensors"))
        self.item_ids = np.asarray(it["ids"], dtype=np.int64)
        self.item_emb = np.ascontiguousarray(it["embeddings"], dtype=np.float32)

        export = latest_export(workspace, model)
        self.model = WideAndDeepExport(export)
        self.export = export
        # Where each sparse/dense column of the batch spec comes from (item columns win, as in Herd).
        ui = {n: i for i, n in enumerate(self.user_schema["names"])}
        ii = {n: i for i, n in enumerate(self.item_schema["names"])}
        src = lambda n: ("item", ii[n]) if n in ii else ("user", ui[n]) if n in ui else ("zero", -1)  # noqa: E731
        self.sparse_src = [src(n) for n in self.model.sparse_names]
        self.dense_src = [src(n) for n in self.model.dense_names]
        self.item_key = ii[self.item_schema["key"]]
        self.user_key = ui[self.user_schema["key"]]
        self.popular = self._popular(workspace)
        self.index_desc = "none"
        if build_index:
            self._build_index(index)

    def _popular(self, workspace: str, limit: int = 1000):
        path = os.path.join(workspace, "features", "train.herdtable")
        key = self.item_schema["key"]
        if not os.path.exists(path):
            return [], []
        _, cols = read_herdtable(path)
        labels = [n for n in ("reply", "retweet", "retweet_with_comment", "like", "label") if n in cols]
        if key not in cols or not labels:
            return [], []
        ids = np.asarray(cols[key][2])
        pos = np.zeros(len(ids), dtype=bool)
        for n in labels:
            pos |= np.asarray(cols[n][2]) > 0
        uniq, inv = np.unique(ids, return_inverse=True)
        count = np.bincount(inv)
        hits = np.bincount(inv, weights=pos)
        order = np.lexsort((uniq, -hits))[:limit]
        return uniq[order].tolist(), (hits[order] / count[order]).astype(np.float32).tolist()

    def _build_index(self, kind: str):
        import faiss

        faiss.omp_set_num_threads(1)
        n, d = self.item_emb.shape
        flat = faiss.IndexFlatIP(d)
        flat.add(self.item_emb)
        rng = np.random.default_rng(7)
        sample = self.user_emb[rng.choice(len(self.user_emb), size=min(300, len(self.user_emb)), replace=False)]
        _, truth = flat.search(sample, 10)

        def timed(index):
            t0 = time.perf_counter()
            found = np.stack([index.search(sample[i:i + 1], 10)[1][0] for i in range(len(sample))])
            secs = (time.perf_counter() - t0) / len(sample)
            recall = np.mean([len(set(found[i]) & set(truth[i])) / 10 for i in range(len(sample))])
            return recall, secs

        choices = []
        if kind in ("auto", "flat"):
            rec, secs = timed(flat)
            choices.append((secs, "Flat", flat, rec))
        if kind in ("auto", "ivf") and n >= 1000:
            nlist = 1 << max(4, int(round(np.log2(4 * np.sqrt(n)))))
            ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
            faiss.omp_set_num_threads(2)
            ivf.train(self.item_emb)
            ivf.add(self.item_emb)
            faiss.omp_set_num_threads(1)
            for p in (1, 2, 4, 8, 16, 32, 64, 128, 256):
                ivf.nprobe = min(p, nlist)
                rec, secs = timed(ivf)
                if rec >= 0.99:
                    choices.append((secs, f"IVF{nlist},Flat nprobe={ivf.nprobe}", ivf, rec))
                    break
        if kind == "hnsw":
            h = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
            h.hnsw.efConstruction = 200
            faiss.omp_set_num_threads(2)
            h.add(self.item_emb)
            faiss.omp_set_num_threads(1)
            for ef in (16, 32, 64, 128, 256, 512):
                h.hnsw.efSearch = ef
                rec, secs = timed(h)
                if rec >= 0.99:
                    break
            choices.append((secs, f"HNSW32 efSearch={ef}", h, rec))
        secs, desc, index, rec = min(choices, key=lambda c: c[0])
        self.index = index
        self.index_desc = f"faiss {desc} (recall@10 {rec:.4f} vs exact, {1 / secs:.0f} single queries/s at start)"
        log(f"index: {self.index_desc}; candidates: " + ", ".join(f"{c[1]} {1 / c[0]:.0f}/s r{c[3]:.3f}" for c in choices))

    # -- per request

    def fetch(self, user: int, items: list[int]):
        keys = [f"{self.prefix}user:{user}"] + [f"{self.prefix}item:{i}" for i in items]
        raw = self.r.mget(keys)
        urow = pickle.loads(raw[0]) if raw[0] is not None else None
        irows = [pickle.loads(b) if b is not None else None for b in raw[1:]]
        return urow, irows

    def rank(self, user: int, items: list[int], urow, irows) -> np.ndarray:
        torch = self.torch
        n = len(items)
        width = len(self.item_schema["names"])
        if any(r is None for r in irows):
            irows = [r if r is not None else tuple(items[j] if c == self.item_key else None for c in range(width))
                     for j, r in enumerate(irows)]
        if urow is None:
            urow = tuple(user if c == self.user_key else None for c in range(len(self.user_schema["names"])))
        icols = list(zip(*irows))
        arange = torch.arange(n + 1)
        bags = []
        for side, c in self.sparse_src:
            if side == "item":
                col = icols[c]
                if isinstance(next((v for v in col if v is not None), 0), tuple):
                    lens = [len(v) if v is not None else 0 for v in col]
                    flat = [x for v in col if v is not None for x in v]
                    off = torch.zeros(n + 1, dtype=torch.int64)
                    off[1:] = torch.tensor(lens, dtype=torch.int64).cumsum(0)
                    bags.append((torch.tensor(flat, dtype=torch.int64), off))
                else:
                    bags.append((torch.tensor([v if v is not None else 0 for v in col], dtype=torch.int64), arange))
            elif side == "user":
                v = urow[c]
                if isinstance(v, tuple):
                    bags.append((torch.tensor(v * n, dtype=torch.int64), torch.arange(n + 1) * len(v)))
                else:
                    bags.append((torch.full((n,), v if v is not None else 0, dtype=torch.int64), arange))
            else:
                bags.append((torch.zeros(n, dtype=torch.int64), arange))
        dense = torch.zeros(n, len(self.dense_src))
        for j, (side, c) in enumerate(self.dense_src):
            if side == "item":
                dense[:, j] = torch.tensor([float(v) if v is not None else 0.0 for v in icols[c]])
            elif side == "user":
                v = urow[c]
                dense[:, j] = float(v) if v is not None else 0.0
        with torch.inference_mode():
            if self.bf16:
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    logits = self.model(bags, dense)
                return torch.sigmoid(logits.float()).numpy()
            return torch.sigmoid(self.model(bags, dense)).numpy()

    def recommend(self, user: int, k: int, can_k: int) -> dict:
        t0 = time.perf_counter()
        row = self.user_row.get(user)
        timings = {}
        if row is None:
            n = min(k, len(self.popular[0]))
            return answer(self.popular[0][:n], self.popular[1][:n], cold=True, source="popular", timings={"total": ms(t0)})
        _, idx = self.index.search(self.user_emb[row:row + 1], can_k)
        idx = idx[0]
        idx = idx[idx >= 0]
        items = self.item_ids[idx].tolist()
        t1 = time.perf_counter()
        timings["recall"] = (t1 - t0) * 1e3
        urow, irows = self.fetch(user, items)
        t2 = time.perf_counter()
        timings["features"] = (t2 - t1) * 1e3
        probs = self.rank(user, items, urow, irows)
        t3 = time.perf_counter()
        timings["ranking"] = (t3 - t2) * 1e3
        top = np.argsort(-probs, kind="stable")[:k]
        timings["topK"] = ms(t3)
        timings["total"] = ms(t0)
        return answer([items[i] for i in top], probs[top].tolist(), timings=timings)


def ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1e3


def answer(ids, probs, cold=False, source="ranked", timings=None, error=None) -> dict:
    return {"ids": ids, "probs": probs, "success": error is None, "errorCode": error and error[0],
            "errorMsg": error and error[1], "coldStart": cold, "degraded": False, "source": source if error is None else None,
            "reason": None, "timingsMs": timings}


# ----------------------------------------------------------------------------------------------
# HTTP (FastAPI on uvicorn)


def create_app():
    """The app factory uvicorn's workers call (settings in PY_SERVING_SETTINGS)."""
    from fastapi import FastAPI
    from fastapi.responses import Response

    s = json.loads(os.environ["PY_SERVING_SETTINGS"])
    pipe = Pipeline(s["workspace"], s["redis"], s["prefix"], index=s["index"], bf16=s.get("bf16", False))
    app = FastAPI()

    def reply(body: dict, status: int = 200) -> Response:
        return Response(json.dumps(body), status_code=status, media_type="application/json")

    @app.get("/healthz")
    def healthz():
        return reply({"status": "ok"})

    # NOTE: a plain `def` route: FastAPI runs it on its thread pool, so the blocking Redis round trip
    # and the forward do not stall the event loop (torch releases the GIL in its kernels).
    @app.get("/recommender/recommend/{uid}")
    def recommend(uid: str, k: int = 10, canK: int = 50):  # noqa: N803 (Friesian's parameter name)
        try:
            user = int(uid)
        except ValueError:
            return reply(answer([], [], error=("INVALID_ARGUMENT", f"user id '{uid}' is not an integer")), 400)
        if not (1 <= k <= 1000) or not (1 <= canK <= 10000):
            return reply(answer([], [], error=("INVALID_ARGUMENT", "k must be in 1...1000 and canK in 1...10000")), 400)
        return reply(pipe.recommend(user, k, max(canK, k)))

    log(f"ready (pid {os.getpid()}): {pipe.index_desc}; ranking {pipe.export}")
    return app


def cmd_serve(a) -> int:
    import uvicorn

    os.environ["PY_SERVING_SETTINGS"] = json.dumps({"workspace": os.path.abspath(a.workspace), "redis": a.redis,
                                                     "prefix": a.prefix, "index": a.index, "bf16": a.bf16})
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    uvicorn.run("py_serving:create_app", factory=True, host=a.host, port=a.port, workers=a.workers,
                log_level="warning", access_log=False, loop="uvloop", http="httptools",
                app_dir=os.path.dirname(os.path.abspath(__file__)))
    return 0


def cmd_check(a) -> int:
    pipe = Pipeline(a.workspace, a.redis, a.prefix, build_index=False)
    users = list(pipe.user_row)[:: max(1, len(pipe.user_row) // a.users)][: a.users]
    worst, rows, overlap, tops = 0.0, 0, 0, 0
    for u in users:
        url = f"{a.herd.rstrip('/')}/recommender/recommend/{u}?k={a.canK}&canK={a.canK}"
        herd = json.load(urllib.request.urlopen(url, timeout=30))
        if herd.get("source") != "ranked":
            log(f"user {u}: Herd answered from {herd.get('source')} ({herd.get('reason')}); skipped")
            continue
        urow, irows = pipe.fetch(u, herd["ids"])
        mine = pipe.rank(u, herd["ids"], urow, irows)
        d = np.abs(mine - np.asarray(herd["probs"], dtype=np.float32))
        worst = max(worst, float(d.max()))
        rows += len(d)
        # Top 10 of the same candidates: Herd's answer is sorted by its probabilities.
        mine_top = {herd["ids"][i] for i in np.argsort(-mine, kind="stable")[:10]}
        overlap += len(mine_top & set(herd["ids"][:10]))
        tops += min(10, len(herd["ids"]))
        log(f"user {u}: {len(d)} candidates, max |twin - herd| = {d.max():.2e}")
    ok = rows > 0 and worst <= a.tolerance
    print(json.dumps({"rows": rows, "users": len(users), "max_abs_diff": worst, "top10_overlap": overlap / max(tops, 1),
                      "tolerance": a.tolerance, "ok": ok}))
    return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("load", "serve", "check"):
        p = sub.add_parser(name)
        p.add_argument("workspace")
        p.add_argument("--redis", required=True)
        p.add_argument("--prefix", default="pytwin:")
        if name == "serve":
            p.add_argument("--host", default="127.0.0.1")
            p.add_argument("--port", type=int, default=8090)
            p.add_argument("--workers", type=int, default=2)
            p.add_argument("--index", default="auto", choices=["auto", "flat", "ivf", "hnsw"])
            p.add_argument("--bf16", action="store_true", help="rank under torch.autocast(cpu, bfloat16)")
        if name == "check":
            p.add_argument("--herd", required=True, help="Herd's base URL, e.g. http://127.0.0.1:8080")
            p.add_argument("--users", type=int, default=5)
            p.add_argument("--canK", type=int, default=50)
            p.add_argument("--tolerance", type=float, default=1e-4, help="largest allowed |twin - herd| probability")
    a = ap.parse_args()
    return {"load": cmd_load, "serve": cmd_serve, "check": cmd_check}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
