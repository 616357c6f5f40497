#!/usr/bin/env python3
"""Compare mscr's answer checker with Hugging Face math-verify on MATH500 golds.

Opt-in quality check; unit tests never need Python. How to run:

    python3 -m venv /tmp/mv && /tmp/mv/bin/pip install math-verify
    cargo build                     # builds target/debug/mscr
    /tmp/mv/bin/python scripts/compare-math-verify.py [path/to/math500_test.jsonl]
    /tmp/mv/bin/python scripts/compare-math-verify.py --probe [benchmarks/data/answer_probe.jsonl]

The data path defaults to $MSCR_SHARED_DATA/math500_test.jsonl, else
../shared/data/math500_test.jsonl. $MSCR_BIN overrides the mscr binary.

For every gold answer it builds equivalent rewritings (\\dfrac, spacing,
\\left/\\right, `x =`, a/b, decimals, reordered lists, units, \\boxed in prose) and
wrong answers (another item's gold, off-by-one, swapped fraction, reordered
tuple), judges each pair with both checkers and prints the agreement rate, each
checker's accuracy against the construction label, and every disagreement
grouped by rewriting kind.

With --probe it judges the probe set of real model outputs instead (each line
labelled by a reader: `answer`, `correct`), runs both checkers on every output
against its gold, and prints the agreement with math-verify, each checker's
agreement with the reader, and every disagreement, classified by the output's
format (`format`) and by which side the reader takes.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from fractions import Fraction


def data_path():
    if len(sys.argv) > 1:
        return sys.argv[1]
    base = os.environ.get("MSCR_SHARED_DATA") or os.path.join(
        os.path.dirname(__file__), "..", "..", "shared", "data")
    return os.path.join(base, "math500_test.jsonl")


# math-verify's timeouts are wall-clock seconds: generous, so that a loaded machine does not
# turn a slow parse into a verdict.
T = 60

INT = re.compile(r"^-?\d+$")
FRAC = re.compile(r"^(-?)\\frac\{(\d+)\}\{(\d+)\}$")


def rewrites(g):
    """(kind, prediction text, expected-equivalent) pairs for gold g."""
    out = []
    box = lambda s: f"So the final answer is $\\boxed{{{s}}}$."
    out.append(("boxed", box(g), True))
    if "\\frac" in g:
        out.append(("dfrac", box(g.replace("\\frac", "\\dfrac")), True))
    out.append(("no-spaces", box(g.replace(" ", "")), True))
    if "\\left" in g:
        out.append(("no-left-right", box(g.replace("\\left", "").replace("\\right", "")), True))
    if INT.match(g):
        n = int(g)
        out.append(("int-as-decimal", box(f"{n}.0"), True))
        out.append(("answer-is", f"Adding up, the answer is {n}.", True))
        out.append(("x-equals", box(f"x = {n}"), True))
        out.append(("wrong-off-by-one", box(str(n + 1)), False))
        if abs(n) >= 1000:
            out.append(("thousands-sep", box(f"{n:,}".replace(",", "{,}")), True))
    m = FRAC.match(g)
    if m:
        sign, a, b = m.groups()
        out.append(("slash-fraction", box(f"{sign}{a}/{b}"), True))
        val = Fraction(int(a), int(b)) * (-1 if sign else 1)
        dec = f"{float(val):.6f}".rstrip("0").rstrip(".")
        if len(dec) < 9:
            out.append(("decimal", box(dec), True))
        if int(a) > int(b) and int(a) % int(b):
            q, r = divmod(int(a), int(b))
            out.append(("mixed-number", box(f"{sign}{q}\\frac{{{r}}}{{{b}}}"), True))
        if a != b:
            out.append(("wrong-swapped-fraction", box(f"{sign}\\frac{{{b}}}{{{a}}}"), False))
    if "," in g and "\\!" not in g and "\\in" not in g and not g.startswith(("(", "[", "\\{", "\\left")):
        parts = [p.strip() for p in g.split(",")]
        thousands = all(re.match(r"^\d{3}$", p) for p in parts[1:])
        if len(parts) > 1 and len(set(parts)) == len(parts) and not thousands:
            out.append(("reordered-list", box(", ".join(reversed(parts))), True))
    t = re.match(r"^\\left\(\s*(.+?)\s*,\s*(.+?)\s*\\right\)$", g) or re.match(r"^\((\S+?),\s*(\S+?)\)$", g)
    if t and t.group(1) != t.group(2):
        out.append(("wrong-swapped-tuple", box(f"({t.group(2)}, {t.group(1)})"), False))
    pm = re.fullmatch(r"(\d+(?:\.\d+)?)\\%", g)
    if pm:
        out.append(("percent-as-fraction", box(f"{float(Fraction(pm.group(1)) / 100):g}"), True))
    if INT.match(g):
        n = int(g)
        out.append(("units-text", box(f"{g}\\text{{ cm}}"), True))
        out.append(("degrees", box(f"{g}^\\circ"), True))
        out.append(("product", box(f"{n * 2} \\cdot \\frac{{1}}{{2}}"), True))
        if n != 0:
            out.append(("wrong-sign", box(str(-n)), False))
    if m:
        sign, a, b = m.groups()
        val = Fraction(int(a), int(b)) * (-1 if sign else 1)
        if val.denominator not in (1, 2, 4, 5, 8, 10, 20, 25, 50, 100):
            out.append(("wrong-rounded-decimal", box(f"{float(val):.2f}"), False))
            # Within mscr's relative tolerance 1e-4 (the rule), outside
            # math-verify's: a known, deliberate difference.
            if abs(float(val)) >= 0.1:
                out.append(("decimal-5-significant", box(f"{float(val):.5g}"), True))
    sq = re.fullmatch(r"(\d*)\\sqrt\{(\d+)\}", g)
    if sq:
        c, r = sq.groups()
        out.append(("sqrt-as-power", box(f"{c or ''}{'*' if c else ''}{r}^{{1/2}}"), True))
        out.append(("sqrt-squared-inside", box(f"\\sqrt{{{int(c or 1) ** 2 * int(r)}}}"), True))
    iv = re.fullmatch(r"([\[(])(.+),(.+)([\])])", g.replace(" ", ""))
    if iv and "\\cup" not in g:
        o, a, b, c = iv.groups()
        flip = {"[": "(", "(": "["}[o]
        out.append(("wrong-interval-bracket", box(f"{flip}{a},{b}{c}"), False))
    if g.startswith("\\text{") and g.endswith("}") and g.count("{") == 1:
        out.append(("text-unwrapped", box(g[6:-1]), True))
    if "\\pi" in g and not any(c in g for c in ",(["):
        out.append(("pi-times", box(g.replace("\\pi", "\\pi \\cdot 1")), True))
    return out


def judge_mscr(pairs, style):
    """mscr's verdicts on (gold, prediction) pairs, through `mscr answers judge`."""
    binary = os.environ.get("MSCR_BIN") or os.path.join(os.path.dirname(__file__), "..", "target", "debug", "mscr")
    with tempfile.TemporaryDirectory() as d:
        inp, outp = os.path.join(d, "in.jsonl"), os.path.join(d, "out.jsonl")
        with open(inp, "w", encoding="utf-8") as f:
            for g, pred in pairs:
                f.write(json.dumps({"gold": g, "prediction": pred}) + "\n")
        subprocess.run([binary, "answers", "judge", "--dataset", style, "--input", inp, "--output", outp], check=True)
        return [json.loads(l) for l in open(outp, encoding="utf-8")]


