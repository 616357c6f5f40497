#!/usr/bin/env python3
"""Parity of mscr's `lora:path=DIR` transform with PEFT, on tiny random models.

Opt-in; unit tests never need Python (they read the committed fixtures). How to run:

    python3 -m venv /tmp/peftenv && /tmp/peftenv/bin/pip install torch peft transformers safetensors
    /tmp/peftenv/bin/python scripts/compare-peft.py [--no-test]
    /tmp/peftenv/bin/pip install gguf   # only for --real
    /tmp/peftenv/bin/python scripts/compare-peft.py --real ~/.cache/mscr/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf [--f64]

Builds two tiny random Hugging Face decoders (Llama with tied embeddings, Qwen2
with Q/K/V biases and its own lm_head; 2 layers, hidden 64, head_dim 16, vocab
128; weights stored as F16 so both sides read the same numbers) and random PEFT
adapters on them, saves each with PEFT's own `save_pretrained`, reloads it with
`PeftModel.from_pretrained` onto a fresh base model (PEFT's unmerged forward,
float32, eager attention) and records the logits at every position of a few
token sequences. Cases:

- llama-lora: plain LoRA on all seven projections, rank_pattern / alpha_pattern,
  layers_to_transform = [1] (layer 0 untouched).
- qwen2-rslora: rsLoRA (alpha/sqrt(r)) on q, v, up, down, with exclude_modules.
- qwen2-dora: DoRA on q, k, v, o (biased projections), random magnitudes.
- llama-dora-rslora: DoRA with rsLoRA on the MLP.
- llama-regex-fifo: target_modules as a regex string, and fan_in_fan_out set
  to true in adapter_config.json after saving (PEFT resets it to false for
  torch.nn.Linear; so must mscr).

Writes tests/fixtures/peft/{llama,qwen2}/ (config.json, model.safetensors),
tests/fixtures/peft/targeting.json (PEFT's own module-matching decisions for a set
of configs on a 12-layer name list, and the configs PEFT refuses),
tests/fixtures/peft/<case>/ (adapter_config.json, adapter_model.safetensors),
tests/fixtures/peft/cases.json (model, adapter, token sequences) and
tests/fixtures/peft/expected.safetensors (`<case>.<i>`: [len, vocab] logits).
Then it runs `cargo test --test transform_lora -- --nocapture`, which loads each
case through mscr's ONNX Runtime graph and prints max |Δ| per case
(`--no-test` skips that).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "peft")
VOCAB = 128


def base_config(arch):
    common = dict(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=64,
        rms_norm_eps=1e-6,
        rope_theta=10000.0,
        bos_token_id=1,
        eos_token_id=2,
    )
    if arch == "llama":
        return LlamaConfig(tie_word_embeddings=True, **common)
    return Qwen2Config(tie_word_embeddings=False, use_sliding_window=False, **common)


def write_base(arch, gen):
    """A random model whose weights are F16-exact, saved as F16 safetensors."""
    cfg = base_config(arch)
    cfg._attn_implementation = "eager"
    model = AutoModelForCausalLM.from_config(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                v = 1.0 + 0.1 * torch.randn(p.shape, generator=gen)
            elif name.endswith("bias"):
                v = 0.2 * torch.randn(p.shape, generator=gen)
            elif "embed_tokens" in name:
                v = torch.randn(p.shape, generator=gen)
            else:
                v = torch.randn(p.shape, generator=gen) / p.shape[1] ** 0.5
            p.copy_(v.half().float())
    d = os.path.join(OUT, arch)
    os.makedirs(d, exist_ok=True)
    cfg.save_pretrained(d)
    sd = {k: v.detach().half().contiguous() for k, v in model.state_dict().items()}
    if cfg.tie_word_embeddings:
        sd.pop("lm_head.weight", None)
    save_file(sd, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    return d


def load_base(d):
    m = AutoModelForCausalLM.from_pretrained(d, torch_dtype=torch.float32, attn_implementation="eager")
    return m.eval()


CASES = [
    (
        "llama-lora",
        "llama",
        dict(
            r=4,
            lora_alpha=8,
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
            rank_pattern={"k_proj": 2, "model.layers.1.mlp.down_proj": 6},
            alpha_pattern={"v_proj": 3, "o_proj": 16},
            layers_to_transform=[1],
        ),
        None,
    ),
    (
        "qwen2-rslora",
        "qwen2",
        dict(
            r=8,
            lora_alpha=16,
            use_rslora=True,
            target_modules=["q_proj", "v_proj", "up_proj", "down_proj"],
            exclude_modules=["model.layers.0.mlp.up_proj"],
        ),
        None,
    ),
    (
        "qwen2-dora",
        "qwen2",
        dict(r=4, lora_alpha=8, use_dora=True, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]),
        None,
    ),
    (
        "llama-dora-rslora",
        "llama",
        dict(r=4, lora_alpha=6, use_dora=True, use_rslora=True, target_modules=["gate_proj", "up_proj", "down_proj"]),
        None,
    ),
    (
        "llama-regex-fifo",
        "llama",
        dict(r=3, lora_alpha=5, target_modules=r"model\.layers\.\d+\.(self_attn\.(q|o)_proj|mlp\.gate_proj)"),
        {"fan_in_fan_out": True},
    ),
]


def randomize(peft_model, gen):
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_A" in name:
                p.copy_(torch.randn(p.shape, generator=gen) / p.shape[1] ** 0.5)
            elif "lora_B" in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif "lora_magnitude_vector" in name:
                p.mul_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))


# Module matching alone, on a 12-layer name list (so layer 1 and layer 11
# differ): PEFT's own check_target_module_exists and get_pattern_key decide.
TARGETING = [
    dict(target_modules=["q_proj", "v_proj"]),
    dict(target_modules=["self_attn.q_proj", "model.layers.3.mlp.up_proj", "proj"]),
    dict(target_modules=r".*\.1\d?\.(self_attn\.k_proj|mlp\..*)"),
    dict(target_modules=r"model\.layers\.[0-5]\.mlp\.(gate|up)_proj", layers_to_transform=[0]),
    dict(target_modules=r"model\.layers\.[0-5]\.mlp\.(gate|up)_proj"),
    dict(target_modules=["q_proj"], layers_pattern="layers"),
    dict(target_modules=["q_proj", "down_proj"], layers_to_transform=[1, 10]),
    dict(target_modules=["o_proj"], layers_to_transform=11),
    dict(target_modules=["up_proj", "k_proj"], layers_to_transform=[2], layers_pattern="layers"),
    dict(target_modules=["up_proj"], layers_to_transform=[2], layers_pattern=["blocks", "h"]),
    dict(target_modules=["q_proj", "k_proj", "gate_proj"], exclude_modules=["model.layers.1.self_attn.k_proj", "gate_proj"]),
    dict(target_modules=["q_proj", "v_proj", "down_proj"], exclude_modules=r".*layers\.1[01]?\..*"),
    dict(
        target_modules=["q_proj", "v_proj", "up_proj", "down_proj"],
        rank_pattern={"model.layers.1.self_attn.q_proj": 5, "q_proj": 7, "1.mlp.up_proj": 3, "layers\\.1\\d\\..*": 2},
        alpha_pattern={"v_proj": 3.5, "^model.layers.0.mlp.down_proj": 11, "mlp.down_proj": 12},
    ),
]


def write_targeting():
    from peft.tuners.tuners_utils import check_target_module_exists
    from peft.utils.other import get_pattern_key

    names = [
        f"model.layers.{i}.{blk}.{p}"
        for i in range(12)
        for blk, p in [("self_attn", "q_proj"), ("self_attn", "k_proj"), ("self_attn", "v_proj"),
                       ("self_attn", "o_proj"), ("mlp", "gate_proj"), ("mlp", "up_proj"), ("mlp", "down_proj")]
    ]
    out = []
    for kw in TARGETING:
        try:
            cfg = LoraConfig(r=4, lora_alpha=8, **kw)
        except ValueError as e:
            # PEFT refuses the config itself: so must mscr.
            out.append({"config": json.dumps(dict(r=4, lora_alpha=8, **kw)), "refused": str(e)})
            continue
        # The config as text: pattern dicts are searched in file order.
        row = {"config": json.dumps(dict(r=4, lora_alpha=8, **kw)), "targeted": [], "r": [], "alpha": []}
        for n in names:
            found = check_target_module_exists(cfg, n)
            row["targeted"].append(bool(found) and type(found).__name__ != "_ExcludedModule")
            row["r"].append(cfg.rank_pattern.get(get_pattern_key(cfg.rank_pattern.keys(), n), cfg.r))
            row["alpha"].append(cfg.alpha_pattern.get(get_pattern_key(cfg.alpha_pattern.keys(), n), cfg.lora_alpha))
        out.append(row)
    with open(os.path.join(OUT, "targeting.json"), "w") as f:
        json.dump({"names": names, "cases": out}, f, separators=(",", ":"))


def real_model(gguf_path):
    """--real GGUF: the same check on a real model (SmolLM2-135M-Instruct's GGUF
    from mscr's cache, which transformers dequantises as mscr does): random
    LoRA (all seven projections, rsLoRA) and DoRA (q, v, down) adapters, logits
    of one 16-token sequence, written under /tmp/mscr-peft-real, then compared
    by the ignored test `real_model_matches_peft`."""
    out = "/tmp/mscr-peft-real"
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    gen = torch.Generator().manual_seed(7)

    def load():
        m = AutoModelForCausalLM.from_pretrained(
            os.path.dirname(gguf_path), gguf_file=os.path.basename(gguf_path),
            dtype=torch.float32, attn_implementation="eager",
        )
        return m.eval()

    seq = torch.randint(200, 40000, (16,), generator=gen).tolist()
    kinds = {
        "real-lora": dict(r=8, lora_alpha=16, use_rslora=True, target_modules="all-linear"),
        "real-dora": dict(r=4, lora_alpha=8, use_dora=True, target_modules=["q_proj", "v_proj", "down_proj"]),
    }
    expected, exact, cases = {}, {}, []
    for name, kw in kinds.items():
        pm = get_peft_model(load(), LoraConfig(lora_dropout=0.0, **kw))
        with torch.no_grad():
            for n, p in pm.named_parameters():
                if "lora_A" in n:
                    p.copy_(torch.randn(p.shape, generator=gen) / p.shape[1] ** 0.5)
                elif "lora_B" in n:
                    p.copy_(0.02 * torch.randn(p.shape, generator=gen))
                elif "lora_magnitude_vector" in n:
                    p.mul_(1.0 + 0.05 * torch.randn(p.shape, generator=gen))
        d = os.path.join(out, name)
        pm.save_pretrained(d, safe_serialization=True)
        reloaded = PeftModel.from_pretrained(load(), d).eval()
        with torch.no_grad():
            expected[f"{name}.0"] = reloaded(input_ids=torch.tensor([seq])).logits[0].float().contiguous()
        if "--f64" in sys.argv:  # slow: the exact value to measure both against
            with torch.no_grad():
                exact[f"{name}.0"] = reloaded.double()(input_ids=torch.tensor([seq])).logits[0].float().contiguous()
        cases.append({"name": name, "model": gguf_path, "adapter": d, "tokens": [seq]})
        print(f"{name}: written")
    save_file(expected, os.path.join(out, "expected.safetensors"))
    if exact:
        save_file(exact, os.path.join(out, "f64.safetensors"))
    with open(os.path.join(out, "cases.json"), "w") as f:
        json.dump({"cases": cases}, f)
    r = subprocess.run(
        ["cargo", "test", "--test", "transform_lora", "real_model", "--", "--ignored", "--nocapture"],
        cwd=ROOT, env={**os.environ, "MSCR_PEFT_REAL": out},
    )
    sys.exit(r.returncode)


def main():
    if "--real" in sys.argv:
        real_model(sys.argv[sys.argv.index("--real") + 1])
        return
    gen = torch.Generator().manual_seed(20261207)
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    bases = {a: write_base(a, gen) for a in ("llama", "qwen2")}
    seqs = [
        torch.randint(3, VOCAB, (n,), generator=gen).tolist() for n in (9, 6, 12)
    ]
    expected = {}
    cases = []
    for name, arch, kw, edit in CASES:
        peft_model = get_peft_model(load_base(bases[arch]), LoraConfig(lora_dropout=0.0, **kw))
        randomize(peft_model, gen)
        d = os.path.join(OUT, name)
        peft_model.save_pretrained(d, safe_serialization=True)
        for extra in os.listdir(d):
            if extra not in ("adapter_config.json", "adapter_model.safetensors"):
                os.remove(os.path.join(d, extra))
        cfg_path = os.path.join(d, "adapter_config.json")
        with open(cfg_path) as f:
            cfg = json.load(f)
        # The folder names the base by a path on this machine: keep it portable.
        cfg["base_model_name_or_path"] = f"tests/fixtures/peft/{arch}"
        # PEFT writes a set in hash order: sort it so reruns give the same bytes.
        if isinstance(cfg.get("target_modules"), list):
            cfg["target_modules"] = sorted(cfg["target_modules"])
        if edit:
            cfg.update(edit)
        with open(cfg_path, "w") as f:
            json.dump(cfg, f, indent=2, sort_keys=False)
        # What a user's reload gives: a fresh base and PEFT's own loader.
        reloaded = PeftModel.from_pretrained(load_base(bases[arch]), d).eval()
        base_only = load_base(bases[arch])
        deltas = []
        for i, s in enumerate(seqs):
            with torch.no_grad():
                ids = torch.tensor([s])
                logits = reloaded(input_ids=ids).logits[0].float()
                base = base_only(input_ids=ids).logits[0].float()
            expected[f"{name}.{i}"] = logits.contiguous()
            deltas.append((logits - base).abs().max().item())
        cases.append({"name": name, "model": arch, "adapter": name, "tokens": seqs})
        print(f"{name}: adapter moves PEFT's logits by up to {max(deltas):.3f}")
    save_file(expected, os.path.join(OUT, "expected.safetensors"))
    write_targeting()
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump(
            {
                "generator": "scripts/compare-peft.py",
                "torch": torch.__version__,
                "peft": __import__("peft").__version__,
                "transformers": __import__("transformers").__version__,
                "cases": cases,
            },
            f,
            indent=1,
        )
    total = sum(
        os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(OUT) for f in fs
    )
    print(f"wrote {OUT} ({total / 1024:.0f} KiB)")
    if "--no-test" not in sys.argv:
        r = subprocess.run(
            ["cargo", "test", "--test", "transform_lora", "--", "--nocapture"], cwd=ROOT
        )
        sys.exit(r.returncode)


if __name__ == "__main__":
    main()
