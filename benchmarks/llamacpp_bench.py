"""llama.cpp (llama-cpp-python) on the same GGUF as `cargo bench --bench decode`: greedy decode
tokens/s at batch 1 and batch 16 (16 sequences in one llama_decode per step), prompt tokens/s
(300 tokens), time to first token and peak RSS, printed as one JSON line.

Usage: llamacpp_bench.py GGUF THREADS TOKENS

llama.cpp's "extra buffer types" (the AMX and repacked-weight CPU paths) are switched off: on
this machine kind its AMX matmul dies with a general protection fault (the VM does not grant the
AMX tile state). For Q4_1 weights the repack path does not apply anyway."""
import json
import resource
import sys
import time

import llama_cpp
import llama_cpp.llama as llama_module
import numpy as np
from llama_cpp import Llama
from llama_cpp import _internals

BATCH = 16

_model_defaults = llama_cpp.llama_model_default_params
_context_defaults = llama_cpp.llama_context_default_params


def model_params():
    p = _model_defaults()
    p.use_extra_bufts = False
    return p


def context_params():
    p = _context_defaults()
    p.n_seq_max = BATCH  # room for the batch-16 run; one unified KV cache
    p.kv_unified = True
    return p


llama_module.llama_cpp.llama_model_default_params = model_params
llama_module.llama_cpp.llama_context_default_params = context_params

path, threads, tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
llm = Llama(model_path=path, n_threads=threads, n_threads_batch=threads, n_ctx=4096,
            n_batch=1024, verbose=False)
ctx = llm._ctx
n_vocab = llm.n_vocab()
text = ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
        "in May. How many clips did Natalia sell altogether in April and May?")
short = llm.tokenize(text.encode(), add_bos=True)


def argmax_at(i):
    logits = np.ctypeslib.as_array(ctx.get_logits_ith(i), shape=(n_vocab,))
    return int(logits.argmax())


def run(prompts, n):
    """Prefill every prompt (one sequence each) in one batch, then n greedy steps of all rows."""
    ctx.kv_cache_clear()
    b = len(prompts)
    batch = _internals.LlamaBatch(n_tokens=max(sum(map(len, prompts)), b), embd=0, n_seq_max=b,
                                  verbose=False)
    t0 = time.perf_counter()
    for s, p in enumerate(prompts):
        batch.add_sequence(p, s, False)
    ctx.decode(batch)
    last, ends = 0, []
    for p in prompts:
        last += len(p)
        ends.append(last - 1)
    nxt = [argmax_at(i) for i in ends]
    t1 = time.perf_counter()
    lens = [len(p) for p in prompts]
    for _ in range(n):
        batch.reset()
        bb = batch.batch
        for s in range(b):
            bb.token[s] = nxt[s]
            bb.pos[s] = lens[s]
            bb.seq_id[s][0] = s
            bb.n_seq_id[s] = 1
            bb.logits[s] = True
            lens[s] += 1
        bb.n_tokens = b
        ctx.decode(batch)
        nxt = [argmax_at(i) for i in range(b)]
    return t1 - t0, time.perf_counter() - t1


run([short], 4)  # warm-up
ttft, _ = run([short], 0)
_, d1 = run([short], tokens)
_, d16 = run([short] * BATCH, tokens)
long = (short * 20)[:300]
p300, _ = run([long], 0)
print(json.dumps({
    "mode": "llama.cpp",
    "decode_tokens_per_s": tokens / d1,
    "decode16_tokens_per_s": BATCH * tokens / d16,
    "prompt_tokens_per_s": 300 / p300,
    "ttft_ms": ttft * 1000,
    "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
