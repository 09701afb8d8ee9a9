"""Tables and JSON summaries for benchmarks/compare-*.sh. Not meant to be run by hand."""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys


def _num(x):
    return x if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def _fmt(x, spec=",.0f"):
    return format(x, spec) if _num(x) is not None else "-"


def _ratio(a, b):
    return round(a / b, 3) if _num(a) is not None and _num(b) not in (None, 0) else None


def _git_rev(root="."):
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except Exception:
        return None


def _median(xs):
    xs = sorted(x for x in xs if _num(x) is not None)
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def train(runs, meta):
    """Medians over repeats; ratios are computed within each repeat (Herd against the best PyTorch
    layout of the same repeat) and their median is reported with the range."""
    summary = {}
    models = sorted({r["model"] for r in runs}, key=lambda m: ["dlrm", "wnd"].index(m) if m in ("dlrm", "wnd") else 9)
    keys = ("train_samples_per_s", "infer_samples_per_s")
    print()
    print(f"{'model':<9} {'who (median)':<18} {'train samples/s':>16} {'infer samples/s':>16}")
    for m in models:
        reps = sorted({r.get("rep", 1) for r in runs if r["model"] == m})
        layouts = sorted({r["layout"] for r in runs if r["model"] == m and r["who"] == "pytorch"})
        med = {}
        for layout in layouts:
            res = [r["result"] for r in runs if r["model"] == m and r["who"] == "pytorch" and r["layout"] == layout]
            med[layout] = {k: _median([x.get(k) for x in res]) for k in keys}
            print(f"{m:<9} {'pytorch ' + layout:<18} {_fmt(med[layout][keys[0]]):>16} {_fmt(med[layout][keys[1]]):>16}")
        herds = [r["result"] for r in runs if r["model"] == m and r["who"] == "herd"]
        herd_med = {k: _median([h.get(k) for h in herds]) for k in keys} if herds else None
        if herd_med:
            print(f"{m:<9} {'herd':<18} {_fmt(herd_med[keys[0]]):>16} {_fmt(herd_med[keys[1]]):>16}")
        else:
            print(f"{m:<9} {'herd':<18} {'(not run)':>16} {'(not run)':>16}")
        ratios = {k: [] for k in keys}
        for rep in reps:
            peers = [r for r in runs if r["model"] == m and r["who"] == "pytorch" and r.get("rep", 1) == rep]
            herd = next((r["result"] for r in runs if r["model"] == m and r["who"] == "herd" and r.get("rep", 1) == rep), None)
            for k in keys:
                best = max((p["result"].get(k) for p in peers if _num(p["result"].get(k)) is not None), default=None)
                ratio = _ratio(herd and herd.get(k), best)
                if ratio is not None:
                    ratios[k].append(ratio)
        def span(k):
            r = ratios[k]
            return f"{_fmt(_median(r), '.2f')}x" + (f" ({min(r):.2f}-{max(r):.2f})" if len(r) > 1 else "")
        print(f"{m:<9} {'herd / best torch':<18} {span(keys[0]):>16} {span(keys[1]):>16}   (median of {len(reps)} interleaved repeats)")
        summary[m] = {
            "pytorch_median": med, "herd_median": herd_med, "repeats": len(reps),
            "ratio_train_herd_over_best_pytorch": _median(ratios[keys[0]]),
            "ratio_infer_herd_over_best_pytorch": _median(ratios[keys[1]]),
            "ratios_per_repeat": ratios,
            "runs": [r for r in runs if r["model"] == m],
        }
    return summary


