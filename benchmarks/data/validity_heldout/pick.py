# Draws the held-out questions: 4 GSM8K-train questions of at most 45 words
# and 3 ASDiv-A items with index >= 300, none in the dev set (run from the
# project root; reads ../shared/data).
import json, random
dev = {(d, i) for d, i, _ in json.load(open('benchmarks/data/validity_dev/questions.json'))}
gsm = [json.loads(l) for l in open('../shared/data/gsm8k_train.jsonl')]
asdiv = [json.loads(l) for l in open('../shared/data/asdiv_a.jsonl')]
rng = random.Random(2027)
g = [(i, x['question']) for i, x in enumerate(gsm)
     if len(x['question'].split()) <= 45 and ('gsm8k-train', str(i)) not in dev]
a = [(x['ID'], (x['Body'].strip() + ' ' + x['Question'].strip())) for k, x in enumerate(asdiv)
     if k >= 300 and ('asdiv-a', x['ID']) not in dev]
out = [['gsm8k-train', str(i), q] for i, q in rng.sample(g, 4)]
out += [['asdiv-a', i, q] for i, q in rng.sample(a, 3)]
json.dump(out, open('benchmarks/data/validity_heldout/questions.json', 'w'), indent=0)
for o in out:
    print(o)
