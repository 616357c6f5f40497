#!/usr/bin/env python3
"""Write tiny random GGUFs of the Qwen3 and Llama 3.x architectures (with the
`gguf` package, laid out as llama.cpp's converter lays them out) and the logits an
independent numpy forward pass (Hugging Face's formulation, float64) gives for a
fixed token sequence, plus its greedy continuation.

Opt-in; unit tests never need Python (they read the committed fixtures). How to run:

    python3 -m venv /tmp/g && /tmp/g/bin/pip install gguf numpy
    /tmp/g/bin/python scripts/arch-reference-fixture.py

Writes tests/fixtures/tiny_qwen3.gguf, tests/fixtures/tiny_llama3.gguf and
tests/fixtures/arch_reference.json; `tests/model_arch.rs` compares mscr's graph
with them.

- qwen3: per-head RMSNorm of queries and keys (`attn_q_norm` / `attn_k_norm`)
  before rotary, no Q/K/V biases, head_dim × heads ≠ hidden (as in Qwen3), tied
  embeddings.
- llama3: Llama 3 rope scaling, stored as llama.cpp stores it (`rope_freqs.weight`
  per-frequency divisors; Q/K rows permuted to llama.cpp's interleaved rotary
  halves). The original context is set to 32 tokens so the scaling changes the
  logits of a 12-token sequence measurably (with Llama 3.1's 8192 it would not).
"""

import json
import os

import numpy as np
from gguf import GGUFWriter, GGMLQuantizationType

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "tests", "fixtures")

TOKENS = [3, 17, 42, 8, 59, 21, 5, 33, 11, 60, 2, 47]
GREEDY = 8


def rms_norm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def llama3_inv_freq(inv_freq, factor, low, high, orig):
    # transformers' _compute_llama3_parameters.
    low_wavelen = orig / low
    high_wavelen = orig / high
    wavelen = 2 * np.pi / inv_freq
    scaled = np.where(wavelen > low_wavelen, inv_freq / factor, inv_freq)
    smooth = (orig / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
    return np.where(medium, smoothed, scaled)


def rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], axis=-1)


