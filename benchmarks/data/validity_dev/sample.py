"""Draw candidates for a validity set: `mscr candidates --json` with `wide.toml` on each question,
then per question a random draw of 8 WordNet, 5 embedding-only and 5 MLM-only candidates.
Run from the project root. Defaults make the GSM8K dev set; the held-out and MATH500 sets pass
their own files, seed and id prefix (see their READMEs)."""
import argparse, json, random, subprocess, sys
ap = argparse.ArgumentParser()
ap.add_argument('--questions', default='benchmarks/data/validity_dev/questions.json')
ap.add_argument('--seed', type=int, default=2026)
ap.add_argument('--prefix', default='q')
ap.add_argument('--out', default='/tmp/validity_sample.jsonl')
ap.add_argument('--pools', default='/tmp/validity_pools.json')
ap.add_argument('--mscr', default='target/debug/mscr')
a = ap.parse_args()
qs = json.load(open(a.questions))
rng = random.Random(a.seed)
out = []
pools = {}
for qi, (ds, iid, q) in enumerate(qs):
    r = subprocess.run([a.mscr, 'candidates', '--json', '--text', q, '--model', 'smollm2-135m-instruct',
                        '--config', 'benchmarks/data/validity_dev/wide.toml'], capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stderr, file=sys.stderr); sys.exit(1)
    rep = json.loads(r.stdout)
    pool = []
    for w in rep['words']:
        for c in w['candidates']:
            if not c['passed']:
                continue
            pool.append(dict(dataset=ds, item_id=iid, question=q, start=w['start'], original=w['text'],
                             candidate=c['text'], sources=c['sources'], perturbed=c['perturbed']))
    pools[qi] = pool
    by = {'wordnet': [p for p in pool if 'wordnet' in p['sources']],
          'embedding': [p for p in pool if p['sources'] == ['embedding']],
          'mlm': [p for p in pool if p['sources'] == ['mlm']]}
    picked = []
    for src, n in [('wordnet', 8), ('embedding', 5), ('mlm', 5)]:
        cand = [p for p in by[src] if p not in picked]
        picked += rng.sample(cand, min(n, len(cand)))
    for k, p in enumerate(picked):
        p['id'] = f'{a.prefix}{qi:02d}-{k:02d}'
    out += picked
    print(qi, len(pool), {k: len(v) for k, v in by.items()}, file=sys.stderr)
json.dump(pools, open(a.pools, 'w'))
with open(a.out, 'w') as f:
    for p in out:
        f.write(json.dumps(p) + '\n')
print(len(out), file=sys.stderr)
