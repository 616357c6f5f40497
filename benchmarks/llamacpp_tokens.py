"""Reference token ids from llama.cpp's tokenizer (llama-cpp-python) on the default GGUF,
for the tokenizer-parity test (`tests/tokenizer_llamacpp.rs`).

Usage: python3 benchmarks/llamacpp_tokens.py [GGUF] [DATA_DIR] [OUT]
  GGUF      default ~/.cache/mscr/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf
  DATA_DIR  default ../shared/data (gsm8k_test.jsonl, math500_test.jsonl)
  OUT       default tests/fixtures/smollm2_llamacpp_tokens.jsonl

Each output line: {"kind", "text", "ids"} with ids = tokenize(text, add_bos=False,
special=True) (control tokens written in the text, such as <|im_start|>, become their ids,
as mscr's tokenizer always does), plus "ids_plain" (special=False) where that differs.
Chat prompts are rendered with the model's own template by llama-cpp-python's Jinja
formatter; the test also renders them with mscr's template and compares the text.
"""
import json
import os
import sys

from llama_cpp import Llama
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

HOME = os.environ.get("MSCR_HOME", os.path.expanduser("~/.cache/mscr"))
gguf = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    HOME, "models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
data = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
    os.path.dirname(__file__), "../../shared/data")
out = sys.argv[3] if len(sys.argv) > 3 else os.path.join(
    os.path.dirname(__file__), "../tests/fixtures/smollm2_llamacpp_tokens.jsonl")

llm = Llama(model_path=gguf, vocab_only=True, verbose=False)


def lines(name, n):
    with open(os.path.join(data, name), encoding="utf-8") as f:
        return [json.loads(l) for l, _ in zip(f, range(n))]


COT = "{question}\nSolve step by step and end with 'The answer is N.'"

items = []
gsm = lines("gsm8k_test.jsonl", 200)
math = lines("math500_test.jsonl", 100)
items += [("gsm8k", r["question"]) for r in gsm]
items += [("math500", r["problem"]) for r in math]
# Solutions: LaTeX, [asy] code, blank lines.
items += [("math500-solution", r["solution"]) for r in math[:10]]

# Chat prompts rendered with the model's template (its default system line included).
template = llm.metadata["tokenizer.chat_template"]
fmt = Jinja2ChatFormatter(template=template, eos_token="<|im_end|>", bos_token="<|im_start|>",
                          add_generation_prompt=True)
chats = [[{"role": "user", "content": COT.format(question=r["question"])}] for r in gsm[:10]]
chats += [[{"role": "user", "content": COT.format(question=r["problem"])}] for r in math[:5]]
chats.append([{"role": "system", "content": "You are a careful math tutor."},
              {"role": "user", "content": "What is 12 * 34?"},
              {"role": "assistant", "content": "12 * 34 = 408. The answer is 408."},
              {"role": "user", "content": "And  12 * 35 ?\n\nThanks!"}])
chat_items = [("chat", fmt(messages=msgs).prompt, msgs) for msgs in chats]

tricky = [
    "", " ", "  ", "\n", "\n\n\n", "\t", " \t \n ", "\r\n", "a\r\nb",
    "0", "7", "42", "123", "1234", "12345678901234567890", "3.14159", "-0.5", "1,234,567",
    "1e-10", "$1,000.00", "50%", "2^{10}", "3/4", "x=3", "#### 72", "The answer is 18.",
    "a  b   c    d", "multiple   spaces\tand\ttabs", "trailing space ", " leading space",
    "line one\nline two\n\nline four", "ends with newline\n", "  indented\n    more",
    "café naïve résumé", "Ünïcödé — “quotes” ‘single’ …", "e\u0301 vs é", "Straße ﬁ",
    "日本語のテキスト", "中文数学题：3加5等于几？", "Привет, мир!", "مرحبا", "👍🏽🙂 emoji 🚀",
    "zero\u200bwidth", "non\u00a0breaking", "½ ¼ ¾ × ÷ ± √ ∞ ≤ ≥ ≠ π θ",
    "$\\frac{1}{2} + \\sqrt{x^2+1}$", "\\boxed{42}", "\\[ x_{i}^{2} = \\sum_{k=1}^{n} k \\]",
    "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "$$\\int_0^\\infty e^{-x}\\,dx = 1$$",
    "f(x) = 3x^2 - 2x + 1", "don't won't it's I'M we've they'll she'd",
    "DON'T Won'T", "hello world", "Hello World", "HELLO", "hello,world!how?are:you",
    "```python\nprint('hi')\n```", "<html><body>x</body></html>", "a.b.c..d...e",
    "!!!???", "----", "____", "....", "http://example.com/a?b=c&d=e",
    "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", "<|endoftext|>",
    "text<|im_end|>more", "<|im_start|>", "<|im_start", "|im_end|>",
]
items += [("tricky", t) for t in tricky]
items = [(k, t, None) for k, t in items] + chat_items

os.makedirs(os.path.dirname(out), exist_ok=True)
with open(out, "w", encoding="utf-8") as f:
    for kind, text, messages in items:
        ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        plain = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        rec = {"kind": kind, "text": text, "ids": ids}
        if plain != ids:
            rec["ids_plain"] = plain
        if messages is not None:
            rec["messages"] = messages
        f.write(json.dumps(rec, ensure_ascii=False) + "\n")
print(f"wrote {len(items)} texts to {out}")
