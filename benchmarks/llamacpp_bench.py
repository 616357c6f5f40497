"""llama.cpp (llama-cpp-python) on the same GGUF: decode tokens/s at batch 1 and
prompt tokens/s, printed as JSON lines. Usage: llamacpp_bench.py GGUF THREADS TOKENS"""
import json
import sys
import time

from llama_cpp import Llama

path, threads, tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
llm = Llama(model_path=path, n_threads=threads, n_threads_batch=threads, n_ctx=1024, verbose=False)
text = ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
        "in May. How many clips did Natalia sell altogether in April and May?")
short = llm.tokenize(text.encode(), add_bos=True)

def run(prompt, n):
    llm.reset()
    t0 = time.perf_counter()
    llm.eval(prompt)
    t1 = time.perf_counter()
    for _ in range(n):
        tok = llm.sample(temp=0.0)
        llm.eval([tok])
    return t1 - t0, time.perf_counter() - t1

run(short, 4)  # warm-up
prefill, decode = run(short, tokens)
long = (short * 20)[:300]
p300, _ = run(long, 0)
print(json.dumps({"mode": "llama.cpp", "decode_tokens_per_s": tokens / decode,
                  "prompt_tokens_per_s": 300 / p300, "ttft_ms": prefill * 1000}))