def preprocess(runs, meta):
    polars = next((r["result"] for r in runs if r["who"] == "polars"), {}) or {}
    herd = next((r["result"] for r in runs if r["who"] == "herd"), None)
    print()
    print(f"{'who':<20} {'rows/s':>14} {'wall s':>9} {'peak RSS MiB':>13}")
    for name, r in (("polars " + str(polars.get("variant", "")), polars), ("herd", herd)):
        if r is None:
            print(f"{name:<20} {'(not run)':>14}")
            continue
        rss = r.get("peak_rss_bytes")
        print(f"{name:<20} {_fmt(r.get('rows_per_s')):>14} {_fmt(r.get('wall_s'), '.2f'):>9} "
              f"{_fmt(rss / 2**20 if _num(rss) else None):>13}")
    speed = _ratio(herd and herd.get("rows_per_s"), polars.get("rows_per_s"))
    mem = _ratio(herd and herd.get("peak_rss_bytes"), polars.get("peak_rss_bytes"))
    print(f"{'herd / polars':<20} {_fmt(speed, '.2f') + 'x':>14} {'':>9} {_fmt(mem, '.2f') + 'x':>13}")
    return {"polars": polars, "herd": herd, "ratio_rows_per_s_herd_over_polars": speed,
            "ratio_peak_rss_herd_over_polars": mem}


def _recsys_preprocess_repeat(runs):
    """One repeat: Herd's two processes summed (peak RSS: the larger), the polars run."""
    polars = next((r["result"] for r in runs if r["who"] == "polars"), {}) or {}
    herds = {r["split"]: r["result"] for r in runs if r["who"] == "herd"}
    herd = None

    def cpu(tv):
        return tv["user_s"] + tv["sys_s"] if _num(tv.get("user_s")) is not None and _num(tv.get("sys_s")) is not None else None

    if herds and all("error" not in h for h in herds.values()):
        rows = sum(h.get("rows", 0) for h in herds.values())
        work = sum(h.get("read_s", 0) + h.get("transform_s", 0) + h.get("write_s", 0) for h in herds.values())
        walls = [h.get("time_v", {}).get("wall_s") for h in herds.values()]
        rsss = [h.get("time_v", {}).get("peak_rss_bytes") for h in herds.values()]
        cpus = [cpu(h.get("time_v", {})) for h in herds.values()]
        herd = {"rows": rows, "work_s": work, "rows_per_s": rows / work if work > 0 else None,
                "read_s": sum(h.get("read_s", 0) for h in herds.values()),
                "transform_s": sum(h.get("transform_s", 0) for h in herds.values()),
                "write_s": sum(h.get("write_s", 0) for h in herds.values()),
                "wall_s": sum(w for w in walls if _num(w) is not None) if all(_num(w) is not None for w in walls) else None,
                "cpu_s": sum(cpus) if all(c is not None for c in cpus) else None,
                "peak_rss_bytes": max(rsss) if all(_num(x) is not None for x in rsss) else None}
        herd["wall_rows_per_s"] = rows / herd["wall_s"] if _num(herd["wall_s"]) else None
    pol = None
    if polars and "error" not in polars:
        tv = polars.get("time_v", {})
        pol = {"rows": polars.get("rows"), "work_s": polars.get("wall_s"), "rows_per_s": polars.get("rows_per_s"),
               "read_s": polars.get("read_s"), "transform_s": polars.get("transform_s"), "write_s": polars.get("write_s"),
               "wall_s": tv.get("wall_s"), "cpu_s": cpu(tv), "peak_rss_bytes": tv.get("peak_rss_bytes")}
        pol["wall_rows_per_s"] = pol["rows"] / pol["wall_s"] if _num(pol["wall_s"]) and _num(pol["rows"]) else None
    return pol, herd, herds, polars


