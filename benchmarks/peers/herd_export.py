"""Loads Herd's model exports into PyTorch: `manifest.json` + `weights.safetensors` (read with numpy;
no safetensors package needed). Used by the serving twin (py_serving.py).

`WideAndDeepExport` is Herd's Wide & Deep (Sources/HerdModels/WideAndDeep.swift) in inference mode,
built from the export's config and the batch spec in its feature_state:

  sparse feature f (batch_spec.sparse[f]) with dims[f] > 0 -> embedding bag (sum or mean pooling),
  the indicator features as multi-hot counts, the dense columns  ->  deep input
  deep: Linear -> [BatchNorm (running statistics) -> ] ReLU ... -> Linear -> 1   (dropout is off)
  wide: 1-dim table per wide feature (summed over the bag) + hashed crosses + bias
  logit = deep + wide; probability = sigmoid(logit)

Weight names as Herd exports them: deep_arch.{i}.weight [O, I] / .bias, deep_arch.{i}.norm.{weight,
bias,running_mean,running_var}, sparse_arch.{f}.weight, wide_arch.{f}.weight, wide_arch.cross{c}.weight,
wide_arch.bias.
"""
from __future__ import annotations

import json
import os
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

_DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8,
           "F16": np.float16, "I8": np.int8, "I16": np.int16}


