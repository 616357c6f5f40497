"""Join the MATH500 part of the validity dev set (issue 20): the random draw
`math500_sample.jsonl` (made by `sample_math500.py`), its labels
`math500_labels.txt` and the substitutions a person would make
`math500_known.txt` into `benchmarks/data/perturbation_validity_dev_math500.jsonl`.
Run from the project root."""
import json, re
D = 'benchmarks/data/validity_dev/'
qs = json.load(open(D + 'math500_questions.json'))
labels = {}
for l in open(D + 'math500_labels.txt'):
    if l.startswith('#') or not l.strip(): continue
    i, lab, reason = l.rstrip('\n').split(' ', 2)
    labels[i] = (lab == 'v', reason)
out = []
for l in open(D + 'math500_sample.jsonl'):
    it = json.loads(l)
    v, r = labels[it['id']]
    out.append(dict(id=it['id'], dataset=it['dataset'], item_id=str(it['item_id']), question=it['question'],
                    start=it['start'], original=it['original'], candidate=it['candidate'],
                    sources=it['sources'], perturbed=it['perturbed'], valid=v, reason=r))
k = {}
for l in open(D + 'math500_known.txt'):
    if l.startswith('#') or not l.strip(): continue
    qi, word, occ, cand, lab, reason = l.rstrip('\n').split('|')
    qi, occ = int(qi), int(occ)
    ds, iid, q = qs[qi]
    ms = [m for m in re.finditer(r'(?<![A-Za-z])' + re.escape(word) + r'(?![A-Za-z])', q)]
    m = ms[occ]
    pert = q[:m.start()] + cand + q[m.end():]
    n = k.get(qi, 0); k[qi] = n + 1
    # Offsets are bytes, as `mscr candidates --json` gives them.
    out.append(dict(id=f'm{qi:02d}-k{n:02d}', dataset=ds, item_id=str(iid), question=q,
                    start=len(q[:m.start()].encode()), original=word, candidate=cand, sources=['known'],
                    perturbed=pert, valid=(lab == 'v'), reason=reason))
with open('benchmarks/data/perturbation_validity_dev_math500.jsonl', 'w') as f:
    for o in out:
        f.write(json.dumps(o, ensure_ascii=False) + '\n')
print(len(out), 'candidates,', sum(o['valid'] for o in out), 'valid,', len(qs), 'problems')