def recsys_preprocess(runs, meta):
    """Herd (fit on train + apply to test, two processes) against the polars twin (one process),
    interleaved REPEATS times: rows/s over the tools' own read + transform + write seconds,
    end-to-end wall, CPU seconds and peak RSS from /usr/bin/time -v, per repeat; the ratios'
    medians (range); and the output check."""
    checks = {r["split"]: r["result"] for r in runs if r["who"] == "check"}
    reps = sorted({r.get("repeat", 1) for r in runs if r["who"] in ("herd", "polars")})
    per = [_recsys_preprocess_repeat([r for r in runs if r.get("repeat", 1) == k and r["who"] in ("herd", "polars")])
           for k in reps]
    print()
    print(f"{'who':<14} {'rows':>9} {'read s':>7} {'transf s':>8} {'write s':>7} {'rows/s':>11} {'wall s':>7} "
          f"{'rows/s wall':>11} {'CPU s':>6} {'peak RSS MiB':>12}")
    ratios = {"speed": [], "wall": [], "cpu": [], "mem": []}
    for k, (pol, herd, _, _) in zip(reps, per):
        for name, r in (("polars", pol), ("herd", herd)):
            label = f"{name} #{k}" if len(reps) > 1 else name
            if r is None:
                print(f"{label:<14} {'(not run / failed)':>20}")
                continue
            rss = r.get("peak_rss_bytes")
            print(f"{label:<14} {_fmt(r.get('rows')):>9} {_fmt(r.get('read_s'), '.2f'):>7} {_fmt(r.get('transform_s'), '.2f'):>8} "
                  f"{_fmt(r.get('write_s'), '.2f'):>7} {_fmt(r.get('rows_per_s')):>11} {_fmt(r.get('wall_s'), '.2f'):>7} "
                  f"{_fmt(r.get('wall_rows_per_s')):>11} {_fmt(r.get('cpu_s'), '.2f'):>6} {_fmt(rss / 2**20 if _num(rss) else None):>12}")
        ratios["speed"].append(_ratio(herd and herd.get("rows_per_s"), pol and pol.get("rows_per_s")))
        ratios["wall"].append(_ratio(herd and herd.get("wall_rows_per_s"), pol and pol.get("wall_rows_per_s")))
        ratios["cpu"].append(_ratio(pol and pol.get("cpu_s"), herd and herd.get("cpu_s")))  # polars CPU / Herd CPU
        ratios["mem"].append(_ratio(herd and herd.get("peak_rss_bytes"), pol and pol.get("peak_rss_bytes")))

    def summary(xs):
        xs = [x for x in xs if _num(x) is not None]
        return (_median(xs), min(xs), max(xs)) if xs else (None, None, None)

    stats = {k: summary(v) for k, v in ratios.items()}

    def show(k):
        m, lo, hi = stats[k]
        return f"{_fmt(m, '.2f')}x" + (f" ({lo:.2f}-{hi:.2f})" if len(reps) > 1 and m is not None else "")

    print(f"herd / polars (median{' of ' + str(len(reps)) if len(reps) > 1 else ''}): rows/s {show('speed')}, "
          f"rows/s wall {show('wall')}, CPU polars/herd {show('cpu')}, peak RSS {show('mem')}")
    equal = bool(checks) and all(c.get("equal") is True for c in checks.values())
    for split, c in sorted(checks.items()):
        print(f"output check {split}: {'EQUAL' if c.get('equal') else 'DIFFERENT'}"
              + ("" if c.get("equal") else f"  {c.get('differences') or c.get('error')}"))
    if not checks:
        print("output check: not run")
    # The repeat whose rows/s ratio is the median stands for the run in "polars"/"herd".
    mid = 0
    if [x for x in ratios["speed"] if _num(x) is not None]:
        mid = min(range(len(per)), key=lambda i: abs((ratios["speed"][i] or 0) - (stats["speed"][0] or 0)))
    pol, herd, herds, polars = per[mid] if per else (None, None, {}, {})
    return {"polars": pol, "herd": herd, "herd_runs": herds, "polars_run": polars, "checks": checks,
            "outputs_equal": equal, "repeats": [{"polars": p, "herd": h} for p, h, _, _ in per],
            "ratio_rows_per_s_herd_over_polars": stats["speed"][0],
            "ratio_rows_per_s_range": [stats["speed"][1], stats["speed"][2]],
            "ratio_wall_rows_per_s_herd_over_polars": stats["wall"][0],
            "ratio_cpu_s_polars_over_herd": stats["cpu"][0],
            "ratio_peak_rss_herd_over_polars": stats["mem"][0]}


