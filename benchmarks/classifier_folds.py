import sys, time, yaml, numpy as np
from pathlib import Path
sys.path.insert(0, '/work/main')
from nlu.segmenter import segment
from nlu.textnorm import strip_diacritics, has_diacritics
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from scipy.sparse import hstack

def load(d):
    out = {}
    for p in sorted(Path(d).glob('*.yml')):
        data = yaml.safe_load(p.read_text())
        for block in data['nlu']:
            items = [l[2:].strip() for l in block['examples'].splitlines() if l.strip().startswith('- ')]
            out.setdefault(block['intent'], []).extend(items)
    return out

def augment(ex):
    seen = {e.lower() for v in ex.values() for e in v}
    res = {k: list(v) for k, v in ex.items()}
    for k, v in ex.items():
        for e in v:
            p = strip_diacritics(e)
            if has_diacritics(e) and p not in seen:
                seen.add(p); res[k].append(p)
    return res

cache = {}
def lem(t):
    if t not in cache:
        cache[t] = " ".join(s.lemma for s in segment(t)) or t
    return cache[t]

train = load('/work/main/nlu/data/train'); test = load('/work/main/nlu/data/test')
mode = sys.argv[1]
Cs = [float(c) for c in sys.argv[2:]]
def pairs(d): return [(t, k) for k, v in d.items() for t in v]
if mode == 'fold':
    tr, va = {}, []
    for k, v in train.items():
        for i, t in enumerate(v):
            (va.append((t, k)) if i % 5 == 0 else tr.setdefault(k, []).append(t))
    tr_pairs = pairs(augment(tr)); ev = va
else:
    tr_pairs = pairs(augment(train)); ev = pairs(test)
t0 = time.time()
Xtr = [lem(t) for t, _ in tr_pairs]; ytr = [k for _, k in tr_pairs]
Xev = [lem(t) for t, _ in ev]; yev = [k for _, k in ev]
print('segmented', time.time() - t0, len(Xtr), len(Xev), flush=True)
import os
W = int(os.environ.get('WMAX', 2)); CMIN = int(os.environ.get('CMIN', 2)); CMAX = int(os.environ.get('CMAX', 4))
w = CountVectorizer(analyzer='word', ngram_range=(1, W), token_pattern=r'(?u)\S+', lowercase=True)
c = CountVectorizer(analyzer='char_wb', ngram_range=(CMIN, CMAX))
print('variant', W, CMIN, CMAX)
A = hstack([w.fit_transform(Xtr), c.fit_transform(Xtr)]).tocsr()
B = hstack([w.transform(Xev), c.transform(Xev)]).tocsr()
import os
if os.environ.get('TFIDF'):
    from sklearn.feature_extraction.text import TfidfTransformer
    tf = TfidfTransformer(sublinear_tf=True)
    A = tf.fit_transform(A); B = tf.transform(B)
print('features', A.shape, flush=True)
for C in Cs:
    t0 = time.time()
    clf = LogisticRegression(C=C, max_iter=300, class_weight='balanced', solver='lbfgs', random_state=42)
    clf.fit(A, ytr)
    pred = clf.predict(B); proba = clf.predict_proba(B).max(axis=1)
    acc = np.mean([p == y for p, y in zip(pred, yev)])
    right = proba[[p == y for p, y in zip(pred, yev)]]; wrong = proba[[p != y for p, y in zip(pred, yev)]]
    print(f'{mode} C={C}: acc={acc:.3f} fit={time.time()-t0:.0f}s conf right median={np.median(right):.2f} wrong median={np.median(wrong) if len(wrong) else 0:.2f} wrong>=0.5: {np.mean(wrong>=0.5) if len(wrong) else 0:.2f}', flush=True)
    if os.environ.get('THRESH'):
        ok = np.array([p == y for p, y in zip(pred, yev)])
        oos = np.array([y == 'out_of_scope' for y in yev])
        for t in [0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7]:
            hi = proba >= t
            law = ~oos
            print(f'  t={t:.2f}: law right&sure {np.mean(ok[law] & hi[law]):.3f}  law wrong&sure {np.mean(~ok[law] & hi[law]):.3f}  law unsure {np.mean(~hi[law]):.3f}  | oos predicted-intent&sure {np.mean((~ok[oos]) & hi[oos]):.3f}', flush=True)