def forward(m, cfg, ids):
    """Logits [len(ids), vocab] by the textbook (HF) forward pass, float64."""
    hd, nh, nkv, eps = cfg["head_dim"], cfg["heads"], cfg["kv_heads"], cfg["eps"]
    inv = 1.0 / cfg["theta"] ** (np.arange(0, hd, 2, dtype=np.float64) / hd)
    if cfg.get("rope_scaling"):
        inv = llama3_inv_freq(inv, **cfg["rope_scaling"])
    pos = np.arange(len(ids), dtype=np.float64)
    ang = np.outer(pos, inv)
    cos = np.cos(np.concatenate([ang, ang], -1))[:, None, :]
    sin = np.sin(np.concatenate([ang, ang], -1))[:, None, :]
    x = m["embed"][ids]
    t = len(ids)
    mask = np.triu(np.full((t, t), -np.inf), 1)
    for L in m["layers"]:
        h = rms_norm(x, L["attn_norm"], eps)
        q = (h @ L["q"].T).reshape(t, nh, hd)
        k = (h @ L["k"].T).reshape(t, nkv, hd)
        v = (h @ L["v"].T).reshape(t, nkv, hd)
        if "q_norm" in L:
            q = rms_norm(q, L["q_norm"], eps)
            k = rms_norm(k, L["k_norm"], eps)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        g = nh // nkv
        out = np.zeros((t, nh, hd))
        for hh in range(nh):
            s = q[:, hh] @ k[:, hh // g].T / np.sqrt(hd) + mask
            p = np.exp(s - s.max(-1, keepdims=True))
            p /= p.sum(-1, keepdims=True)
            out[:, hh] = p @ v[:, hh // g]
        x = x + out.reshape(t, nh * hd) @ L["o"].T
        h = rms_norm(x, L["mlp_norm"], eps)
        gate = h @ L["gate"].T
        x = x + ((gate / (1 + np.exp(-gate))) * (h @ L["up"].T)) @ L["down"].T
    x = rms_norm(x, m["final_norm"], eps)
    head = m.get("lm_head", m["embed"])
    return x @ head.T


def random_model(cfg, rng):
    h, hd, nh, nkv, inter, vocab = (cfg[k] for k in ("hidden", "head_dim", "heads", "kv_heads", "inter", "vocab"))

    def mat(r, c):
        # f16-representable values, so the F16 file holds exactly these weights.
        return (rng.uniform(-1, 1, (r, c)) / np.sqrt(c)).astype(np.float16).astype(np.float64)

    def norm(n):
        return (1 + rng.uniform(-0.3, 0.3, n)).astype(np.float32).astype(np.float64)

    layers = []
    for _ in range(cfg["layers"]):
        L = {
            "attn_norm": norm(h),
            "q": mat(nh * hd, h),
            "k": mat(nkv * hd, h),
            "v": mat(nkv * hd, h),
            "o": mat(h, nh * hd),
            "mlp_norm": norm(h),
            "gate": mat(inter, h),
            "up": mat(inter, h),
            "down": mat(h, inter),
        }
        if cfg["arch"] == "qwen3":
            L["q_norm"] = norm(hd)
            L["k_norm"] = norm(hd)
        layers.append(L)
    m = {"embed": mat(vocab, h) * 2, "layers": layers, "final_norm": norm(h)}
    if not cfg["tied"]:
        m["lm_head"] = mat(vocab, h)
    return m


def permute(w, n_head):
    # llama.cpp's convert_hf_to_gguf.py LlamaModel.permute (HF rotate_half → interleaved).
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_gguf(path, m, cfg):
    a = cfg["arch_gguf"]
    w = GGUFWriter(path, a)
    w.add_name(f"mscr tiny {cfg['arch']}")
    w.add_context_length(256)
    w.add_embedding_length(cfg["hidden"])
    w.add_feed_forward_length(cfg["inter"])
    w.add_block_count(cfg["layers"])
    w.add_head_count(cfg["heads"])
    w.add_head_count_kv(cfg["kv_heads"])
    w.add_key_length(cfg["head_dim"])
    w.add_value_length(cfg["head_dim"])
    w.add_rope_dimension_count(cfg["head_dim"])
    w.add_rope_freq_base(cfg["theta"])
    w.add_layer_norm_rms_eps(cfg["eps"])
    w.add_vocab_size(cfg["vocab"])
    f16 = lambda x: x.astype(np.float16)
    f32 = lambda x: x.astype(np.float32)
    rs = cfg.get("rope_scaling")
    if rs:
        # What llama.cpp's converter stores for rope_type llama3.
        hd, theta = cfg["head_dim"], cfg["theta"]
        freqs = 1.0 / theta ** (np.arange(0, hd, 2, dtype=np.float32) / hd)
        lw, hw = rs["orig"] / rs["low"], rs["orig"] / rs["high"]
        factors = []
        for f in freqs:
            wl = 2 * np.pi / f
            if wl < hw:
                factors.append(1)
            elif wl > lw:
                factors.append(rs["factor"])
            else:
                s = (rs["orig"] / wl - rs["low"]) / (rs["high"] - rs["low"])
                factors.append(1 / ((1 - s) / rs["factor"] + s))
        w.add_tensor("rope_freqs.weight", np.array(factors, dtype=np.float32))
        w.add_rope_scaling_orig_ctx_len(rs["orig"])
    w.add_tensor("token_embd.weight", f16(m["embed"]))
    for i, L in enumerate(m["layers"]):
        p = f"blk.{i}"
        q, k = L["q"], L["k"]
        if cfg["arch_gguf"] == "llama":
            q, k = permute(q, cfg["heads"]), permute(k, cfg["kv_heads"])
        w.add_tensor(f"{p}.attn_norm.weight", f32(L["attn_norm"]))
        w.add_tensor(f"{p}.attn_q.weight", f16(q))
        w.add_tensor(f"{p}.attn_k.weight", f16(k))
        w.add_tensor(f"{p}.attn_v.weight", f16(L["v"]))
        w.add_tensor(f"{p}.attn_output.weight", f16(L["o"]))
        if "q_norm" in L:
            w.add_tensor(f"{p}.attn_q_norm.weight", f32(L["q_norm"]))
            w.add_tensor(f"{p}.attn_k_norm.weight", f32(L["k_norm"]))
        w.add_tensor(f"{p}.ffn_norm.weight", f32(L["mlp_norm"]))
        w.add_tensor(f"{p}.ffn_gate.weight", f16(L["gate"]))
        w.add_tensor(f"{p}.ffn_up.weight", f16(L["up"]))
        w.add_tensor(f"{p}.ffn_down.weight", f16(L["down"]))
    w.add_tensor("output_norm.weight", f32(m["final_norm"]))
    if "lm_head" in m:
        w.add_tensor("output.weight", f16(m["lm_head"]))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def greedy(m, cfg, ids, n):
    ids = list(ids)
    out, margins = [], []
    for _ in range(n):
        row = forward(m, cfg, ids)[-1]
        top = np.argsort(row)[::-1]
        out.append(int(top[0]))
        margins.append(float(row[top[0]] - row[top[1]]))
        ids.append(int(top[0]))
    return out, margins


def main():
    configs = [
        dict(arch="qwen3", arch_gguf="qwen3", vocab=64, hidden=32, inter=64, layers=2, heads=4,
             kv_heads=2, head_dim=16, theta=1000000.0, eps=1e-6, tied=True, seed=3),
        dict(arch="llama3", arch_gguf="llama", vocab=64, hidden=64, inter=96, layers=2, heads=4,
             kv_heads=2, head_dim=16, theta=500000.0, eps=1e-5, tied=False, seed=4,
             rope_scaling=dict(factor=8.0, low=1.0, high=4.0, orig=32)),
    ]
    out = {"generator": "scripts/arch-reference-fixture.py", "tokens": TOKENS, "models": []}
    for cfg in configs:
        # The first seed whose greedy continuation is varied and never a near tie
        # (a float32 graph must pick the same tokens).
        seed = cfg["seed"]
        while True:
            m = random_model(cfg, np.random.default_rng(seed))
            cont, margins = greedy(m, cfg, TOKENS, GREEDY)
            if min(margins) > 0.05 and len(set(cont)) > 2:
                break
            seed += 100
        path = os.path.join(FIX, f"tiny_{cfg['arch']}.gguf")
        write_gguf(path, m, cfg)
        logits = forward(m, cfg, TOKENS)
        entry = {
            "arch": cfg["arch"],
            "file": os.path.basename(path),
            "logits": [[round(float(v), 6) for v in row] for row in logits],
            "greedy": cont,
            "greedy_margins": [round(v, 6) for v in margins],
        }
        if cfg.get("rope_scaling"):
            plain = dict(cfg, rope_scaling=None)
            diff = float(np.abs(forward(m, plain, TOKENS) - logits).max())
            entry["max_logit_change_without_rope_scaling"] = round(diff, 6)
        out["models"].append(entry)
        print(f"{path}: {os.path.getsize(path)} bytes; greedy {cont}; min margin {min(margins):.4f}")
        if "max_logit_change_without_rope_scaling" in entry:
            print(f"  ignoring rope scaling would move logits by up to {entry['max_logit_change_without_rope_scaling']}")
    with open(os.path.join(FIX, "arch_reference.json"), "w") as f:
        json.dump(out, f)
        f.write("\n")


if __name__ == "__main__":
    main()