def read_safetensors(path: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """({name: array}, metadata) of a .safetensors file."""
    with open(path, "rb") as f:
        raw = f.read()
    (hlen,) = struct.unpack_from("<Q", raw, 0)
    header = json.loads(raw[8:8 + hlen])
    meta = header.pop("__metadata__", {}) or {}
    base = 8 + hlen
    out = {}
    for name, e in header.items():
        if e["dtype"] == "BF16":
            lo, hi = e["data_offsets"]
            u16 = np.frombuffer(raw, dtype="<u2", count=(hi - lo) // 2, offset=base + lo)
            out[name] = (u16.astype(np.uint32) << 16).view(np.float32).reshape(e["shape"])
            continue
        dt = np.dtype(_DTYPES[e["dtype"]]).newbyteorder("<")
        lo, hi = e["data_offsets"]
        out[name] = np.frombuffer(raw, dtype=dt, count=(hi - lo) // dt.itemsize, offset=base + lo).reshape(e["shape"])
    return out, meta


def latest_export(workspace: str, name: str) -> str:
    """W/models/NAME/<latest version> (versions are numbered directories), or NAME if it is a directory
    holding a manifest."""
    if os.path.isfile(os.path.join(name, "manifest.json")):
        return name
    d = os.path.join(workspace, "models", name)
    versions = [v for v in os.listdir(d) if os.path.isfile(os.path.join(d, v, "manifest.json"))]
    if not versions:
        raise SystemExit(f"{d}: no export (no <version>/manifest.json); run herd train first")
    versions.sort(key=lambda v: (0, int(v)) if v.isdigit() else (1, v))
    return os.path.join(d, versions[-1])


def fnv_cross(ids: list[torch.Tensor], buckets: int) -> torch.Tensor:
    """Herd's cross hash (WideAndDeep.wideInput): FNV-1a-style over the UInt32 bit patterns of each
    feature's first id (-1 for an empty bag), with an xor-shift per step, modulo `buckets`."""
    mask = (1 << 64) - 1
    out = []
    cols = [t.tolist() for t in ids]
    for row in zip(*cols):
        h = 0xCBF29CE484222325
        for v in row:
            h = ((h ^ (v & 0xFFFFFFFF)) * 0x00000100000001B3) & mask
            h ^= h >> 29
        out.append(h % buckets)
    return torch.tensor(out, dtype=torch.int64)


class WideAndDeepExport(nn.Module):
    def __init__(self, export_dir: str):
        super().__init__()
        manifest = json.load(open(os.path.join(export_dir, "manifest.json")))
        if manifest["model_type"] != "wnd":
            raise SystemExit(f"{export_dir}: model_type {manifest['model_type']}, expected wnd")
        c = manifest["config"]
        spec = manifest["feature_state"]["batch_spec"]
        self.sparse_names = [s["name"] for s in spec["sparse"]]
        self.dense_names = list(spec["dense"])
        self.table_sizes = c["tableSizes"]
        fs = len(self.table_sizes)
        dims = c.get("embeddingDims") or [c.get("embeddingDim", 16)] * fs
        self.embedded = [f for f in range(fs) if dims[f] > 0]
        self.indicators = list(c.get("indicators", []))
        self.ind_base = np.cumsum([0] + [self.table_sizes[f] for f in self.indicators]).tolist()
        wf = c.get("wideFeatures")
        self.wide_features = list(range(fs)) if wf is None else list(wf)
        self.crosses = c.get("crosses", [])
        self.cross_buckets = c.get("crossBuckets", 10000)
        self.mode = c.get("pooling", "sum")
        if c.get("embeddingSpec", "dense") != "dense":
            raise SystemExit(f"{export_dir}: embeddingSpec {c['embeddingSpec']} not supported by the twin (dense only)")
        w, _ = read_safetensors(os.path.join(export_dir, "weights.safetensors"))
        t = lambda n: torch.from_numpy(np.array(w[n], dtype=np.float32))  # noqa: E731
        self.emb = nn.ParameterList([nn.Parameter(t(f"sparse_arch.{f}.weight"), requires_grad=False) for f in self.embedded])
        sizes = c.get("deepMLP", [1024, 512, 256, 1])
        layers: list[nn.Module] = []
        for i in range(len(sizes)):
            lin = nn.Linear(1, 1)
            lin.weight = nn.Parameter(t(f"deep_arch.{i}.weight"), requires_grad=False)
            lin.bias = nn.Parameter(t(f"deep_arch.{i}.bias"), requires_grad=False)
            layers.append(lin)
            if i < len(sizes) - 1:
                if c.get("batchNorm", False):
                    bn = nn.BatchNorm1d(sizes[i], eps=1e-5)
                    with torch.no_grad():
                        bn.weight.copy_(t(f"deep_arch.{i}.norm.weight"))
                        bn.bias.copy_(t(f"deep_arch.{i}.norm.bias"))
                        bn.running_mean.copy_(t(f"deep_arch.{i}.norm.running_mean"))
                        bn.running_var.copy_(t(f"deep_arch.{i}.norm.running_var"))
                    layers.append(bn)
                layers.append(nn.ReLU())
        self.deep = nn.Sequential(*layers)
        self.wide = nn.ParameterList([nn.Parameter(t(f"wide_arch.{f}.weight").reshape(-1), requires_grad=False)
                                      for f in self.wide_features]
                                     + [nn.Parameter(t(f"wide_arch.cross{k}.weight").reshape(-1), requires_grad=False)
                                        for k in range(len(self.crosses))])
        self.wide_bias = float(w["wide_arch.bias"][0])
        self.eval()
        # Forward FLOPs per row: 2 · Σ in·out of the deep MLP (what `herd bench` counts as MACs × 2).
        self.flops_per_row = 2 * sum(int(w[f"deep_arch.{i}.weight"].size) for i in range(len(sizes)))

    def forward(self, bags: list[tuple[torch.Tensor, torch.Tensor]], dense: torch.Tensor) -> torch.Tensor:
        """bags[f] = (ids int64, offsets int64 [B+1]) per sparse feature; dense [B, Fd] -> logits [B]."""
        b = dense.shape[0]
        parts = [F.embedding_bag(bags[f][0], e, bags[f][1], mode=self.mode, include_last_offset=True)
                 for f, e in zip(self.embedded, self.emb)]
        if self.indicators:
            ind = torch.zeros(b, self.ind_base[-1])
            for k, f in enumerate(self.indicators):
                ids, off = bags[f]
                rows = torch.repeat_interleave(torch.arange(b), off[1:] - off[:-1])
                ind.index_put_((rows, ids + self.ind_base[k]), torch.ones(ids.shape[0]), accumulate=True)
            parts.append(ind)
        if dense.shape[1]:
            parts.append(dense)
        logit = self.deep(torch.cat(parts, dim=1)).squeeze(1) + self.wide_bias
        for k, f in enumerate(self.wide_features):
            ids, off = bags[f]
            logit = logit + F.embedding_bag(ids, self.wide[k].unsqueeze(1), off, mode="sum", include_last_offset=True).squeeze(1)
        for k, cross in enumerate(self.crosses):
            firsts = []
            for f in cross:
                ids, off = bags[f]
                starts, ends = off[:-1], off[1:]
                first = torch.where(ends > starts, ids[starts.clamp(max=max(ids.shape[0] - 1, 0))] if ids.shape[0] else
                                    torch.full((b,), -1, dtype=torch.int64), torch.full((b,), -1, dtype=torch.int64))
                firsts.append(first)
            h = fnv_cross(firsts, self.cross_buckets)
            logit = logit + self.wide[len(self.wide_features) + k][h]
        return logit