def quality(runs, meta):
    twin = next((r["result"] for r in runs if r["who"] == "pytorch"), {}) or {}
    herd = next((r["result"] for r in runs if r["who"] == "herd"), None)
    oracle = next((r["result"] for r in runs if r["who"] == "oracle"), None) or {}
    tol = float(meta.get("tolerance", 0.002))
    print()
    print(f"{'who':<16} {'test AUC':>9} {'logloss':>9}")
    print(f"{'pytorch twin':<16} {_fmt(twin.get('auc'), '.5f'):>9} {_fmt(twin.get('logloss'), '.5f'):>9}")
    if herd is not None:
        print(f"{'herd':<16} {_fmt(herd.get('auc'), '.5f'):>9} {_fmt(herd.get('logloss'), '.5f'):>9}")
    else:
        print(f"{'herd':<16} {'(not run)':>9}")
    print(f"{'oracle':<16} {_fmt(oracle.get('test_auc'), '.5f'):>9}")
    gap = None
    verdict = "n/a"
    if herd is not None and _num(herd.get("auc")) is not None and _num(twin.get("auc")) is not None:
        gap = round(herd["auc"] - twin["auc"], 5)
        verdict = "PASS" if gap >= -tol else "FAIL"
        print(f"gap herd - twin: {gap:+.5f}  (rule: >= -{tol})  {verdict}")
    return {"pytorch": twin, "herd": herd, "oracle": oracle, "auc_gap_herd_minus_twin": gap,
            "tolerance": tol, "verdict": verdict}


