"""Dump the W&D ranker's hidden ReLU outputs for real serving requests (canK 200), for sparse_gemm.c.

Runs the Python twin's pipeline (benchmarks/peers/py_serving.py, already loaded into Redis by
`py_serving.py load`) on users spread over the workspace, records each hidden ReLU's output, prints
how many activations are zero and how often a whole tile of R rows is zero at an input k (what a
kernel skipping zeros per register tile could drop), and writes the first 20 requests of each
layer as raw float32: OUT/act<i>.f32, [20·200, width_i].
usage: dump_activations.py WORKSPACE REDIS_URL OUT
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "peers"))
from py_serving import Pipeline  # noqa: E402


def main() -> int:
    ws, url, out = sys.argv[1:4]
    import torch

    p = Pipeline(ws, url, "pytwin:", index="flat")
    acts: dict[int, list[np.ndarray]] = {}
    relus = [m for m in p.model.deep if isinstance(m, torch.nn.ReLU)]
    for i, m in enumerate(relus):
        m.register_forward_hook(lambda mod, inp, o, i=i: acts.setdefault(i, []).append(o.detach().numpy().copy()))
    users = list(p.user_row)[:: max(1, len(p.user_row) // 150)][:150]
    for u in users:
        p.recommend(u, 10, 200)
    for i, lst in sorted(acts.items()):
        full = [a for a in lst if a.shape[0] == 200]
        zeros = [a == 0 for a in full]
        line = f"relu {i}: width {full[0].shape[1]}, {len(full)} requests, zero {np.mean([z.mean() for z in zeros]):.3f}; all-zero tiles of R rows:"
        for r in (1, 2, 4, 6, 8):
            line += f" R={r} {np.mean([z[: 200 // r * r].reshape(-1, r, z.shape[1]).all(1).mean() for z in zeros]):.3f}"
        print(line)
        np.concatenate(full[:20]).astype(np.float32).tofile(os.path.join(out, f"act{i}.f32"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