def probe(path):
    import logging
    from math_verify import parse, verify
    # math-verify logs every parse it gives up on, with the whole output.
    logging.disable(logging.WARNING)
    rows = [json.loads(l) for l in open(path, encoding="utf-8") if l.strip()]
    ours = [None] * len(rows)
    for ds in sorted({r["dataset"] for r in rows}):
        idx = [i for i, r in enumerate(rows) if r["dataset"] == ds]
        for i, v in zip(idx, judge_mscr([(rows[i]["gold"], rows[i]["output"]) for i in idx], ds)):
            ours[i] = v
    mv = []
    for r in rows:
        # MATH500 golds are LaTeX; GSM8K-style golds are plain numbers.
        gold = f"${r['gold']}$" if r["dataset"] == "math500" else r["gold"]
        try:
            mv.append(bool(verify(parse(gold, parsing_timeout=T), parse(r["output"], parsing_timeout=T), timeout_seconds=T)))
        except Exception:
            mv.append(False)
    n = len(rows)
    label = [r["correct"] for r in rows]
    mine = [o["equivalent"] for o in ours]
    print(f"probe set: {n} outputs; {dict(Counter(r['dataset'] for r in rows))}")
    print(f"agreement mscr / math-verify: {sum(a == b for a, b in zip(mine, mv))}/{n}")
    print(f"agreement with the reader: mscr {sum(a == b for a, b in zip(mine, label))}/{n}, "
          f"math-verify {sum(a == b for a, b in zip(mv, label))}/{n}")
    for ds in sorted({r["dataset"] for r in rows}):
        idx = [i for i, r in enumerate(rows) if r["dataset"] == ds]
        print(f"  {ds}: {len(idx)} outputs, reader says {sum(label[i] for i in idx)} correct; "
              f"mscr agrees on {sum(mine[i] == label[i] for i in idx)}, "
              f"math-verify on {sum(mv[i] == label[i] for i in idx)}")
    groups = defaultdict(list)
    for r, o, m, l in zip(rows, ours, mv, label):
        if o["equivalent"] != m:
            side = "mscr" if o["equivalent"] == l else "math-verify" if m == l else "neither"
            groups[(r.get("format", "?"), side)].append((r, o, m))
    print(f"\ndisagreements: {sum(len(v) for v in groups.values())}")
    for (fmt, side), items in sorted(groups.items()):
        print(f"\n== format {fmt}, reader sides with {side}: {len(items)}")
        for r, o, m in items:
            print(f"  {r['dataset']} {r['id']} gold={r['gold']!r} answer={r.get('answer')!r} "
                  f"mscr extracted={o.get('extracted')!r} -> {o['equivalent']}, math-verify -> {m}"
                  + (f"  [{r['note']}]" if r.get("note") else ""))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--probe":
        default = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "data", "answer_probe.jsonl")
        return probe(sys.argv[2] if len(sys.argv) > 2 else default)
    try:
        from math_verify import parse, verify
    except ImportError:
        sys.exit("math-verify is not installed: pip install math-verify")
    rows = [json.loads(l) for l in open(data_path(), encoding="utf-8") if l.strip()]
    golds = [r["answer"] for r in rows]
    pairs = []
    for k, g in enumerate(golds):
        # The full reference solution (a long output with \\boxed{} inside).
        pairs.append(("reference-solution", g, rows[k]["solution"], True))
        for kind, pred, label in rewrites(g):
            pairs.append((kind, g, pred, label))
        other = golds[(k + 7) % len(golds)]
        if other.replace(" ", "") == g.replace(" ", ""):
            continue
        pairs.append(("wrong-other-gold", g, f"The answer is $\\boxed{{{other}}}$.", False))

    # math-verify: gold parsed as LaTeX ($...$), prediction as a full output.
    mv = []
    for _, g, pred, _ in pairs:
        try:
            mv.append(bool(verify(parse(f"${g}$", parsing_timeout=T), parse(pred, parsing_timeout=T), timeout_seconds=T)))
        except Exception:
            mv.append(False)

    ours = [o["equivalent"] for o in judge_mscr([(g, pred) for _, g, pred, _ in pairs], "math500")]

    n = len(pairs)
    agree = sum(a == b for a, b in zip(mv, ours))
    print(f"pairs: {n} from {len(golds)} MATH500 golds; kinds: {dict(Counter(p[0] for p in pairs))}")
    print(f"agreement: {agree}/{n} = {100 * agree / n:.2f}%")
    print(f"vs construction label: mscr {sum(o == p[3] for o, p in zip(ours, pairs))}/{n}, "
          f"math-verify {sum(m == p[3] for m, p in zip(mv, pairs))}/{n}")
    by_kind = defaultdict(list)
    for (kind, g, pred, label), m, o in zip(pairs, mv, ours):
        if m != o:
            by_kind[kind].append((g, pred, label, m, o))
    both = [(p, m) for p, m, o in zip(pairs, mv, ours) if m == o and o != p[3]]
    if both:
        print(f"\n== both checkers differ from the construction label: {len(both)}")
        for (kind, g, pred, label), m in both:
            print(f"  [{kind}] gold={g!r} pred={pred!r} label={label} both={m}")
    for kind, rows in sorted(by_kind.items()):
        print(f"\n== {kind}: {len(rows)} disagreements")
        for g, pred, label, m, o in rows:
            right = "mscr" if o == label else "math-verify"
            print(f"  gold={g!r} pred={pred!r} label={label} math-verify={m} mscr={o} -> {right} right")


if __name__ == "__main__":
    main()
