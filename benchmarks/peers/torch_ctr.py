#!/usr/bin/env python3
"""PyTorch twins of Herd's CTR models (DLRM and Wide & Deep), FP32 on CPU.

Two modes:
  bench  synthetic batches; training and inference throughput (samples/s).
  train  Criteo Kaggle-format TSV in, test AUC / logloss / accuracy out (the quality twin).

Architectures (match Herd's defaults, which follow facebookresearch/dlrm's Criteo Kaggle config):
  DLRM  bottom MLP 13-512-256-64-16 (ReLU), 26 embedding bags of dim 16, dot interaction
        (strictly-lower-triangle pairwise dots of the 27 vectors, concatenated after the bottom
        output: 16 + 351 = 367), top MLP 367-512-256-1 (ReLU except last), sigmoid + BCE.
  W&D   deep: [26x16 embeddings, 13 dense] -> 1024-512-256-1 (ReLU except last);
        wide: a 1-dim embedding per id, summed, + bias; logit = wide + deep; sigmoid + BCE.
Initialisation as DLRM's reference: Linear W ~ N(0, 2/(in+out)), b ~ N(0, 1/out);
embeddings U(-sqrt(1/N), sqrt(1/N)); wide weights and bias start at 0.

Embedding layouts: --layout per-field (one nn.EmbeddingBag per field) or fused (one table for all
fields, ids shifted by per-field offsets). Embedding gradients are sparse by default
(--emb-grad sparse), the fast path for large tables in PyTorch.

The last stdout line with --json is one JSON object (see README.md).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

NUM_DENSE = 13
NUM_SPARSE = 26


# --------------------------------------------------------------------------------------------
# Model parts


def _mlp(sizes: list[int], last_relu: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        lin = nn.Linear(sizes[i], sizes[i + 1])
        fan_in, fan_out = sizes[i], sizes[i + 1]
        with torch.no_grad():
            lin.weight.normal_(0.0, math.sqrt(2.0 / (fan_in + fan_out)))
            lin.bias.normal_(0.0, math.sqrt(1.0 / fan_out))
        layers.append(lin)
        if i < len(sizes) - 2 or last_relu:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class Embeddings(nn.Module):
    """26 sum-pooled embedding bags with one id per bag; forward(ids [B, F]) -> [B, F, D]."""

    def __init__(self, table_sizes: list[int], dim: int, layout: str, sparse: bool, init: str = "dlrm"):
        super().__init__()
        self.layout, self.dim, self.fields = layout, dim, len(table_sizes)

        def init_(w: torch.Tensor, rows: int) -> None:
            with torch.no_grad():
                if init == "zeros":
                    w.zero_()
                else:
                    bound = math.sqrt(1.0 / rows)
                    w.uniform_(-bound, bound)

        if layout == "per-field":
            self.tables = nn.ModuleList()
            for n in table_sizes:
                t = nn.EmbeddingBag(n, dim, mode="sum", sparse=sparse)
                init_(t.weight, n)
                self.tables.append(t)
        elif layout == "fused":
            total = sum(table_sizes)
            self.table = nn.EmbeddingBag(total, dim, mode="sum", sparse=sparse)
            # Initialise each field's slice with its own table's bound, as the per-field layout.
            start = 0
            for n in table_sizes:
                init_(self.table.weight[start:start + n], n)
                start += n
            offs = np.cumsum([0] + list(table_sizes[:-1]))
            self.register_buffer("offsets", torch.tensor(offs, dtype=torch.int64), persistent=False)
        else:
            raise ValueError(f"unknown layout {layout!r}")

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        b = ids.shape[0]
        if self.layout == "per-field":
            cols = [t(ids[:, f:f + 1]) for f, t in enumerate(self.tables)]
            return torch.stack(cols, dim=1)
        flat = (ids + self.offsets).reshape(-1, 1)  # one bag per (sample, field)
        return self.table(flat).view(b, self.fields, self.dim)

    def pooled_sum(self, ids: torch.Tensor) -> torch.Tensor:
        """Sum over fields (for the wide part, dim 1): [B, F] -> [B, D]."""
        if self.layout == "per-field":
            out = self.tables[0](ids[:, 0:1])
            for f in range(1, self.fields):
                out = out + self.tables[f](ids[:, f:f + 1])
            return out
        return self.table(ids + self.offsets)  # each row is one bag of F ids


class DLRM(nn.Module):
    def __init__(self, table_sizes, dim=16, layout="fused", sparse=True,
                 bottom=(512, 256, 64, 16), top=(512, 256, 1)):
        super().__init__()
        assert bottom[-1] == dim and top[-1] == 1
        self.bottom = _mlp([NUM_DENSE, *bottom], last_relu=True)
        self.emb = Embeddings(table_sizes, dim, layout, sparse)
        n = len(table_sizes) + 1
        li, lj = torch.tril_indices(n, n, offset=-1)
        self.register_buffer("li", li, persistent=False)
        self.register_buffer("lj", lj, persistent=False)
        self.top = _mlp([dim + n * (n - 1) // 2, *top], last_relu=False)

    def forward(self, dense: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        x = self.bottom(dense)  # [B, D]
        t = torch.cat([x.unsqueeze(1), self.emb(ids)], dim=1)  # [B, 27, D]
        z = torch.bmm(t, t.transpose(1, 2))  # [B, 27, 27]
        r = torch.cat([x, z[:, self.li, self.lj]], dim=1)  # [B, 16 + 351]
        return self.top(r).squeeze(1)  # logits [B]

    def param_groups(self):
        return {"dense": list(self.bottom.parameters()) + list(self.top.parameters()),
                "sparse": list(self.emb.parameters()), "wide": []}


class WideAndDeep(nn.Module):
    def __init__(self, table_sizes, dim=16, layout="fused", sparse=True, deep=(1024, 512, 256, 1)):
        super().__init__()
        self.emb = Embeddings(table_sizes, dim, layout, sparse)
        self.deep = _mlp([len(table_sizes) * dim + NUM_DENSE, *deep], last_relu=False)
        self.wide = Embeddings(table_sizes, 1, layout, sparse, init="zeros")
        self.wide_bias = nn.Parameter(torch.zeros(1))

    def forward(self, dense: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        e = self.emb(ids).flatten(1)  # [B, F*D]
        deep = self.deep(torch.cat([e, dense], dim=1)).squeeze(1)
        wide = self.wide.pooled_sum(ids).squeeze(1) + self.wide_bias
        return deep + wide

    def param_groups(self):
        return {"dense": list(self.deep.parameters()), "sparse": list(self.emb.parameters()),
                "wide": list(self.wide.parameters()) + [self.wide_bias]}


def build_model(args, table_sizes):
    sparse = args.emb_grad == "sparse"
    if args.model == "dlrm":
        return DLRM(table_sizes, args.emb_dim, args.layout, sparse)
    return WideAndDeep(table_sizes, args.emb_dim, args.layout, sparse)


def _dense_opt(cls, params, lr, **kw):
    """Prefer the fused CPU implementation when this torch has it."""
    try:
        return cls(params, lr=lr, fused=True, **kw)
    except (RuntimeError, TypeError, ValueError):
        return cls(params, lr=lr, **kw)


def build_optimizers(args, model) -> list[torch.optim.Optimizer]:
    g = model.param_groups()
    sparse = args.emb_grad == "sparse"
    lr = args.lr
    emb_lr = args.emb_lr if args.emb_lr is not None else lr
    opts: list[torch.optim.Optimizer] = []
    if args.optimizer == "sgd":
        opts.append(_dense_opt(torch.optim.SGD, g["dense"], lr))
        opts.append(torch.optim.SGD(g["sparse"], lr=emb_lr))
    elif args.optimizer == "adagrad":
        opts.append(_dense_opt(torch.optim.Adagrad, g["dense"], lr))
        opts.append(torch.optim.Adagrad(g["sparse"], lr=emb_lr))  # handles sparse grads
    elif args.optimizer == "adam":
        opts.append(_dense_opt(torch.optim.Adam, g["dense"], lr))
        opts.append((torch.optim.SparseAdam if sparse else torch.optim.Adam)(g["sparse"], lr=emb_lr))
    else:
        raise ValueError(args.optimizer)
    if g["wide"]:
        opts.append(torch.optim.SGD(g["wide"], lr=args.wide_lr))
    return opts


def default_lr(args) -> None:
    if args.lr is None:
        args.lr = {"sgd": 0.1, "adagrad": 0.01, "adam": 1e-3}[args.optimizer]


# --------------------------------------------------------------------------------------------
# Training primitives


def train_step(model, opts, dense, ids, labels) -> torch.Tensor:
    for o in opts:
        o.zero_grad(set_to_none=True)
    logits = model(dense, ids)
    loss = F.binary_cross_entropy_with_logits(logits, labels)
    loss.backward()
    for o in opts:
        o.step()
    return loss


def infer_step(model, dense, ids) -> torch.Tensor:
    return torch.sigmoid(model(dense, ids))


# --------------------------------------------------------------------------------------------
# bench mode


def run_bench(args) -> dict:
    table_sizes = [args.table_size] * NUM_SPARSE
    model = build_model(args, table_sizes)
    opts = build_optimizers(args, model)
    g = torch.Generator().manual_seed(args.seed)
    b = args.batch_size
    pool = []
    for _ in range(args.pool):
        dense = torch.log1p(torch.rand(b, NUM_DENSE, generator=g) * 100.0)
        ids = torch.randint(0, args.table_size, (b, NUM_SPARSE), generator=g, dtype=torch.int64)
        labels = (torch.rand(b, generator=g) < 0.25).float()
        pool.append((dense, ids, labels))

    def timed(fn, steps):
        per = []
        t0 = time.perf_counter()
        for i in range(steps):
            s = time.perf_counter()
            fn(pool[i % len(pool)])
            per.append(time.perf_counter() - s)
        return time.perf_counter() - t0, per

    model.train()
    train = lambda batch: train_step(model, opts, *batch)
    timed(train, args.warmup)
    t_train, per_train = timed(train, args.steps)

    model.eval()
    with torch.inference_mode():
        infer = lambda batch: infer_step(model, batch[0], batch[1])
        timed(infer, args.warmup)
        t_infer, per_infer = timed(infer, args.steps)

    res = {
        "peer": "pytorch", "torch": torch.__version__, "mode": "bench", "model": args.model,
        "layout": args.layout, "batch_size": b, "threads": torch.get_num_threads(),
        "train_samples_per_s": round(args.steps * b / t_train, 1),
        "infer_samples_per_s": round(args.steps * b / t_infer, 1),
        "train_step_ms_median": round(1e3 * float(np.median(per_train)), 3),
        "infer_step_ms_median": round(1e3 * float(np.median(per_infer)), 3),
        "train_samples_per_s_median": round(b / float(np.median(per_train)), 1),
        "infer_samples_per_s_median": round(b / float(np.median(per_infer)), 1),
        "steps": args.steps, "warmup": args.warmup, "table_size": args.table_size,
        "emb_dim": args.emb_dim, "optimizer": args.optimizer, "lr": args.lr,
        "emb_grad": args.emb_grad, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    print(f"{args.model} layout={args.layout} batch={b} threads={res['threads']} "
          f"optimizer={args.optimizer} emb_grad={args.emb_grad}")
    print(f"  train: {res['train_samples_per_s']:>12,.0f} samples/s  (median step {res['train_step_ms_median']} ms)")
    print(f"  infer: {res['infer_samples_per_s']:>12,.0f} samples/s  (median step {res['infer_step_ms_median']} ms)")
    return res


# --------------------------------------------------------------------------------------------
# train mode: Criteo Kaggle TSV


def load_criteo_tsv(path: str, table_size: int, max_rows: int | None = None):
    """label, I1..I13 (int, may be empty/negative; "260.0" accepted), C1..C26 (8-hex or empty).
    dense = log(max(x, 0) + 1), empty -> 0; sparse = int(hex, 16) % table_size, empty -> 0."""
    import polars as pl

    names = ["label"] + [f"I{i}" for i in range(1, 14)] + [f"C{i}" for i in range(1, 27)]
    schema = {"label": pl.Float64, **{f"I{i}": pl.Float64 for i in range(1, 14)},
              **{f"C{i}": pl.String for i in range(1, 27)}}
    df = pl.read_csv(path, separator="\t", has_header=False, new_columns=names, schema=schema,
                     n_rows=max_rows, quote_char=None)
    dense_cols = [(pl.col(f"I{i}").fill_null(0.0).clip(lower_bound=0.0) + 1.0).log().cast(pl.Float32)
                  for i in range(1, 14)]
    sparse_cols = [(pl.col(f"C{i}").str.to_integer(base=16, strict=False).fill_null(0) % table_size)
                   .cast(pl.Int64) for i in range(1, 27)]
    out = df.select([pl.col("label").fill_null(0.0).cast(pl.Float32), *dense_cols, *sparse_cols])
    arr_label = out.get_column("label").to_numpy()
    arr_dense = out.select(out.columns[1:14]).to_numpy().astype(np.float32, copy=False)
    arr_ids = out.select(out.columns[14:]).to_numpy().astype(np.int64, copy=False)
    return (torch.from_numpy(np.ascontiguousarray(arr_dense)),
            torch.from_numpy(np.ascontiguousarray(arr_ids)),
            torch.from_numpy(np.ascontiguousarray(arr_label)))


def roc_auc(y: np.ndarray, s: np.ndarray) -> float:
    """Exact ROC AUC (Mann-Whitney U with average ranks for ties)."""
    y = np.asarray(y, dtype=np.float64)
    s = np.asarray(s, dtype=np.float64)
    order = np.argsort(s, kind="mergesort")
    s_sorted = s[order]
    starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
    counts = np.diff(np.r_[starts, len(s_sorted)])
    avg_rank = starts + (counts + 1) / 2.0  # 1-based
    ranks = np.repeat(avg_rank, counts)
    y_sorted = y[order]
    n_pos = y_sorted.sum()
    n_neg = len(y_sorted) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return float((ranks[y_sorted == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def evaluate(model, dense, ids, labels, batch_size) -> dict:
    model.eval()
    logits = []
    with torch.inference_mode():
        for i in range(0, len(labels), batch_size):
            logits.append(model(dense[i:i + batch_size], ids[i:i + batch_size]))
    z = torch.cat(logits).double().numpy() if logits else np.zeros(0)
    y = labels.double().numpy()
    logloss = float(np.mean(np.logaddexp(0.0, z) - y * z)) if len(y) else float("nan")
    acc = float(np.mean((z > 0) == (y > 0.5))) if len(y) else float("nan")
    return {"auc": roc_auc(y, z), "logloss": logloss, "accuracy": acc}


def run_train(args) -> dict:
    t0 = time.perf_counter()
    tr_dense, tr_ids, tr_y = load_criteo_tsv(args.train, args.table_size, args.max_rows)
    te_dense, te_ids, te_y = load_criteo_tsv(args.test, args.table_size, args.max_rows)
    load_s = time.perf_counter() - t0
    print(f"loaded {len(tr_y):,} train / {len(te_y):,} test rows in {load_s:.1f} s "
          f"(train CTR {tr_y.mean().item():.4f})")

    table_sizes = [args.table_size] * NUM_SPARSE
    model = build_model(args, table_sizes)
    opts = build_optimizers(args, model)
    gen = torch.Generator().manual_seed(args.seed)
    n, b = len(tr_y), args.batch_size
    train_s = 0.0
    seen = 0
    history = []
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(n, generator=gen) if args.shuffle else torch.arange(n)
        t_ep = time.perf_counter()
        loss_sum, loss_n = 0.0, 0
        for i in range(0, n, b):
            idx = perm[i:i + b]
            loss = train_step(model, opts, tr_dense[idx], tr_ids[idx], tr_y[idx])
            loss_sum += loss.item() * len(idx)
            loss_n += len(idx)
        ep_s = time.perf_counter() - t_ep
        train_s += ep_s
        seen += n
        m = evaluate(model, te_dense, te_ids, te_y, max(b, 8192))
        history.append({"epoch": epoch + 1, "train_loss": loss_sum / max(loss_n, 1), **m})
        print(f"epoch {epoch + 1}/{args.epochs}: train loss {loss_sum / max(loss_n, 1):.5f}, "
              f"test auc {m['auc']:.5f} logloss {m['logloss']:.5f} acc {m['accuracy']:.4f} "
              f"({n / ep_s:,.0f} samples/s)")
    final = history[-1] if history else evaluate(model, te_dense, te_ids, te_y, max(b, 8192))
    return {
        "peer": "pytorch", "torch": torch.__version__, "mode": "train", "model": args.model,
        "layout": args.layout, "batch_size": b, "threads": torch.get_num_threads(),
        "epochs": args.epochs, "optimizer": args.optimizer, "lr": args.lr,
        "emb_lr": args.emb_lr if args.emb_lr is not None else args.lr,
        "wide_lr": args.wide_lr if args.model == "wnd" else None, "seed": args.seed,
        "table_size": args.table_size, "emb_grad": args.emb_grad,
        "train_rows": n, "test_rows": len(te_y),
        "auc": final["auc"], "logloss": final["logloss"], "accuracy": final["accuracy"],
        "train_samples_per_s": round(seen / train_s, 1) if train_s > 0 else None,
        "train_seconds": round(train_s, 3), "load_seconds": round(load_s, 3),
        "history": history,
    }


# --------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["bench", "train"])
    p.add_argument("--model", choices=["dlrm", "wnd"], default="dlrm")
    p.add_argument("--layout", choices=["per-field", "fused"], default="fused")
    p.add_argument("--batch-size", type=int, default=2048)
    p.add_argument("--table-size", type=int, default=100_000, help="rows per field's table")
    p.add_argument("--emb-dim", type=int, default=16)
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--optimizer", choices=["sgd", "adagrad", "adam"], default=None,
                   help="dense (and embedding) optimizer; default sgd for dlrm, adam for wnd")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default: sgd 0.1, adagrad 0.01, adam 0.001)")
    p.add_argument("--emb-lr", type=float, default=None, help="embedding learning rate (default: --lr)")
    p.add_argument("--wide-lr", type=float, default=0.1, help="W&D wide part SGD learning rate")
    p.add_argument("--emb-grad", choices=["sparse", "dense"], default="sparse",
                   help="embedding gradients: sparse (default, torch's fast path) or dense")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true", help="print one JSON line last")
    g = p.add_argument_group("bench")
    g.add_argument("--steps", type=int, default=30, help="timed steps (each for train and infer)")
    g.add_argument("--warmup", type=int, default=5)
    g.add_argument("--pool", type=int, default=8, help="distinct synthetic batches cycled through")
    g = p.add_argument_group("train")
    g.add_argument("--train", help="Criteo Kaggle-format TSV (label, I1-I13, C1-C26)")
    g.add_argument("--test", help="Criteo Kaggle-format TSV for evaluation")
    g.add_argument("--epochs", type=int, default=1)
    g.add_argument("--max-rows", type=int, default=None, help="read at most this many rows per file")
    g.add_argument("--no-shuffle", dest="shuffle", action="store_false")
    args = p.parse_args(argv)

    if args.optimizer is None:
        args.optimizer = "sgd" if args.model == "dlrm" else "adam"
    default_lr(args)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)

    if args.mode == "bench":
        res = run_bench(args)
    else:
        if not args.train or not args.test:
            p.error("train mode needs --train FILE and --test FILE")
        res = run_train(args)
    res["host"] = {"python": platform.python_version(), "cpus": os.cpu_count(),
                   "machine": platform.machine()}
    if args.json:
        print(json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
