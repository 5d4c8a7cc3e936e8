"""The Rasa classifier component's fast parse, run in the NLU environment (Python 3.10)."""

from __future__ import annotations

import json
import subprocess

from nlu.build import PROJECT_ROOT, nlu_env
from tests.unit.test_tokenizer_component import NLU_PYTHON

# Fits the component's pipeline on random sparse rows, then compares the
# probabilities before and after the weights are stored column-major.
SCRIPT = """
import json
import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from nlu.classifier import _fast_predict

rng = np.random.default_rng(7)
X = sp.random(300, 2000, density=0.01, format="csr", random_state=7)
y = rng.integers(0, 12, size=300)
pipeline = Pipeline([("tfidf", TfidfTransformer(sublinear_tf=True)),
                     ("logreg", LogisticRegression(C=30.0, max_iter=300))]).fit(X, y)
rows = sp.random(5, 2000, density=0.02, format="csr", random_state=8)
before = pipeline.predict_proba(rows)
column_major = pipeline.named_steps["logreg"].coef_.flags["F_CONTIGUOUS"]
_fast_predict(pipeline)
after = pipeline.predict_proba(rows)
unfitted = _fast_predict(Pipeline([("logreg", LogisticRegression())]))
print(json.dumps({
    "column_major_before": bool(column_major),
    "column_major_after": bool(pipeline.named_steps["logreg"].coef_.flags["F_CONTIGUOUS"]),
    "max_difference": float(np.abs(after - before).max()),
    "unfitted_untouched": not hasattr(unfitted.named_steps["logreg"], "coef_"),
}))
"""


def test_column_major_weights_give_the_same_probabilities():
    result = subprocess.run(
        [str(NLU_PYTHON), "-c", SCRIPT],
        capture_output=True,
        text=True,
        env=nlu_env(),
        cwd=PROJECT_ROOT,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert not found["column_major_before"] and found["column_major_after"]
    assert found["max_difference"] < 1e-12
    assert found["unfitted_untouched"]
