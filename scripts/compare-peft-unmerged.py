#!/usr/bin/env python3
"""Parity of mscr's unmerged adapter transforms (`toplora:`, `brep:`) with the
reference formulas, on the tiny random models of scripts/compare-peft.py.

Opt-in; unit tests never need Python (they read the committed fixtures). Run
scripts/compare-peft.py first (it writes the base models), then:

    /tmp/peftenv/bin/python scripts/compare-peft-unmerged.py [--no-test]

Neither reference library is on the package index, so the reference forward
is the published formula, applied with forward hooks on the Hugging Face
model (float32, eager attention):

- TopLoRA (Leopold1423/toplora-neurips25, mypeft/toplora.py): on each adapted
  projection, y = W0 x + s * B((A x) * exp(RMSNorm_g(x @ Theta))), RMS norm over
  the rank with eps = torch.finfo(float32).eps, s = alpha / r (alpha / sqrt(r)
  with rsLoRA). The adapter is a PEFT LoRA folder written by PEFT's own
  save_pretrained, plus the extra keys `<module>.lora_lambda.weight` [in, r]
  and `<module>.lora_lambda.rms_norm.weight` [r] added to its safetensors.
- BREP (LiangThree/BREP, model.py, op_position "ffn_up", layer_type "all"):
  up_proj(x) * scaling + bias on the prompt pass (every position) and on the
  first n_prefix single-token decode steps; saved as BREP saves it, a
  torch.save dict of bf16 [1, intermediate] tensors keyed
  `model.layers.{i}.mlp.up_proj.delta_vector.activation_{scaling,bias}` in
  `ffn_up/delta_vector.pth`.

Writes tests/fixtures/peft/unmerged/: one folder per case, cases.json, and
expected.safetensors (`<case>.<i>`: [len, vocab] logits of a whole sequence
taken as the prompt; for BREP also `<case>.gen.<i>`: the log-probabilities of
greedy decoding with a KV cache, whose tokens are in cases.json). Then runs
`cargo test --test transform_unmerged -- --nocapture`.
"""

import json
import os
import shutil
import subprocess
import sys

import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASES = os.path.join(ROOT, "tests", "fixtures", "peft")
OUT = os.path.join(BASES, "unmerged")
VOCAB = 128

PROJ = {
    "q_proj": "self_attn", "k_proj": "self_attn", "v_proj": "self_attn", "o_proj": "self_attn",
    "gate_proj": "mlp", "up_proj": "mlp", "down_proj": "mlp",
}


def load_base(arch):
    m = AutoModelForCausalLM.from_pretrained(
        os.path.join(BASES, arch), dtype=torch.float32, attn_implementation="eager"
    )
    return m.eval()


