"""Driver of benchmarks/compare-serving.sh (run through it: it sets HERD, PY, RESULTS, STAMP).
Stdlib only, so it runs in the peer venv or any python3."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

HERD, PY, RESULTS, STAMP = os.environ["HERD"], os.environ["PY"], os.environ["RESULTS"], os.environ["STAMP"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICK = os.environ.get("QUICK", "0") == "1"
ROWS = int(os.environ.get("ROWS", 30_000 if QUICK else 600_000))
USERS = int(os.environ.get("USERS", 8_000 if QUICK else 200_000))
ITEMS = int(os.environ.get("ITEMS", 8_000 if QUICK else 150_000))
CANKS = [int(x) for x in os.environ.get("CANK", "50" if QUICK else "50 200").split()]
DURATION = float(os.environ.get("DURATION", 2 if QUICK else 5))
LADDER = [int(x) for x in os.environ.get("LADDER", "2 8 32" if QUICK else "1 2 4 8 16 32 64").split()]
EMBEDDED = os.environ.get("EMBEDDED", "0" if QUICK else "1") == "1"
# Herd on Redis behind its near cache of item rows (`redis://…?item_cache=N`), beside the plain Redis
# stack (never instead of it): ITEM_CACHE=0 leaves it out.
ITEM_CACHE = int(os.environ.get("ITEM_CACHE", "0" if QUICK else "200000"))
PY_WORKERS = int(os.environ.get("PY_WORKERS", 2))
# Herd's ranking precisions (`herd serve --precision`): each adds a Redis stack and, with EMBEDDED, an embedded one.
PRECISIONS = os.environ.get("PRECISIONS", "fp32 bf16").split()
# TWIN_BF16=1 adds the twin ranking under torch.autocast(bfloat16) (`py_serving.py serve --bf16`).
TWIN_BF16 = os.environ.get("TWIN_BF16", "1") == "1"
# HERD_SERVE_ARGS: extra flags for every `herd serve` (e.g. "--enable-http-on-request-threads" for an A/B).
HERD_SERVE_ARGS = os.environ.get("HERD_SERVE_ARGS", "").split()
CHECK_USERS = int(os.environ.get("CHECK_USERS", 5 if QUICK else 50))
WS = os.environ.get("WORKSPACE", os.path.join(RESULTS, f"serving-ws-{ROWS}-{USERS}-{ITEMS}"))
procs: list[subprocess.Popen] = []


def say(msg: str) -> None:
    print(f"== {msg}", file=sys.stderr, flush=True)


def busy_pct(secs: float = 1.0) -> float:
    def read():
        f = open("/proc/stat").readline().split()[1:]
        v = [int(x) for x in f[:8]]
        return v[0] + v[1] + v[2] + v[5] + v[6] + v[7], v[3] + v[4]
    b1, i1 = read()
    time.sleep(secs)
    b2, i2 = read()
    return 100.0 * (b2 - b1) / max(1, (b2 - b1) + (i2 - i1))


def run(args: list[str], json_last: bool = False, **kw):
    say(" ".join(args))
    out = subprocess.run(args, check=True, stdout=subprocess.PIPE, text=True, **kw).stdout
    if json_last:
        return json.loads(out.strip().splitlines()[-1])
    return out


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start(args: list[str], log: str, env=None) -> subprocess.Popen:
    say("start: " + " ".join(args) + f"  (log {log})")
    p = subprocess.Popen(args, stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env, start_new_session=True)
    procs.append(p)
    return p


def stop_all() -> None:
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


def wait_http(url: str, proc: subprocess.Popen, log: str, timeout: float = 300) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"{url}: the server exited ({proc.returncode}); see {log}:\n" + open(log).read()[-3000:])
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except Exception:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not answer within {timeout} s; see {log}")


def workspace() -> None:
    done = os.path.join(WS, "serving", "bench-ready")
    if os.path.exists(done) and os.environ.get("REBUILD") != "1":
        say(f"reusing {WS} (REBUILD=1 regenerates)")
        return
    os.makedirs(WS, exist_ok=True)
    run([HERD, "generate", "recsys2021", "--rows", str(ROWS), "--users", str(USERS), "--items", str(ITEMS),
         "--seed", "1", "--workspace", WS])
    run([HERD, "preprocess", "recsys2021", "--workspace", WS])
    # NOTE: quality is not the point: a few hundred steps give real (non-random) weights and BN statistics.
    steps = "60" if QUICK else "300"
    run([HERD, "train", "--workspace", WS, "--model", "wnd", "--spec", "recsys2021", "--epochs", "1", "--max-steps", steps, "--seed", "1"])
    run([HERD, "train", "--workspace", WS, "--model", "twotower", "--spec", "recsys2021", "--epochs", "1", "--max-steps", steps, "--seed", "1"])
    run([HERD, "predict", "--workspace", WS, "--name", "twotower"])
    os.makedirs(os.path.dirname(done), exist_ok=True)
    open(done, "w").write("ok\n")


def loadtest(url: str, ids: str, concurrency: int, rate: float | None = None, duration: float = DURATION) -> dict:
    args = [HERD, "loadtest", "--url", url, "--ids", ids, "--concurrency", str(concurrency), "--duration", f"{duration}s",
            "--warmup", "1s", "--timeout", "10", "--json"]
    if rate:
        args += ["--rate", f"{rate:.1f}"]
    out = subprocess.run(args, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def fmt(r: dict) -> str:
    lat = r["latency_ms"]
    return f"{r['qps']:8.0f} q/s  p50 {lat['p50']:7.2f}  p99 {lat['p99']:8.2f} ms  errors {r['errors']}"


def saturation(stacks: dict[str, str], ids: str) -> dict[str, dict]:
    """Closed-loop QPS at rising concurrency, stacks interleaved per step; stops a stack once two
    steps in a row add < 5 %."""
    best = {s: None for s in stacks}
    flat = {s: 0 for s in stacks}
    steps = {s: [] for s in stacks}
    for c in LADDER:
        for s, url in stacks.items():
            if flat[s] >= 2:
                continue
            r = loadtest(url, ids, c)
            r["busy_pct_after"] = busy_pct(0.5)
            steps[s].append(r)
            print(f"   {s:14s} c={c:<3d} {fmt(r)}  (machine {r['busy_pct_after']:.0f}% busy after)", file=sys.stderr, flush=True)
            if best[s] is None or r["qps"] > best[s]["qps"] * 1.05:
                flat[s] = 0
            else:
                flat[s] += 1
            if best[s] is None or r["qps"] > best[s]["qps"]:
                best[s] = r
    return {s: {"best": best[s], "steps": steps[s]} for s in stacks}


def model_work(base: str) -> tuple[float, float] | None:
    """(rows, multiply-adds) the ranking model ran so far (herd_ranking_model_{rows,macs}_total)."""
    try:
        text = urllib.request.urlopen(base + "/metrics", timeout=10).read().decode()
    except OSError:
        return None
    vals = {}
    for line in text.splitlines():
        for k in ("herd_ranking_model_rows_total", "herd_ranking_model_macs_total"):
            if line.startswith(k + " "):
                vals[k] = float(line.split()[-1])
    if len(vals) < 2:
        return None
    return vals["herd_ranking_model_rows_total"], vals["herd_ranking_model_macs_total"]


def metric_sum(base: str, name: str, stage: str) -> tuple[float, float]:
    text = urllib.request.urlopen(base + "/metrics", timeout=10).read().decode()
    s = c = 0.0
    for line in text.splitlines():
        if line.startswith(name) and f'stage="{stage}"' in line:
            if line.split("{")[0].endswith("_sum"):
                s = float(line.split()[-1])
            elif line.split("{")[0].endswith("_count"):
                c = float(line.split()[-1])
    return s, c


def cache_counts(base: str) -> dict:
    """The near cache's counters (`herd_feature_cache_*`) of a Herd stack; empty without a cache."""
    text = urllib.request.urlopen(base + "/metrics", timeout=10).read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("herd_feature_cache_"):
            out[line.split("{")[0][len("herd_feature_cache_"):]] = float(line.split()[-1])
    return out


