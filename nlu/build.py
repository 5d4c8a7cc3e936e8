"""Model builds: training data preparation, fingerprints and ``rasa train nlu`` runs.

Runs in the application's environment and drives Rasa through its command
line in the NLU environment (``.venv-nlu``), so the two never share imports.
A model is named after a fingerprint of everything that shapes it (pipeline,
training data, tokenizer code), which is how ``--if-stale`` knows to skip.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from nlu.reviewed import examples_hash, load_reviewed, same_question
from nlu.textnorm import has_diacritics, strip_diacritics

__all__ = [
    "PROJECT_ROOT",
    "REVIEWED_PATH",
    "TEST_DIR",
    "TRAIN_DIR",
    "NLUBuildError",
    "TrainResult",
    "TrainingSet",
    "current_model",
    "fingerprint",
    "load_examples",
    "nlu_env",
    "rasa_executable",
    "train_model",
    "training_set",
    "write_training_data",
]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TRAIN_DIR = PROJECT_ROOT / "nlu" / "data" / "train"
TEST_DIR = PROJECT_ROOT / "nlu" / "data" / "test"
CONFIG_PATH = PROJECT_ROOT / "config.yml"
_SHAPING_CODE = (
    "nlu/segmenter.py",
    "nlu/textnorm.py",
    "nlu/tokenizer.py",
    "nlu/classifier.py",
    "nlu/build.py",
    "nlu/privacy.py",
    "nlu/reviewed.py",
)


class NLUBuildError(RuntimeError):
    """Training could not run or failed; the message says what to do."""


@dataclass(frozen=True, slots=True)
class TrainResult:
    """A trained model file and how long training took."""

    model: Path
    seconds: float
    examples: int


def load_examples(directory: Path) -> dict[str, list[str]]:
    """Reads Rasa NLU YAML files under ``directory`` into ``{intent: [examples]}``."""
    examples: dict[str, list[str]] = {}
    for path in sorted(directory.glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for block in data.get("nlu", []):
            intent = block.get("intent")
            if not intent:
                continue
            lines = str(block.get("examples", "")).splitlines()
            items = [ln.strip()[2:].strip() for ln in lines if ln.strip().startswith("- ")]
            examples.setdefault(str(intent), []).extend(i for i in items if i)
    return examples


def augmented_examples(examples: dict[str, list[str]]) -> dict[str, list[str]]:
    """Returns diacritic-free copies of accented examples that training lacks.

    Members often type without diacritics; underthesea segments such text
    differently, so the model should see both spellings of each question.
    """
    extra: dict[str, list[str]] = {}
    seen = {e.lower() for items in examples.values() for e in items}
    for intent, items in examples.items():
        for example in items:
            plain = strip_diacritics(example)
            if has_diacritics(example) and plain not in seen:
                seen.add(plain)
                extra.setdefault(intent, []).append(plain)
    return extra


def _dump_nlu(examples: dict[str, list[str]]) -> str:
    blocks = []
    for intent, items in examples.items():
        body = "".join(f"    - {item}\n" for item in items)
        blocks.append(f"- intent: {intent}\n  examples: |\n{body}")
    return 'version: "3.1"\nnlu:\n' + "".join(blocks)


REVIEWED_PATH = PROJECT_ROOT / "nlu" / "data" / "reviewed.yml"


@dataclass(frozen=True, slots=True)
class TrainingSet:
    """What a model is trained on: hand-written examples plus the admins' labelled questions.

    A labelled question is left out when it repeats a hand-written example
    (hand-written data wins) or a held-out test question (the held-out split
    must stay unseen); ``reviewed_dropped`` counts those.
    """

    hand_written: dict[str, list[str]]
    reviewed: dict[str, list[str]]
    reviewed_dropped: int

    @property
    def examples(self) -> dict[str, list[str]]:
        """Every example by intent, hand-written first."""
        merged = {intent: list(items) for intent, items in self.hand_written.items()}
        for intent, items in self.reviewed.items():
            merged.setdefault(intent, []).extend(items)
        return merged

    @property
    def reviewed_count(self) -> int:
        """Labelled questions used for training."""
        return sum(len(v) for v in self.reviewed.values())


def training_set(reviewed: Path | None = REVIEWED_PATH) -> TrainingSet:
    """Loads the hand-written examples and the usable labelled questions."""
    hand_written = load_examples(TRAIN_DIR)
    known = {same_question(e) for items in hand_written.values() for e in items}
    held_out = {same_question(e) for items in load_examples(TEST_DIR).values() for e in items}
    kept: dict[str, list[str]] = {}
    dropped = 0
    for example in load_reviewed(reviewed) if reviewed is not None else []:
        key = same_question(example.text)
        if key in known or key in held_out or example.intent not in hand_written:
            dropped += 1
            continue
        known.add(key)
        kept.setdefault(example.intent, []).append(example.text)
    return TrainingSet(hand_written, kept, dropped)


def write_training_data(
    destination: Path, *, augment: bool = True, reviewed: Path | None = REVIEWED_PATH
) -> int:
    """Writes the training files into ``destination`` (plus augmentation); returns the count."""
    destination.mkdir(parents=True, exist_ok=True)
    for path in sorted(TRAIN_DIR.glob("*.yml")):
        shutil.copy(path, destination / path.name)
    data = training_set(reviewed)
    if data.reviewed:
        (destination / "zz_reviewed.yml").write_text(_dump_nlu(data.reviewed), encoding="utf-8")
    examples = data.examples
    count = sum(len(v) for v in examples.values())
    if augment:
        extra = augmented_examples(examples)
        (destination / "zz_augmented.yml").write_text(_dump_nlu(extra), encoding="utf-8")
        count += sum(len(v) for v in extra.values())
    return count


def fingerprint(
    config: Path = CONFIG_PATH, *, augment: bool = True, reviewed: Path | None = REVIEWED_PATH
) -> str:
    """Hashes everything that shapes a model: pipeline, training data, tokenizer code."""
    digest = hashlib.sha256(f"augment={augment}\n".encode())
    paths = [config, *sorted(TRAIN_DIR.glob("*.yml"))]
    paths += [PROJECT_ROOT / p for p in _SHAPING_CODE]
    if reviewed is not None and reviewed.exists():
        # Labelled questions that repeat held-out ones are left out: the split matters too.
        digest.update(examples_hash(reviewed).encode())
        paths += sorted(TEST_DIR.glob("*.yml"))
    for path in paths:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def current_model(
    model_dir: Path, *, config: Path = CONFIG_PATH, reviewed: Path | None = REVIEWED_PATH
) -> Path | None:
    """Returns the model built from the current data and pipeline, if it exists."""
    path = model_dir / f"nlu-{fingerprint(config, reviewed=reviewed)}.tar.gz"
    return path if path.exists() else None


def latest_model(model_dir: Path) -> Path | None:
    """Returns the newest model file in ``model_dir``, if any."""
    models = sorted(model_dir.glob("nlu-*.tar.gz"), key=lambda p: p.stat().st_mtime)
    return models[-1] if models else None


def rasa_executable(nlu_venv: Path) -> Path:
    """Returns the ``rasa`` command of the NLU environment or explains how to make it."""
    rasa = nlu_venv / "bin" / "rasa"
    if not rasa.exists():
        raise NLUBuildError(
            f"{rasa} not found: the NLU environment is missing. Run `make setup` "
            "(it needs Python 3.10; see README)."
        )
    return rasa


def nlu_env() -> dict[str, str]:
    """Environment for Rasa processes: our tokenizer importable, telemetry and TF noise off."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PROJECT_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("RASA_TELEMETRY_ENABLED", "false")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("PYTHONWARNINGS", "ignore")
    env.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
    # Rasa caches trained components; keep its cache out of the source tree.
    env.setdefault("RASA_CACHE_DIRECTORY", str(PROJECT_ROOT / "var" / "rasa-cache"))
    return env