TOPLORA = [
    # The paper's setting: q, k, v (biased on Qwen2), r 8, alpha 16.
    ("toplora-qwen2", "qwen2", dict(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj"])),
    # rsLoRA, a per-module rank, attention output and the whole MLP.
    (
        "toplora-llama",
        "llama",
        dict(
            r=4,
            lora_alpha=6,
            use_rslora=True,
            rank_pattern={"down_proj": 2},
            target_modules=["q_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        ),
    ),
]


def toplora_case(name, arch, kw, gen, seqs, expected):
    pm = get_peft_model(load_base(arch), LoraConfig(lora_dropout=0.0, **kw))
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_A" in n:
                p.copy_(torch.randn(p.shape, generator=gen) / p.shape[1] ** 0.5)
            elif "lora_B" in n:
                p.copy_(0.2 * torch.randn(p.shape, generator=gen))
    d = os.path.join(OUT, name)
    pm.save_pretrained(d, safe_serialization=True)
    for extra in os.listdir(d):
        if extra not in ("adapter_config.json", "adapter_model.safetensors"):
            os.remove(os.path.join(d, extra))
    cfg_path = os.path.join(d, "adapter_config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg["base_model_name_or_path"] = f"tests/fixtures/peft/{arch}"
    if isinstance(cfg.get("target_modules"), list):
        cfg["target_modules"] = sorted(cfg["target_modules"])
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=2)
    # TopLoRA's extra weights, beside PEFT's lora_A / lora_B.
    st_path = os.path.join(d, "adapter_model.safetensors")
    tensors = load_file(st_path)
    branches = {}
    for key in sorted(tensors):
        if not key.endswith(".lora_A.weight"):
            continue
        module = key[len("base_model.model."):-len(".lora_A.weight")]
        a = tensors[key]
        b = tensors[key.replace("lora_A", "lora_B")]
        r, n_in = a.shape
        theta = torch.randn((n_in, r), generator=gen) / n_in ** 0.5
        gain = 0.6 + 0.3 * torch.randn((r,), generator=gen)
        tensors[key.replace("lora_A.weight", "lora_lambda.weight")] = theta.contiguous()
        tensors[key.replace("lora_A.weight", "lora_lambda.rms_norm.weight")] = gain.contiguous()
        proj = module.split(".")[-1]
        alpha = kw["lora_alpha"]
        s = alpha / r ** 0.5 if kw.get("use_rslora") else alpha / r
        branches[module] = (a, b, theta, gain, s)
    save_file(tensors, st_path, metadata={"format": "pt"})

    # The reference forward: the base model plus each module's gated branch.
    model = load_base(arch)
    eps = torch.finfo(torch.float32).eps

    def hook(branch):
        a, b, theta, gain, s = branch

        def f(_mod, args, out):
            x = args[0]
            sigma = torch.exp(F.rms_norm(x @ theta, (theta.shape[1],), weight=gain, eps=eps))
            return out + s * F.linear(F.linear(x, a) * sigma, b)

        return f

    for module, branch in branches.items():
        model.get_submodule(module).register_forward_hook(hook(branch))
    base = load_base(arch)
    moved = 0.0
    for i, s in enumerate(seqs):
        with torch.no_grad():
            ids = torch.tensor([s])
            logits = model(input_ids=ids).logits[0].float()
            moved = max(moved, (logits - base(input_ids=ids).logits[0]).abs().max().item())
        expected[f"{name}.{i}"] = logits.contiguous()
    print(f"{name}: {len(branches)} TopLoRA branches move the logits by up to {moved:.3f}")
    return {"name": name, "kind": "toplora", "model": arch, "adapter": name, "tokens": seqs}


BREP = [
    # n_prefix 3: the prompt and the first three decode steps (on Qwen2: the
    # tied random Llama's greedy output is saturated, log-probs all 0).
    ("brep-qwen2", "qwen2", 3, None),
    # n_prefix -1 (always), with layer 0 left out (BREP's exclude_layers).
    ("brep-llama", "llama", -1, [0]),
]


def brep_case(name, arch, n_prefix, exclude, gen, seqs, expected):
    base = load_base(arch)
    n_layers = base.config.num_hidden_layers
    inter = base.config.intermediate_size
    deltas = {}
    for i in range(n_layers):
        if exclude and i in exclude:
            continue
        k = f"model.layers.{i}.mlp.up_proj.delta_vector."
        deltas[k + "activation_scaling"] = (1.0 + 0.3 * torch.randn((1, inter), generator=gen)).bfloat16()
        deltas[k + "activation_bias"] = (0.5 * torch.randn((1, inter), generator=gen)).bfloat16()
    d = os.path.join(OUT, name, "ffn_up")
    os.makedirs(d)
    torch.save(deltas, os.path.join(d, "delta_vector.pth"))

    model = load_base(arch)
    state = {"count": 0}

    def hook(i):
        k = f"model.layers.{i}.mlp.up_proj.delta_vector."
        scale, bias = deltas[k + "activation_scaling"].float(), deltas[k + "activation_bias"].float()

        # BREP's ActivationLayer.forward: prefix 0 never; the prompt pass (more
        # than one token) or prefix -1 always; a one-token step while fewer
        # than n_prefix steps were changed since the prompt.
        def f(_mod, args, out):
            x = args[0]
            if n_prefix == 0:
                return out
            if x.shape[1] > 1 or n_prefix == -1 or state["count"] < n_prefix:
                return out * scale + bias
            return out

        return f

    layers = [i for i in range(n_layers) if not (exclude and i in exclude)]
    for i in layers:
        model.get_submodule(f"model.layers.{i}.mlp.up_proj").register_forward_hook(hook(i))
    moved = 0.0
    gens = []
    for i, s in enumerate(seqs):
        ids = torch.tensor([s])
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0].float()
            moved = max(moved, (logits - base(input_ids=ids).logits[0]).abs().max().item())
        expected[f"{name}.{i}"] = logits.contiguous()
        # Greedy decoding with a KV cache; the step counter lives on the
        # hooks (BREP counts per layer; every layer counts alike).
        with torch.no_grad():
            out = model(input_ids=ids, use_cache=True)
            past = out.past_key_values
            state["count"] = 0
            toks, lps = [], []
            last = out.logits[0, -1]
            for _ in range(8):
                t = int(last.argmax())
                lps.append(float(torch.log_softmax(last, -1)[t]))
                toks.append(t)
                out = model(input_ids=torch.tensor([[t]]), past_key_values=past, use_cache=True)
                state["count"] += 1
                past = out.past_key_values
                last = out.logits[0, -1]
        expected[f"{name}.gen.{i}"] = torch.tensor(lps, dtype=torch.float32)
        gens.append(toks)
    print(f"{name}: BREP moves the logits by up to {moved:.3f}")
    return {
        "name": name,
        "kind": "brep",
        "model": arch,
        "adapter": name,
        "n_prefix": n_prefix,
        "tokens": seqs,
        "generated": gens,
    }


LOREFT = [
    # pyreft's default: separate weights for the first and the last positions
    # (each layer listed twice: `#0` acts on the first, `#1` on the last).
    ("loreft-qwen2", "qwen2", dict(layers=[0, 1], rank=4, first=2, last=2, share=False)),
    # share_weights: one intervention per layer on both groups; layer 1 only.
    ("loreft-llama", "llama", dict(layers=[1], rank=3, first=1, last=3, share=True)),
]


def loreft_case(name, arch, kw, gen, seqs, expected):
    import pyreft

    model = load_base(arch)
    d_model = model.config.hidden_size
    layers = list(kw["layers"])
    if not kw["share"]:
        layers = layers + layers  # as pyreft's train.py does for "f+l" positions
    reps = [
        {
            "layer": l,
            "component": "block_output",
            "low_rank_dimension": kw["rank"],
            "intervention": pyreft.LoreftIntervention(
                embed_dim=d_model, low_rank_dimension=kw["rank"], dtype=torch.float32
            ),
        }
        for l in layers
    ]
    rm = pyreft.get_reft_model(model, pyreft.ReftConfig(representations=reps))
    rm.set_device("cpu")
    with torch.no_grad():
        for k, iv in rm.interventions.items():
            iv = iv[0] if isinstance(iv, (list, tuple)) else iv
            iv.learned_source.weight.copy_(torch.randn(iv.learned_source.weight.shape, generator=gen) / d_model ** 0.5)
            iv.learned_source.bias.copy_(0.5 * torch.randn(iv.learned_source.bias.shape, generator=gen))
    d = os.path.join(OUT, name)
    rm.save(d)
    n = len(layers)

    def locations(length):
        return pyreft.get_intervention_locations(
            last_position=length, first_n=kw["first"], last_n=kw["last"],
            num_interventions=n, share_weights=kw["share"], pad_mode="first",
        )

    # The reference: pyreft's own model reloaded from the saved folder.
    loaded = pyreft.ReftModel.load(d, load_base(arch))
    loaded.set_device("cpu")
    # ReftModel.load builds the interventions in bf16 (pyreft's default
    # dtype), rounding the saved float32 W and b: compute in float32 like the
    # base, with the saved values loaded again.
    for k, iv in loaded.interventions.items():
        iv = (iv[0] if isinstance(iv, (list, tuple)) else iv).float()
        sd = torch.load(os.path.join(d, f"intkey_{k}.bin"))
        iv.learned_source.load_state_dict({"weight": sd["weight"], "bias": sd["bias"]})
        assert torch.equal(iv.rotate_layer.weight.data, sd["rotate_layer"])
    base = load_base(arch)
    moved, gens = 0.0, []
    for i, s in enumerate(seqs):
        ids = torch.tensor([s])
        ul = {"sources->base": (None, [[l] for l in locations(len(s))])}
        with torch.no_grad():
            _, out = loaded({"input_ids": ids}, unit_locations=ul)
            logits = out.logits[0].float()
            moved = max(moved, (logits - base(input_ids=ids).logits[0]).abs().max().item())
            expected[f"{name}.{i}"] = logits.contiguous()
            # Generation: the prompt pass intervened (pyreft's
            # intervene_on_prompt), then plain decode steps over its cache.
            _, out = loaded({"input_ids": ids, "use_cache": True}, unit_locations=ul)
            past, last = out.past_key_values, out.logits[0, -1]
            toks, lps = [], []
            for _ in range(8):
                t = int(last.argmax())
                lps.append(float(torch.log_softmax(last, -1)[t]))
                toks.append(t)
                o = base(input_ids=torch.tensor([[t]]), past_key_values=past, use_cache=True)
                past, last = o.past_key_values, o.logits[0, -1]
        expected[f"{name}.gen.{i}"] = torch.tensor(lps, dtype=torch.float32)
        gens.append(toks)
    print(f"{name}: LoReFT moves the logits by up to {moved:.3f}")
    return {
        "name": name, "kind": "loreft", "model": arch, "adapter": name,
        "first": kw["first"], "last": kw["last"], "tokens": seqs, "generated": gens,
    }


def main():
    gen = torch.Generator().manual_seed(20261208)
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    seqs = [torch.randint(3, VOCAB, (n,), generator=gen).tolist() for n in (9, 5, 12)]
    expected, cases = {}, []
    for name, arch, kw in TOPLORA:
        cases.append(toplora_case(name, arch, kw, gen, seqs, expected))
    for name, arch, n_prefix, exclude in BREP:
        cases.append(brep_case(name, arch, n_prefix, exclude, gen, seqs, expected))
    # Prompts of at least 2 * max(first, last) tokens: shorter ones make pyreft
    # pad the locations with -1, which its datasets point at a prepended pad token.
    reft_seqs = [torch.randint(3, VOCAB, (n,), generator=gen).tolist() for n in (9, 7, 12)]
    for name, arch, kw in LOREFT:
        cases.append(loreft_case(name, arch, kw, gen, reft_seqs, expected))
    # A BREP file with layer_type "ln" (a LayerNorm after the scale and bias):
    # refused by mscr, with the file named.
    bad = {
        "model.layers.0.mlp.up_proj.delta_vector.activation_scaling": torch.ones((1, 96)).bfloat16(),
        "model.layers.0.mlp.up_proj.delta_vector.activation_ln.weight": torch.ones((96,)).bfloat16(),
    }
    os.makedirs(os.path.join(OUT, "brep-bad-ln", "ffn_up"))
    torch.save(bad, os.path.join(OUT, "brep-bad-ln", "ffn_up", "delta_vector.pth"))
    save_file(expected, os.path.join(OUT, "expected.safetensors"))
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump(
            {
                "generator": "scripts/compare-peft-unmerged.py",
                "torch": torch.__version__,
                "peft": __import__("peft").__version__,
                "transformers": __import__("transformers").__version__,
                "cases": cases,
            },
            f,
            indent=1,
        )
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(OUT) for f in fs)
    print(f"wrote {OUT} ({total / 1024:.0f} KiB)")
    if "--no-test" not in sys.argv:
        r = subprocess.run(["cargo", "test", "--test", "transform_unmerged", "--", "--nocapture"], cwd=ROOT)
        sys.exit(r.returncode)


if __name__ == "__main__":
    main()
