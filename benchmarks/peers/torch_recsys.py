#!/usr/bin/env python3
"""PyTorch twins of Herd's RecSys 2021 models, trained on the table `herd preprocess` writes with
examples/recsys2021/pipeline.json (`table.herdtable`, read with numpy). FP32 on CPU.

Same specs as `herd bench recsys` (Sources/HerdCLI/BenchRecSys.swift) and the library test
Tests/HerdTrainingTests/RecSysWorkflowTrainingTests.swift, at the issue's full sizes:

  wnd       Friesian's RecSys W&D (examples/recsys2021/wnd.json's columns). The two user ids,
            hashtags and present_domains embedded (dim --emb-dim, mean-pooled bags); present_media,
            tweet_type, language, engagee_follows_engager and the four follower/following bins as
            one-hot indicators; 3 dense columns (len_hashtags/domains/links).
            Deep: [embeddings, indicators, dense] -> 1024-512-256 (Linear -> BatchNorm -> ReLU ->
            Dropout 0.1) -> 1. Wide: 1-dim weights of the two is_verified columns and the hashed
            present_media x language cross, summed, + bias. logit = deep + wide.
            Adam (deep), SparseAdam = lazy Adam (embeddings), FTRL-Proximal (wide; l1 = l2 = 0,
            beta = 1, alpha = --lr) as Herd's `ftrl`.
  twotower  examples/recsys2021/two_tower.json's columns. User tower: enaging_user_id embedded
            (dim --emb-dim, mean-pooled), its is_verified and follower/following bins one-hot;
            item tower: engaged_with_user_id, hashtags, present_links, present_domains embedded,
            is_verified, present_media, tweet_type, language and the author's bins one-hot, the
            three lengths dense; each tower an MLP 1024-512-128 (ReLU between) then
            L2-normalised; logit = <u, v> / 0.2; BCE. Adam (towers), SparseAdam (embeddings).

Label: any engagement (reply, retweet, retweet_with_comment or like). Table sizes: largest id + 1
per column (Herd's BatchSpec.infer). Batches: consecutive rows of the table, cycling; slicing is
inside the timed step, as in Herd. `bench` times --steps training steps (zero_grad, slice,
forward, BCE, backward, optimizer steps) after --warmup steps, then inference steps (forward +
sigmoid, eval mode). Last stdout line with --json: train_samples_per_s, infer_samples_per_s,
final_loss (mean of the last 10 training steps) and settings.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from herdtable import read_herdtable  # noqa: E402

LABELS = ["reply", "retweet", "retweet_with_comment", "like"]
WND_EMBEDDED = ["engaged_with_user_id", "enaging_user_id", "hashtags", "present_domains"]
WND_INDICATORS = ["present_media", "tweet_type", "language", "engagee_follows_engager",
                  "engaged_with_user_follower_count", "engaged_with_user_following_count",
                  "enaging_user_follower_count", "enaging_user_following_count"]
WND_WIDE = ["engaged_with_user_is_verified", "enaging_user_is_verified", "present_media_language"]
WND_DENSE = ["len_hashtags", "len_domains", "len_links"]
TT_USER = ["enaging_user_id"]
TT_USER_IND = ["enaging_user_is_verified", "enaging_user_follower_count", "enaging_user_following_count"]
TT_ITEM = ["engaged_with_user_id", "hashtags", "present_links", "present_domains"]
TT_ITEM_IND = ["engaged_with_user_is_verified", "present_media", "tweet_type", "language",
               "engaged_with_user_follower_count", "engaged_with_user_following_count"]
TT_DENSE = ["len_hashtags", "len_domains", "len_links"]


class Table:
    """The table's columns as torch tensors: scalar ids [N], lists (offsets [N+1], values),
    dense [N, k] float32, labels [N] float32."""

    def __init__(self, path: str, sparse: list[str], dense: list[str]):
        rows, cols = read_herdtable(path)
        self.rows = rows
        self.ids, self.lists, self.card = {}, {}, {}
        for name in sparse:
            t, validity, data = cols[name]
            if t == "int64":
                v = np.where(validity, data, 0) if validity is not None else data
                self.ids[name] = torch.from_numpy(np.ascontiguousarray(v, dtype=np.int64))
                self.card[name] = int(v.max(initial=0)) + 1
            elif t == "int64_list":
                o, vals = data
                self.lists[name] = (torch.from_numpy(np.ascontiguousarray(o, dtype=np.int64)),
                                    torch.from_numpy(np.ascontiguousarray(vals, dtype=np.int64)))
                self.card[name] = int(vals.max(initial=0)) + 1
            else:
                raise SystemExit(f"{path}: column {name} is {t}, expected int64 ids or an int64 list")
        self.dense = torch.from_numpy(np.stack([np.asarray(cols[n][2], dtype=np.float32) for n in dense], axis=1)) \
            if dense else torch.zeros(rows, 0)
        y = np.zeros(rows, dtype=bool)
        for n in LABELS:
            y |= np.asarray(cols[n][2]) > 0
        self.labels = torch.from_numpy(y.astype(np.float32))

    def batch(self, lo: int, hi: int) -> dict:
        """Rows lo..<hi: {"ids": {name: [B]}, "bags": {name: (values, offsets [B+1])}, dense, labels}."""
        bags = {}
        for name, (o, v) in self.lists.items():
            off = o[lo:hi + 1]
            bags[name] = (v[off[0]:off[-1]], off - off[0])
        return {"ids": {n: t[lo:hi] for n, t in self.ids.items()}, "bags": bags,
                "dense": self.dense[lo:hi], "labels": self.labels[lo:hi]}


def _linear(i: int, o: int) -> nn.Linear:
    lin = nn.Linear(i, o)
    with torch.no_grad():
        lin.weight.normal_(0.0, math.sqrt(2.0 / (i + o)))
        lin.bias.normal_(0.0, math.sqrt(1.0 / o))
    return lin


def _bag(rows: int, dim: int) -> nn.EmbeddingBag:
    e = nn.EmbeddingBag(rows, dim, mode="mean", sparse=True, include_last_offset=True)
    with torch.no_grad():
        bound = math.sqrt(1.0 / rows)
        e.weight.uniform_(-bound, bound)
    return e


def indicators(batch: dict, names: list[str], base: list[int]) -> torch.Tensor:
    """One-hot (counts for bags) of the columns `names`, side by side: [B, base[-1]]."""
    b = batch["labels"].shape[0]
    rows, cols = [], []
    ar = torch.arange(b)
    for k, name in enumerate(names):
        if name in batch["bags"]:
            values, offsets = batch["bags"][name]
            rows.append(torch.repeat_interleave(ar, offsets[1:] - offsets[:-1]))
            cols.append(values + base[k])
        else:
            rows.append(ar)
            cols.append(batch["ids"][name] + base[k])
    out = torch.zeros(b, base[-1])
    r, c = torch.cat(rows), torch.cat(cols)
    out.index_put_((r, c), torch.ones(r.shape[0]), accumulate=True)
    return out


def _embed(bag: nn.EmbeddingBag, name: str, batch: dict) -> torch.Tensor:
    """Mean-pooled embedding of one column: a one-id bag per row for scalars."""
    if name in batch["bags"]:
        values, offsets = batch["bags"][name]
        return bag(values, offsets)
    ids = batch["ids"][name]
    return bag(ids, torch.arange(ids.shape[0] + 1))


class WideAndDeep(nn.Module):
    def __init__(self, table: Table, dim: int, deep=(1024, 512, 256), dropout=0.1):
        super().__init__()
        self.emb = nn.ModuleList([_bag(table.card[n], dim) for n in WND_EMBEDDED])
        self.ind_base = np.cumsum([0] + [table.card[n] for n in WND_INDICATORS]).tolist()
        width = dim * len(WND_EMBEDDED) + self.ind_base[-1] + len(WND_DENSE)
        layers: list[nn.Module] = []
        for w in deep:
            layers += [_linear(width, w), nn.BatchNorm1d(w), nn.ReLU(), nn.Dropout(dropout)]
            width = w
        layers.append(_linear(width, 1))
        self.deep = nn.Sequential(*layers)
        self.wide = nn.ModuleList([nn.Embedding(table.card[n], 1) for n in WND_WIDE])
        for w in self.wide:
            nn.init.zeros_(w.weight)
        self.wide_bias = nn.Parameter(torch.zeros(1))

    def forward(self, batch: dict) -> torch.Tensor:
        e = [_embed(bag, n, batch) for bag, n in zip(self.emb, WND_EMBEDDED)]
        x = torch.cat(e + [indicators(batch, WND_INDICATORS, self.ind_base), batch["dense"]], dim=1)
        deep = self.deep(x).squeeze(1)
        wide = sum(w(batch["ids"][n]).squeeze(1) for w, n in zip(self.wide, WND_WIDE)) + self.wide_bias
        return deep + wide

    def groups(self):
        return {"dense": list(self.deep.parameters()), "sparse": list(self.emb.parameters()),
                "wide": list(self.wide.parameters()) + [self.wide_bias]}


class Tower(nn.Module):
    def __init__(self, table: Table, names: list[str], ind: list[str], dense: int, dim: int, mlp=(1024, 512, 128)):
        super().__init__()
        self.names, self.ind = names, ind
        self.emb = nn.ModuleList([_bag(table.card[n], dim) for n in names])
        self.ind_base = np.cumsum([0] + [table.card[n] for n in ind]).tolist()
        sizes = [dim * len(names) + self.ind_base[-1] + dense, *mlp]
        layers: list[nn.Module] = []
        for i in range(len(sizes) - 1):
            layers.append(_linear(sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
        self.mlp = nn.Sequential(*layers)

    def forward(self, batch: dict, dense: torch.Tensor | None) -> torch.Tensor:
        x = [_embed(bag, n, batch) for bag, n in zip(self.emb, self.names)]
        if self.ind:
            x.append(indicators(batch, self.ind, self.ind_base))
        if dense is not None:
            x.append(dense)
        return F.normalize(self.mlp(torch.cat(x, dim=1)), dim=1)


class TwoTower(nn.Module):
    def __init__(self, table: Table, dim: int, temperature: float = 0.2):
        super().__init__()
        self.user = Tower(table, TT_USER, TT_USER_IND, 0, dim)
        self.item = Tower(table, TT_ITEM, TT_ITEM_IND, len(TT_DENSE), dim)
        self.temperature = temperature

    def forward(self, batch: dict) -> torch.Tensor:
        u = self.user(batch, None)
        v = self.item(batch, batch["dense"])
        return (u * v).sum(dim=1) / self.temperature

    def groups(self):
        return {"dense": list(self.user.mlp.parameters()) + list(self.item.mlp.parameters()),
                "sparse": list(self.user.emb.parameters()) + list(self.item.emb.parameters()), "wide": []}


class FTRL(torch.optim.Optimizer):
    """FTRL-Proximal per coordinate (McMahan et al. 2013), dense gradients, as Herd's `ftrl`:
    sigma = (sqrt(n + g^2) - sqrt(n)) / alpha; z += g - sigma w; n += g^2;
    w = |z| <= l1 ? 0 : -(z - sign(z) l1) / ((beta + sqrt(n)) / alpha + l2)."""

    def __init__(self, params, lr: float, l1: float = 0.0, l2: float = 0.0, beta: float = 1.0):
        super().__init__(params, dict(lr=lr, l1=l1, l2=l2, beta=beta))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            alpha, l1, l2, beta = group["lr"], group["l1"], group["l2"], group["beta"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if not st:
                    st["z"], st["n"] = torch.zeros_like(p), torch.zeros_like(p)
                g, z, n = p.grad, st["z"], st["n"]
                n2 = n + g * g
                z.add_(g - (n2.sqrt() - n.sqrt()) / alpha * p)
                n.copy_(n2)
                w = -(z - torch.sign(z) * l1) / ((beta + n2.sqrt()) / alpha + l2)
                p.copy_(torch.where(z.abs() <= l1, torch.zeros_like(w), w))


def optimizers(model, lr: float) -> list[torch.optim.Optimizer]:
    g = model.groups()
    try:
        dense = torch.optim.Adam(g["dense"], lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        dense = torch.optim.Adam(g["dense"], lr=lr)
    opts = [dense, torch.optim.SparseAdam(g["sparse"], lr=lr)]
    if g["wide"]:
        opts.append(FTRL(g["wide"], lr=lr))
    return opts


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--table", required=True, help="table.herdtable from herd preprocess (examples/recsys2021 pipeline)")
    p.add_argument("--model", choices=["wnd", "twotower"], default="wnd")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--emb-dim", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    t0 = time.perf_counter()
    if a.model == "wnd":
        table = Table(a.table, WND_EMBEDDED + WND_INDICATORS + WND_WIDE, WND_DENSE)
        model = WideAndDeep(table, a.emb_dim)
    else:
        table = Table(a.table, TT_USER + TT_USER_IND + TT_ITEM + TT_ITEM_IND, TT_DENSE)
        model = TwoTower(table, a.emb_dim)
    opts = optimizers(model, a.lr)
    load_s = time.perf_counter() - t0
    b = a.batch_size
    if table.rows < b:
        raise SystemExit(f"{a.table}: {table.rows} rows, fewer than one batch of {b}")
    nbatches = table.rows // b

    def train_steps(first: int, count: int) -> list[float]:
        losses = []
        for i in range(first, first + count):
            lo = (i % nbatches) * b
            for o in opts:
                o.zero_grad(set_to_none=True)
            batch = table.batch(lo, lo + b)
            loss = F.binary_cross_entropy_with_logits(model(batch), batch["labels"])
            loss.backward()
            for o in opts:
                o.step()
            losses.append(loss.item())
        return losses

    model.train()
    train_steps(0, a.warmup)
    t1 = time.perf_counter()
    losses = train_steps(a.warmup, a.steps)
    train_s = time.perf_counter() - t1

    model.eval()
    with torch.inference_mode():
        def infer_steps(first: int, count: int):
            for i in range(first, first + count):
                lo = (i % nbatches) * b
                torch.sigmoid(model(table.batch(lo, lo + b)))
        infer_steps(0, a.warmup)
        t2 = time.perf_counter()
        infer_steps(a.warmup, a.steps)
        infer_s = time.perf_counter() - t2

    res = {"peer": "pytorch", "torch": torch.__version__, "model": a.model, "batch_size": b, "threads": torch.get_num_threads(),
           "train_samples_per_s": round(a.steps * b / train_s, 1), "infer_samples_per_s": round(a.steps * b / infer_s, 1),
           "final_loss": float(np.mean(losses[-10:])), "steps": a.steps, "warmup": a.warmup, "emb_dim": a.emb_dim,
           "lr": a.lr, "rows": table.rows, "table_sizes": table.card, "load_s": round(load_s, 3),
           "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    print(f"{a.model} batch={b} threads={res['threads']}: train {res['train_samples_per_s']:,.0f} samples/s, "
          f"infer {res['infer_samples_per_s']:,.0f} samples/s, final loss {res['final_loss']:.4f}")
    if a.json:
        print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