def main() -> int:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    say(f"herd {HERD}; workspace {WS}; QUICK={int(QUICK)}; canK {CANKS}; {DURATION:g} s per load step; ladder {LADDER}")
    busy_start = busy_pct(1)
    say(f"machine load before: {busy_start:.0f}% busy, loadavg {open('/proc/loadavg').read().split()[:3]}")
    if busy_start > 10:
        print("!! MACHINE NOT QUIET: other processes kept the CPUs "
              f"{busy_start:.0f}% busy; figures from this run are NOISY, do not quote them as final", file=sys.stderr)
    workspace()
    meta = json.load(open(os.path.join(WS, "data", "oracle.json")))
    tmp = os.path.join(RESULTS, f"serving-{STAMP}")
    os.makedirs(tmp, exist_ok=True)
    try:
        rport = free_port()
        rp = start(["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], f"{tmp}/redis.log")
        redis = f"redis://127.0.0.1:{rport}"
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", rport), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        if EMBEDDED:
            run([HERD, "nearline", "--workspace", WS])
            emb_store = "embedded:" + os.path.join(WS, "serving", "features.store")
        near = run([HERD, "nearline", "--workspace", WS, "--redis", redis, "--json"], json_last=True)
        twin_load = run([PY, os.path.join(ROOT, "benchmarks/peers/py_serving.py"), "load", WS, "--redis", redis], json_last=True)

        def herd(name: str, store: str, precision: str) -> str:
            port, log = free_port(), f"{tmp}/{name}.log"
            p = start([HERD, "serve", "--workspace", WS, "--port", str(port), "--grpc-port=-1", "--redis", store,
                       "--precision", precision] + HERD_SERVE_ARGS, log)
            wait_http(f"http://127.0.0.1:{port}/healthz", p, log)
            return f"http://127.0.0.1:{port}"

        def twin(bf16: bool) -> tuple[str, str]:
            port, log = free_port(), f"{tmp}/py-serving{'-bf16' if bf16 else ''}.log"
            p = start([PY, os.path.join(ROOT, "benchmarks/peers/py_serving.py"), "serve", WS, "--redis", redis, "--port", str(port),
                       "--workers", str(PY_WORKERS)] + (["--bf16"] if bf16 else []), log)
            wait_http(f"http://127.0.0.1:{port}/healthz", p, log)
            return f"http://127.0.0.1:{port}", log

        stacks = {}
        for prec in PRECISIONS:
            sfx = "" if prec == "fp32" else f"-{prec}"
            stacks["herd" + sfx] = herd("herd-serve" + sfx, redis, prec)
            if ITEM_CACHE:
                stacks["herd-cache" + sfx] = herd("herd-serve-cache" + sfx, f"{redis}?item_cache={ITEM_CACHE}", prec)
            if EMBEDDED:
                stacks["herd-embedded" + sfx] = herd("herd-serve-embedded" + sfx, emb_store, prec)
        pbase, plog = twin(False)
        stacks["python"] = pbase
        if TWIN_BF16:
            stacks["python-bf16"], _ = twin(True)
        hbase = stacks["herd"]
        say("twin index: " + next((l.strip() for l in open(plog) if "index:" in l), "?"))

        check = run([PY, os.path.join(ROOT, "benchmarks/peers/py_serving.py"), "check", WS, "--redis", redis, "--herd", hbase,
                     "--users", str(CHECK_USERS), "--canK", str(max(CANKS))], json_last=True)
        if not check["ok"]:
            raise SystemExit(f"the twin's probabilities differ from Herd's: {check}")
        say(f"twin == herd on {check['rows']} (user, candidate) rows, max |Δprob| {check['max_abs_diff']:.2e}")
        # BF16 quality: Herd's BF16 ranking against the twin's FP32 (= Herd FP32) on the same candidates.
        quality = {}
        for s, b in stacks.items():
            if s.startswith("herd") and s != "herd" and "embedded" not in s:
                quality[s] = run([PY, os.path.join(ROOT, "benchmarks/peers/py_serving.py"), "check", WS, "--redis", redis, "--herd", b,
                                  "--users", str(CHECK_USERS), "--canK", str(max(CANKS)), "--tolerance", "1"], json_last=True)
                say(f"{s} vs FP32 on {quality[s]['rows']} rows: max |Δprob| {quality[s]['max_abs_diff']:.2e}, "
                    f"top-10 overlap {100 * quality[s]['top10_overlap']:.1f}%")

        ids = f"{tmp}/users.txt"
        sys.path.insert(0, os.path.join(ROOT, "benchmarks/peers"))
        from herd_export import read_safetensors  # noqa: E402
        u, _ = read_safetensors(os.path.join(WS, "embeddings", "user.safetensors"))
        item_count = len(read_safetensors(os.path.join(WS, "embeddings", "item.safetensors"))[0]["ids"])
        open(ids, "w").write("\n".join(str(int(x)) for x in u["ids"]) + "\n")
        say(f"{len(u['ids'])} users with embeddings (the load's ids), {item_count} items in the index")

        kern = run([HERD, "bench", "kernels", "--json"], json_last=True)
        roof = kern.get("gemm_roofline_gflops")
        flops_row = None
        from herd_export import WideAndDeepExport, latest_export  # noqa: E402
        flops_row = WideAndDeepExport(latest_export(WS, "wnd")).flops_per_row
        # NOTE: flops_row is dense-equivalent (every input column of every layer multiplied, as
        # the twin does). Herd executes fewer: its first layer adds one weight row per indicator
        # id instead of multiplying the one-hot block, and hoists the columns equal across a
        # request's candidates (the user's) out of the per-row product. `herd bench ranking`
        # counts those multiply-adds on request-shaped batches from this workspace's store.
        executed_row = {}
        for cank in CANKS:
            try:
                br = run([HERD, "bench", "ranking", "--workspace", WS, "--cank", str(cank), "--requests", "20", "--repeats", "1", "--json"], json_last=True)
                executed_row[cank] = 1e6 * br["hoisted"]["executed_mflop_per_row"]
            except Exception as e:  # an older herd without `bench ranking`
                say(f"executed FLOPs per row unknown ({e}); reporting dense-equivalent only")

        results = {}
        for cank in CANKS:
            q = f"/recommender/recommend/{{id}}?k=10&canK={cank}"
            urls = {s: b + q for s, b in stacks.items()}
            say(f"canK {cank}: saturation (closed loop, concurrency {LADDER}, stacks interleaved)")
            before = {s: metric_sum(b, "herd_recommend_stage_duration_seconds", "ranking") for s, b in stacks.items() if s.startswith("herd")}
            work0 = {s: model_work(b) for s, b in stacks.items() if s.startswith("herd")}
            sat = saturation(urls, ids)
            after = {s: metric_sum(b, "herd_recommend_stage_duration_seconds", "ranking") for s, b in stacks.items() if s.startswith("herd")}
            work1 = {s: model_work(b) for s, b in stacks.items() if s.startswith("herd")}
            hsat = sat["herd"]["best"]["qps"]
            rate = hsat / 2
            say(f"canK {cank}: p99 at half of Herd's saturation ({rate:.0f} requests/s, open loop)")
            # NOTE: each Herd stack at half of its own saturation (BF16 saturates higher); the twins
            # at half of Herd FP32's, and at half of their own.
            at_half = {}
            for s, url in urls.items():
                srate = sat[s]["best"]["qps"] / 2 if s.startswith("herd") else rate
                r = loadtest(url, ids, 64, rate=srate, duration=max(DURATION * 2, 4))
                r["busy_pct_after"] = busy_pct(0.5)
                r["rate"] = srate
                at_half[s] = r
                print(f"   {s:18s} @{srate:.0f}/s {fmt(r)}", file=sys.stderr, flush=True)
            own_half = {}
            for s in urls:
                if s.startswith("python"):
                    orate = sat[s]["best"]["qps"] / 2
                    own_half[s] = loadtest(urls[s], ids, 64, rate=orate, duration=max(DURATION * 2, 4))
                    own_half[s]["rate"] = orate
                    print(f"   {s:18s} @{orate:.0f}/s (half its own) {fmt(own_half[s])}", file=sys.stderr, flush=True)
            rank = {}
            for s in before:
                (s0, c0), (s1, c1) = before[s], after[s]
                secs, calls = s1 - s0, c1 - c0
                rows_s = sat[s]["best"]["qps"] * cank
                # NOTE: what the server itself executed over the whole ladder (its /metrics:
                # hoisting, the first-layer row cache and the row dedupe all counted); else what
                # `herd bench ranking` executes on random candidates (no dedupe, cold cache).
                served = None
                if work0.get(s) and work1.get(s) and work1[s][0] > work0[s][0]:
                    served = 2 * (work1[s][1] - work0[s][1]) / (work1[s][0] - work0[s][0])
                ex = served or executed_row.get(cank)
                rank[s] = {
                    "flops_per_row": flops_row,
                    "flops_per_row_meaning": "dense-equivalent",
                    "executed_flops_per_row": ex,
                    "executed_flops_per_row_source": "herd /metrics (herd_ranking_model_macs_total / rows)" if served else "herd bench ranking",
                    "rows_per_s_at_saturation": rows_s,
                    "gflops_at_saturation": flops_row * rows_s / 1e9,
                    "fraction_of_roofline": flops_row * rows_s / 1e9 / roof if roof else None,
                    "executed_gflops_at_saturation": ex * rows_s / 1e9 if ex else None,
                    "executed_fraction_of_roofline": ex * rows_s / 1e9 / roof if ex and roof else None,
                    "ranking_stage_ms_mean": 1e3 * secs / calls if calls else None,
                    "ranking_stage_gflops_per_request_thread": flops_row * cank * calls / secs / 1e9 if secs else None,
                }
            caches = {s: cache_counts(b) for s, b in stacks.items() if s.startswith("herd-cache")}
            for s, c in caches.items():
                seen = c.get("hits_total", 0) + c.get("misses_total", 0)
                say(f"{s}: near cache {c.get('entries', 0):.0f} rows, hit rate {c.get('hits_total', 0) / max(seen, 1):.4f} "
                    f"over {seen:.0f} item lookups so far")
            results[str(cank)] = {"near_cache": caches, "saturation": sat, "at_half_herd_saturation": at_half, "python_at_half_own_saturation": own_half,
                                  "rate": rate, "ranking": rank}
        busy_end = busy_pct(1)
    finally:
        stop_all()

    # Table.
    print(f"\nHerd vs Python twin, whole recommend pipeline ({len(u['ids'])} users, {item_count} items; "
          f"Redis feature store unless 'embedded'; k 10; Herd stacks at half of their own saturation). Machine {busy_start:.0f}% / {busy_end:.0f}% busy before / after — figures are noisy unless both are ≤ 10%.")
    print(f"{'canK':>5s} {'stack':18s} {'sat. q/s':>9s} {'@conc':>6s} {'p99@sat':>9s} {'rate':>7s} {'p50@rate':>9s} {'p99@rate':>9s} {'errors':>7s}")
    summary = {}
    for cank, r in results.items():
        for s in r["saturation"]:
            b = r["saturation"][s]["best"]
            h = r["at_half_herd_saturation"][s]
            print(f"{cank:>5s} {s:18s} {b['qps']:9.0f} {b['concurrency']:6d} {b['latency_ms']['p99']:9.2f} {h['rate']:7.0f} "
                  f"{h['latency_ms']['p50']:9.2f} {h['latency_ms']['p99']:9.2f} {h['errors']:7d}")
        for s, o in r["python_at_half_own_saturation"].items():
            print(f"{cank:>5s} {s + ' (½ own)':18s} {'':9s} {'':6s} {'':9s} {o['rate']:7.0f} {o['latency_ms']['p50']:9.2f} {o['latency_ms']['p99']:9.2f} {o['errors']:7d}")
        summary[cank] = {}
        py = r["saturation"]["python"]["best"]["qps"]
        pyb = r["saturation"].get("python-bf16", {}).get("best", {}).get("qps")
        for s in r["ranking"]:
            ratio = r["saturation"][s]["best"]["qps"] / max(py, 1e-9)
            ratio_b = r["saturation"][s]["best"]["qps"] / pyb if pyb else None
            p99 = r["at_half_herd_saturation"][s]["latency_ms"]["p99"]
            rk = r["ranking"][s]
            print(f"      canK {cank} {s}: / Python FP32 {ratio:.2f}×" + (f", / Python BF16 {ratio_b:.2f}×" if ratio_b else "") +
                  f" (goal ≥ 3); p99 at half its saturation {p99:.2f} ms (goal ≤ 20); "
                  f"ranking {rk['gflops_at_saturation']:.1f} GFLOP/s dense-equivalent = {100 * (rk['fraction_of_roofline'] or 0):.0f}% of the "
                  f"{roof:.0f} GFLOP/s FP32 GEMM roofline (goal ≥ 70%)"
                  + (f", executed {rk['executed_gflops_at_saturation']:.1f} GFLOP/s = {100 * rk['executed_fraction_of_roofline']:.0f}% "
                     f"({rk['executed_flops_per_row'] / 1e6:.3f} of {flops_row / 1e6:.3f} MFLOP/row)" if rk.get("executed_gflops_at_saturation") else "")
                  + f"; ranking stage {rk['ranking_stage_ms_mean'] or 0:.2f} ms/request")
            summary[cank][s] = {"qps_ratio": ratio, "qps_ratio_vs_python_bf16": ratio_b, "herd_p99_at_half_ms": p99,
                                "ranking_fraction_of_roofline": rk["fraction_of_roofline"],
                                "ranking_executed_fraction_of_roofline": rk.get("executed_fraction_of_roofline")}
    doc = {"benchmark": "serving", "stamp": STAMP, "quick": QUICK, "workspace": WS, "users": len(u["ids"]), "items": item_count,
           "rows": ROWS, "oracle": {k: meta.get(k) for k in ("users", "items")}, "nearline": near, "twin_load": twin_load,
           "twin_check": check, "bf16_quality": quality, "precisions": PRECISIONS, "herd_serve_args": HERD_SERVE_ARGS, "gemm_roofline_gflops": roof, "kernels": kern, "busy_pct_start": busy_start, "busy_pct_end": busy_end,
           "noisy": max(busy_start, busy_end) > 10, "results": results, "summary": summary, "py_workers": PY_WORKERS}
    path = os.path.join(RESULTS, f"serving-{STAMP}.json")
    json.dump(doc, open(path, "w"), indent=1)
    print(f"JSON: {path}")
    print(json.dumps({"summary": summary, "json": path}))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        stop_all()
