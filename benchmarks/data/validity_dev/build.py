"""Join a validity set: the random draw (made by `sample.py`), its labels and the substitutions a
person would make into one JSONL. Run from the project root. Defaults build the GSM8K dev set;
the held-out and MATH500 sets pass their own files (see their READMEs):

  python3 benchmarks/data/validity_dev/build.py --dir benchmarks/data/validity_heldout \\
      --sample benchmarks/data/validity_heldout/sample.jsonl --prefix h --dedupe \\
      --out benchmarks/data/perturbation_validity_heldout.jsonl
  python3 benchmarks/data/validity_dev/build.py --dir benchmarks/data/validity_dev --stem math500_ \\
      --sample benchmarks/data/validity_dev/math500_sample.jsonl --prefix m --byte-offsets \\
      --out benchmarks/data/perturbation_validity_dev_math500.jsonl
"""
import argparse, json, re
ap = argparse.ArgumentParser()
ap.add_argument('--dir', default='benchmarks/data/validity_dev')
ap.add_argument('--stem', default='', help='prefix of questions.json, labels.txt, known.txt')
ap.add_argument('--sample', default='/tmp/validity_sample.jsonl')
ap.add_argument('--prefix', default='q', help='id prefix of the known substitutions')
ap.add_argument('--dedupe', action='store_true', help='a known substitution already drawn counts once')
ap.add_argument('--byte-offsets', action='store_true', help='`start` in bytes, as mscr gives it')
ap.add_argument('--out', default='benchmarks/data/perturbation_validity_dev.jsonl')
a = ap.parse_args()
D = f'{a.dir}/{a.stem}'
qs = json.load(open(D + 'questions.json'))
labels = {}
for l in open(D + 'labels.txt'):
    if l.startswith('#') or not l.strip(): continue
    i, lab, reason = l.rstrip('\n').split(' ', 2)
    labels[i] = (lab == 'v', reason)
out = []
for l in open(a.sample):
    it = json.loads(l)
    v, r = labels[it['id']]
    out.append(dict(id=it['id'], dataset=it['dataset'], item_id=str(it['item_id']), question=it['question'],
                    start=it['start'], original=it['original'], candidate=it['candidate'],
                    sources=it['sources'], perturbed=it['perturbed'], valid=v, reason=r))
k = {}
for l in open(D + 'known.txt'):
    if l.startswith('#') or not l.strip(): continue
    qi, word, occ, cand, lab, reason = l.rstrip('\n').split('|')
    qi, occ = int(qi), int(occ)
    ds, iid, q = qs[qi]
    m = [m for m in re.finditer(r'(?<![A-Za-z])' + re.escape(word) + r'(?![A-Za-z])', q)][occ]
    start = len(q[:m.start()].encode()) if a.byte_offsets else m.start()
    if word[0].isupper(): cand = cand[0].upper() + cand[1:]
    pert = q[:m.start()] + cand + q[m.end():]
    if a.dedupe and any(o['start'] == start and o['question'] == q and o['candidate'] == cand for o in out):
        continue
    n = k.get(qi, 0); k[qi] = n + 1
    out.append(dict(id=f'{a.prefix}{qi:02d}-k{n:02d}', dataset=ds, item_id=str(iid), question=q, start=start,
                    original=word, candidate=cand, sources=['known'], perturbed=pert,
                    valid=(lab == 'v'), reason=reason))
with open(a.out, 'w') as f:
    for o in out:
        f.write(json.dumps(o, ensure_ascii=False) + '\n')
print(len(out), 'candidates,', sum(o['valid'] for o in out), 'valid,', len(qs), 'questions')