def bf16(runs, meta):
    """`--precision bf16` against PyTorch FP32 (best layout, same repeat) and Herd FP32, and the
    AUC of Herd BF16 against Herd FP32 trained on the same data."""
    goal = float(meta.get("goal", 2.5))
    tol = float(meta.get("tolerance", 0.001))
    # NOTE: PyTorch's OpenMP threads collapse (2-50x) when another process holds a core, so a
    # throughput ratio from a busy machine is not judged at all.
    qmax = float(meta.get("quiet_max", 10))
    noisy = any(float(meta.get(k, 0) or 0) > qmax for k in ("busy_pct_before", "busy_pct_after"))
    speed = [r for r in runs if r.get("phase") == "speed"]
    summary = {"throughput": {}, "quality": {}}
    keys = ("train_samples_per_s", "infer_samples_per_s")
    models = sorted({r["model"] for r in speed}, key=lambda m: ["dlrm", "wnd"].index(m) if m in ("dlrm", "wnd") else 9)
    if speed:
        print()
        print(f"{'model':<6} {'who (median)':<20} {'train samples/s':>16} {'infer samples/s':>16}")
    for m in models:
        rows = [r for r in speed if r["model"] == m]
        whos = sorted({(r["who"], r.get("layout")) for r in rows}, key=lambda w: (w[0] != "pytorch", str(w)))
        med = {}
        for who, layout in whos:
            name = who + (" " + layout if layout else "")
            res = [r["result"] for r in rows if r["who"] == who and r.get("layout") == layout]
            med[name] = {k: _median([x.get(k) for x in res]) for k in keys}
            print(f"{m:<6} {name:<20} {_fmt(med[name][keys[0]]):>16} {_fmt(med[name][keys[1]]):>16}")
        ratios = {"bf16_over_best_pytorch_fp32": [], "fp32_over_best_pytorch_fp32": [], "bf16_over_herd_fp32": []}
        for rep in sorted({r.get("rep", 1) for r in rows}):
            rr = [r for r in rows if r.get("rep", 1) == rep]
            best = max((r["result"].get(keys[0]) for r in rr if r["who"] == "pytorch" and _num(r["result"].get(keys[0]))), default=None)
            h16 = next((r["result"].get(keys[0]) for r in rr if r["who"] == "herd-bf16"), None)
            h32 = next((r["result"].get(keys[0]) for r in rr if r["who"] == "herd-fp32"), None)
            for k, (a, b) in {"bf16_over_best_pytorch_fp32": (h16, best), "fp32_over_best_pytorch_fp32": (h32, best),
                              "bf16_over_herd_fp32": (h16, h32)}.items():
                x = _ratio(a, b)
                if x is not None:
                    ratios[k].append(x)
        for k, r in ratios.items():
            if r:
                print(f"{m:<6} {k.replace('_', ' '):<32} train {_median(r):.2f}x" + (f" ({min(r):.2f}-{max(r):.2f})" if len(r) > 1 else ""))
        b = _median(ratios["bf16_over_best_pytorch_fp32"])
        verdict = "n/a" if b is None else ("NOISY, not judged" if noisy else ("PASS" if b >= goal else "FAIL"))
        print(f"{m:<6} bf16 training >= {goal}x PyTorch FP32: {verdict}")
        summary["throughput"][m] = {"median": med, "ratios_per_repeat": ratios,
                                    "ratios_median": {k: _median(v) for k, v in ratios.items()}, "verdict": verdict,
                                    "runs": rows}
    quality_runs = [r for r in runs if r.get("phase") == "quality"]
    for m in sorted({r["model"] for r in quality_runs}):
        q32 = next((r["result"] for r in quality_runs if r["model"] == m and r["who"] == "herd-fp32"), {}) or {}
        q16 = next((r["result"] for r in quality_runs if r["model"] == m and r["who"] == "herd-bf16"), {}) or {}
        print()
        print(f"{'model':<6} {'precision':<10} {'test AUC':>9} {'logloss':>9}")
        for name, q in (("fp32", q32), ("bf16", q16)):
            print(f"{m:<6} {name:<10} {_fmt(q.get('auc'), '.5f'):>9} {_fmt(q.get('logloss'), '.5f'):>9}")
        diff = None
        verdict = "n/a"
        if _num(q32.get("auc")) is not None and _num(q16.get("auc")) is not None:
            diff = round(q16["auc"] - q32["auc"], 5)
            verdict = "PASS" if abs(diff) <= tol else "FAIL"
            print(f"{m:<6} AUC bf16 - fp32: {diff:+.5f}  (rule: |diff| <= {tol})  {verdict}")
        qs = next((r["result"] for r in quality_runs if r["model"] == m and r["who"] == "herd-fp32-other-seed"), None)
        noise = None
        if qs and _num(qs.get("auc")) is not None and _num(q32.get("auc")) is not None:
            noise = round(qs["auc"] - q32["auc"], 5)
            print(f"{m:<6} AUC fp32 (seed+1) - fp32: {noise:+.5f}  (seed-to-seed noise of this setting)")
        summary["quality"][m] = {"fp32": q32, "bf16": q16, "fp32_other_seed": qs, "auc_diff_bf16_minus_fp32": diff,
                                 "auc_diff_fp32_seed_noise": noise, "tolerance": tol, "verdict": verdict}
    return summary


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=["train", "preprocess", "quality", "recsys-preprocess", "recsys-train", "bf16"])
    ap.add_argument("runs")
    ap.add_argument("out")
    ap.add_argument("--meta", nargs="*", default=[])
    a = ap.parse_args()
    runs = [json.loads(line) for line in open(a.runs) if line.strip()]
    meta = dict(kv.split("=", 1) for kv in a.meta)
    body = {"train": train, "preprocess": preprocess, "quality": quality, "recsys-preprocess": recsys_preprocess,
            "recsys-train": train, "bf16": bf16}[a.kind](runs, meta)
    doc = {"kind": a.kind, "meta": meta, "git": _git_rev(),
           "host": {"python": platform.python_version(), "machine": platform.machine()},
           "noisy": float(meta.get("busy_pct_before", 0) or 0) > float(meta.get("quiet_max", 10))
                    or float(meta.get("busy_pct_after", 0) or 0) > float(meta.get("quiet_max", 10)),
           "results": body}
    with open(a.out, "w") as f:
        json.dump(doc, f, indent=2)
    if doc["noisy"]:
        print("\n!! NOISY run: the machine was busy (see meta.busy_pct_*); not a final figure.")
    print(f"\nsummary: {a.out}")


if __name__ == "__main__":
    sys.exit(main())