def _config_with_epochs(config: Path, epochs: int, workdir: Path) -> Path:
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    for component in data["pipeline"]:
        if "epochs" in component:
            component["epochs"] = epochs
    out = workdir / "config.yml"
    out.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return out


def train_model(
    model_dir: Path,
    nlu_venv: Path,
    *,
    config: Path = CONFIG_PATH,
    augment: bool = True,
    epochs: int | None = None,
    name: str | None = None,
    echo: Callable[[str], None] | None = None,
    cache_dir: Path | None = None,
    reviewed: Path | None = REVIEWED_PATH,
    on_start: Callable[[subprocess.Popen[str]], None] | None = None,
) -> TrainResult:
    """Trains an NLU model with Rasa and returns its path; raises NLUBuildError on failure.

    ``on_start`` receives the ``rasa train`` process (a caller may kill it to stop training).
    """
    rasa = rasa_executable(nlu_venv)
    model_dir.mkdir(parents=True, exist_ok=True)
    name = name or f"nlu-{fingerprint(config, augment=augment, reviewed=reviewed)}"
    with tempfile.TemporaryDirectory(prefix="coopbot-train-") as tmp:
        workdir = Path(tmp)
        count = write_training_data(workdir / "data", augment=augment, reviewed=reviewed)
        used_config = _config_with_epochs(config, epochs, workdir) if epochs else config
        command = [
            str(rasa), "train", "nlu",
            "--config", str(used_config),
            "--nlu", str(workdir / "data"),
            "--out", str(model_dir),
            "--fixed-model-name", name,
        ]  # fmt: skip
        env = nlu_env()
        if cache_dir is not None:
            env["RASA_CACHE_DIRECTORY"] = str(cache_dir)
        started = time.monotonic()
        tail: list[str] = []
        with subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
        ) as process:
            assert process.stdout is not None
            if on_start is not None:
                on_start(process)
            for line in process.stdout:
                tail = [*tail[-40:], line.rstrip()]
                if echo is not None and ("Epochs:" in line or "Your Rasa model" in line):
                    echo(line.rstrip()[-160:])
            code = process.wait()
        seconds = time.monotonic() - started
    model = model_dir / f"{name}.tar.gz"
    if code != 0 or not model.exists():
        sys.stderr.write("\n".join(tail) + "\n")
        raise NLUBuildError(f"rasa train failed with exit code {code}; its last lines are above")
    return TrainResult(model, seconds, count)
