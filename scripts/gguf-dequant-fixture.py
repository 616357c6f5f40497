#!/usr/bin/env python3
"""Write tests/fixtures/gguf_dequant.json: ggml blocks of every common GGUF tensor
type with the values the `gguf` Python package dequantises them to.

Opt-in; unit tests never need Python (they read the committed fixture). How to run:

    python3 -m venv /tmp/g && /tmp/g/bin/pip install gguf numpy
    /tmp/g/bin/python scripts/gguf-dequant-fixture.py [real.gguf ...]

For each type it writes a few blocks of random bytes whose f16 scale fields are
overwritten with sane values (random bytes there would give inf/NaN scales), and,
for every GGUF file given, the first blocks of one tensor of each type that file
holds (real blocks from a real quantiser). `tests/model_gguf.rs` checks that
mscr dequantises every entry to exactly these values.
"""

import json
import os
import sys

import numpy as np
from gguf import GGUFReader
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType as T
from gguf.quants import dequantize

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "gguf_dequant.json")

# Byte offsets of each type's f16 scale fields inside one block (ggml-common.h).
F16_FIELDS = {
    T.Q4_0: [0],
    T.Q4_1: [0, 2],
    T.Q5_0: [0],
    T.Q5_1: [0, 2],
    T.Q8_0: [0],
    T.Q2_K: [80, 82],
    T.Q3_K: [108],
    T.Q4_K: [0, 2],
    T.Q5_K: [0, 2],
    T.Q6_K: [208],
    T.IQ4_NL: [0],
    T.IQ4_XS: [0],
    T.F16: None,
    T.BF16: None,
    T.F32: None,
}


def random_blocks(ty, n_blocks, rng):
    block, size = GGML_QUANT_SIZES[ty]
    if ty == T.F32:
        return rng.standard_normal(n_blocks * block).astype(np.float32).view(np.uint8)
    if ty == T.F16:
        return rng.standard_normal(n_blocks * block).astype(np.float16).view(np.uint8)
    if ty == T.BF16:
        f = rng.standard_normal(n_blocks * block).astype(np.float32)
        return (f.view(np.uint32) >> 16).astype(np.uint16).view(np.uint8)
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    for off in F16_FIELDS[ty]:
        scale = (rng.uniform(0.002, 0.05, size=n_blocks) * rng.choice([-1, 1], size=n_blocks))
        raw[:, off:off + 2] = scale.astype(np.float16).view(np.uint8).reshape(n_blocks, 2)
    return raw.reshape(-1)


def entry(ty, raw, source):
    block, size = GGML_QUANT_SIZES[ty]
    raw = np.ascontiguousarray(raw, dtype=np.uint8)
    n = raw.size // size * block
    values = dequantize(raw.reshape(-1, size), ty).reshape(-1).astype(np.float32)
    assert values.size == n and np.isfinite(values).all(), (ty.name, source)
    return {
        "type": ty.name,
        "id": int(ty),
        "source": source,
        "n": int(n),
        "bytes": raw.tobytes().hex(),
        # f32 → Python float is exact; JSON keeps the shortest repr that round-trips.
        "values": [float(v) for v in values],
    }


def real_blocks(path, seen):
    reader = GGUFReader(path)
    out = []
    for t in reader.tensors:
        ty = t.tensor_type
        if ty in seen or ty not in F16_FIELDS:
            continue
        seen.add(ty)
        block, size = GGML_QUANT_SIZES[ty]
        n_blocks = 4 if block == 256 else 16
        if block == 1:
            n_blocks = 64
        n_blocks = min(n_blocks, t.n_bytes // size)
        start = t.data_offset
        raw = np.memmap(path, dtype=np.uint8, mode="r", offset=start, shape=(n_blocks * size,))
        out.append(entry(ty, np.array(raw), f"{os.path.basename(path)}:{t.name}"))
    return out


def main():
    rng = np.random.default_rng(14)
    entries = []
    for ty in F16_FIELDS:
        block, _ = GGML_QUANT_SIZES[ty]
        n_blocks = 3 if block == 256 else (8 if block == 32 else 64)
        entries.append(entry(ty, random_blocks(ty, n_blocks, rng), "random"))
    seen = set()
    for path in sys.argv[1:]:
        entries.extend(real_blocks(path, seen))
    with open(OUT, "w") as f:
        json.dump({"generator": "scripts/gguf-dequant-fixture.py", "entries": entries}, f)
        f.write("\n")
    print(f"wrote {len(entries)} entries to {os.path.normpath(OUT)}")
    for e in entries:
        print(f"  {e['type']:7} {e['n']:5} values  {e['source']}")


if __name__ == "__main__":
    main()
