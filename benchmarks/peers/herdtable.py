"""Reads Herd's binary columnar `.herdtable` files (Sources/HerdFeatures/TableFile.swift) with numpy:
"HERDTBL1", a little-endian UInt64 header length, a JSON header, then 64-byte aligned buffers."""
import json
import struct

import numpy as np


def read_herdtable(path):
    """{name: (type, validity or None, data)}; data: ndarray, or (offsets, values) for lists and
    strings (strings: values are bytes)."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:8] != b"HERDTBL1":
        raise SystemExit(f"{path}: not a .herdtable (missing HERDTBL1 magic)")
    (hlen,) = struct.unpack_from("<Q", raw, 8)
    header = json.loads(raw[16:16 + hlen])
    rows = header["rows"]
    out = {}
    for col in header["columns"]:
        bufs = list(col["buffers"])

        def take(kind, dtype):
            b = bufs.pop(0)
            assert b["kind"] == kind, (col["name"], b["kind"], kind)
            return np.frombuffer(raw, dtype=dtype, count=b["length"] // np.dtype(dtype).itemsize, offset=b["offset"])

        validity = None
        if bufs and bufs[0]["kind"] == "validity":
            words = take("validity", "<u8")
            validity = np.unpackbits(words.view(np.uint8), bitorder="little")[:rows].astype(bool)

        def data(t):
            if t == "int64":
                return take("values", "<i8")
            if t == "double":
                return take("values", "<f8")
            if t == "string":
                o = take("offsets", "<i8")
                return (o, take("bytes", np.uint8).tobytes())
            o = take("list_offsets", "<i8")
            return (o, data(t.replace("_list", "")))

        out[col["name"]] = (col["type"], validity, data(col["type"]))
    return rows, out
