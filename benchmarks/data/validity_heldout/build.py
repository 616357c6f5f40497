import json, re
qs = json.load(open('benchmarks/data/validity_heldout/questions.json'))
labels = {}
for l in open('benchmarks/data/validity_heldout/labels.txt'):
    if l.startswith('#') or not l.strip(): continue
    i, lab, reason = l.rstrip('\n').split(' ', 2)
    labels[i] = (lab == 'v', reason)
out = []
for l in open('benchmarks/data/validity_heldout/sample.jsonl'):
    it = json.loads(l)
    v, r = labels[it['id']]
    out.append(dict(id=it['id'], dataset=it['dataset'], item_id=it['item_id'], question=it['question'],
                    start=it['start'], original=it['original'], candidate=it['candidate'],
                    sources=it['sources'], perturbed=it['perturbed'], valid=v, reason=r))
k = {}
for l in open('benchmarks/data/validity_heldout/known.txt'):
    if l.startswith('#') or not l.strip(): continue
    qi, word, occ, cand, lab, reason = l.rstrip('\n').split('|')
    qi, occ = int(qi), int(occ)
    ds, iid, q = qs[qi]
    ms = [m for m in re.finditer(r'(?<![A-Za-z])' + re.escape(word) + r'(?![A-Za-z])', q)]
    m = ms[occ]
    start = m.start()  # python str index = char offset
    if word[0].isupper(): cand = cand[0].upper() + cand[1:]
    pert = q[:m.start()] + cand + q[m.end():]
    if any(o['start'] == start and o['question'] == q and o['candidate'] == cand for o in out):
        continue  # already drawn at random: counted once
    n = k.get(qi, 0); k[qi] = n + 1
    out.append(dict(id=f'h{qi:02d}-k{n:02d}', dataset=ds, item_id=iid, question=q, start=start,
                    original=word, candidate=cand, sources=['known'], perturbed=pert,
                    valid=(lab == 'v'), reason=reason))
with open('benchmarks/data/perturbation_validity_heldout.jsonl', 'w') as f:
    for o in out:
        f.write(json.dumps(o, ensure_ascii=False) + '\n')
print(len(out), sum(o['valid'] for o in out), len(qs))
