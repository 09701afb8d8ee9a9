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
    print(f"{'model':<6} {'who (median)':<18} {'train samples/s':>16} {'infer samples/s':>16}")
    for m in models:
        reps = sorted({r.get("rep", 1) for r in runs if r["model"] == m})
        layouts = sorted({r["layout"] for r in runs if r["model"] == m and r["who"] == "pytorch"})
        med = {}
        for layout in layouts:
            res = [r["result"] for r in runs if r["model"] == m and r["who"] == "pytorch" and r["layout"] == layout]
            med[layout] = {k: _median([x.get(k) for x in res]) for k in keys}
            print(f"{m:<6} {'pytorch ' + layout:<18} {_fmt(med[layout][keys[0]]):>16} {_fmt(med[layout][keys[1]]):>16}")
        herds = [r["result"] for r in runs if r["model"] == m and r["who"] == "herd"]
        herd_med = {k: _median([h.get(k) for h in herds]) for k in keys} if herds else None
        if herd_med:
            print(f"{m:<6} {'herd':<18} {_fmt(herd_med[keys[0]]):>16} {_fmt(herd_med[keys[1]]):>16}")
        else:
            print(f"{m:<6} {'herd':<18} {'(not run)':>16} {'(not run)':>16}")
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
        print(f"{m:<6} {'herd / best torch':<18} {span(keys[0]):>16} {span(keys[1]):>16}   (median of {len(reps)} interleaved repeats)")
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=["train", "preprocess", "quality"])
    ap.add_argument("runs")
    ap.add_argument("out")
    ap.add_argument("--meta", nargs="*", default=[])
    a = ap.parse_args()
    runs = [json.loads(line) for line in open(a.runs) if line.strip()]
    meta = dict(kv.split("=", 1) for kv in a.meta)
    body = {"train": train, "preprocess": preprocess, "quality": quality}[a.kind](runs, meta)
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
