import json, random, subprocess, sys
qs = json.load(open('benchmarks/data/validity_heldout/questions.json'))
rng = random.Random(2027)
mscr = 'target/debug/mscr'  # run from the project root
out = []
pools = {}
for qi, (ds, iid, q) in enumerate(qs):
    r = subprocess.run([mscr, 'candidates', '--json', '--text', q, '--model', 'smollm2-135m-instruct',
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
        p['id'] = f'h{qi:02d}-{k:02d}'
    out += picked
    print(qi, len(pool), {k: len(v) for k, v in by.items()}, file=sys.stderr)
json.dump(pools, open('/tmp/heldout_pools.json', 'w'))
with open('benchmarks/data/validity_heldout/sample.jsonl', 'w') as f:
    for p in out:
        f.write(json.dumps(p) + '\n')
print(len(out), file=sys.stderr)
