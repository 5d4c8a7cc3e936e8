"""The Rasa tokenizer component itself, run in the NLU environment (Python 3.10, Rasa 3.6)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from nlu.build import PROJECT_ROOT, nlu_env
from tests.unit.test_segmenter import SEGMENT_TABLE, _hostile_lines

PROBE = Path(__file__).parents[1] / "nlu_component_probe.py"
NLU_PYTHON = PROJECT_ROOT / ".venv-nlu" / "bin" / "python"


def _tokenize(texts: list[str], config: dict[str, object] | None = None) -> list[list[list]]:
    stdin = "".join(json.dumps(t) + "\n" for t in texts)
    result = subprocess.run(
        [str(NLU_PYTHON), str(PROBE), json.dumps(config or {})],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=nlu_env(),
        cwd=PROJECT_ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture(scope="module")
def table_output() -> list[list[list]]:
    return _tokenize([text for text, _, _ in SEGMENT_TABLE])


def test_component_matches_offset_table(table_output):
    for (text, tokens, offsets), got in zip(SEGMENT_TABLE, table_output, strict=True):
        if not tokens:  # Rasa's featurizers need one token, as its own tokenizers give
            assert got == [[text, 0, len(text), text]]
            continue
        assert [t[0] for t in got] == tokens
        assert [(t[1], t[2]) for t in got] == offsets


def test_component_lemmas_unify_spellings():
    accented, plain = _tokenize(["Hợp tác xã có tư cách pháp nhân", "htx co tu cach phap nhan"])
    assert accented[0][3] == plain[0][3] == "hop_tac_xa"


def test_component_survives_hostile_strings():
    lines = _hostile_lines()
    for config in ({}, {"segment_plain": True}):
        outputs = _tokenize(lines, config)
        assert len(outputs) == len(lines)
        for text, tokens in zip(lines, outputs, strict=True):
            assert tokens, text
            for token_text, start, end, _lemma in tokens:
                assert text[start:end] == token_text
