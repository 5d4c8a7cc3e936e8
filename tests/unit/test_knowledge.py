"""Knowledge-base integrity: entries, intents and training data agree."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from knowledge.base import (
    CHITCHAT_INTENTS,
    OUT_OF_SCOPE_INTENT,
    KnowledgeBaseError,
    load_knowledge_base,
)
from nlu.build import TEST_DIR, TRAIN_DIR, load_examples
from nlu.textnorm import has_diacritics, strip_diacritics

KB = load_knowledge_base()
TRAIN = load_examples(TRAIN_DIR)
TEST = load_examples(TEST_DIR)
NON_ENTRY_INTENTS = {*CHITCHAT_INTENTS, OUT_OF_SCOPE_INTENT}
# Numbers of the repealed 2012 law that must never be stated as current.
OLD_LAW_PATTERNS = [r"\b7 thành viên", r"\b07 thành viên", r"\b20% vốn điều lệ"]


def test_at_least_60_entries_in_every_category():
    assert len(KB) >= 60
    for category in KB.categories:
        assert KB.in_category(category.key), f"empty category {category.key}"


def test_every_training_intent_has_exactly_one_entry_or_is_chitchat():
    for intent in TRAIN:
        if intent in NON_ENTRY_INTENTS:
            continue
        assert KB.get(intent) is not None, f"intent {intent} has no entry"


def test_every_entry_and_chitchat_intent_has_training_and_test_data():
    for intent in [*KB.entries, *NON_ENTRY_INTENTS]:
        assert len(TRAIN.get(intent, [])) >= 12, f"{intent}: fewer than 12 training examples"
        assert len(TEST.get(intent, [])) >= 3, f"{intent}: fewer than 3 held-out questions"


def test_held_out_questions_never_appear_in_training():
    seen = {strip_diacritics(e) for items in TRAIN.values() for e in items}
    leaked = [q for items in TEST.values() for q in items if strip_diacritics(q) in seen]
    assert leaked == []


def test_training_data_mixes_spellings():
    for intent, examples in TRAIN.items():
        plain = sum(not has_diacritics(e) for e in examples)
        assert plain >= 3, f"{intent}: too few examples without diacritics"


def test_ids_are_unique_and_link_safe():
    for entry_id in KB.entries:
        assert re.fullmatch(r"[a-z0-9_-]{1,40}", entry_id)
        # Telegram deep links: /start faq-<id> within 64 characters.
        assert len(f"faq-{entry_id}") <= 64


def test_every_entry_cites_a_basis_and_a_date():
    for entry in KB:
        assert entry.basis and all(b.doc for b in entry.basis)
        assert entry.checked.year >= 2024
        assert len(entry.answer) <= 700


def test_unconfirmed_entries_say_so_and_point_to_staff():
    unconfirmed = [e for e in KB if e.unconfirmed]
    assert unconfirmed
    for entry in unconfirmed:
        assert "/lienhe" in entry.answer, entry.id
        assert re.search(r"chưa (được )?xác nhận|cần kiểm tra|chưa chắc", entry.answer), entry.id


def test_old_law_numbers_only_appear_as_corrections():
    for entry in KB:
        for pattern in OLD_LAW_PATTERNS:
            if re.search(pattern, entry.answer):
                assert "2012" in entry.answer, f"{entry.id} states a 2012 figure as current"


def test_key_facts_of_the_2023_law():
    assert "05" in KB.entries["so_thanh_vien_toi_thieu"].answer
    assert "30%" in KB.entries["von_gop_toi_da"].answer
    assert "04 tháng" in KB.entries["dai_hoi_thuong_nien"].answer
    assert "15/12" in KB.entries["cap_nhat_thong_tin_hang_nam"].answer


def test_related_ids_exist():
    for entry in KB:
        for related in entry.related:
            assert KB.get(related) is not None


def test_chitchat_replies_exist():
    for intent in CHITCHAT_INTENTS:
        assert KB.chitchat[intent]
    assert any("/lienhe" in r for r in KB.chitchat["bot_challenge"])


def _copy_kb(tmp_path: Path) -> Path:
    root = Path(__file__).resolve().parents[2] / "knowledge"
    target = tmp_path / "knowledge"
    shutil.copytree(root, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return target


def test_loader_rejects_a_duplicate_id(tmp_path: Path):
    target = _copy_kb(tmp_path)
    source = target / "entries" / "thanh_vien.yml"
    (target / "entries" / "zz_copy.yml").write_text(source.read_text(encoding="utf-8"))
    with pytest.raises(KnowledgeBaseError, match="duplicate entry id"):
        load_knowledge_base(target)


def test_loader_rejects_an_unknown_related_id(tmp_path: Path):
    target = _copy_kb(tmp_path)
    path = target / "entries" / "thanh_vien.yml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("related: [", "related: [khong_ton_tai, ", 1), encoding="utf-8")
    with pytest.raises(KnowledgeBaseError, match="khong_ton_tai"):
        load_knowledge_base(target)


def test_loader_rejects_an_entry_without_basis(tmp_path: Path):
    target = _copy_kb(tmp_path)
    (target / "entries" / "zz_bad.yml").write_text(
        "entries:\n  - id: bad_entry\n    category: von\n    title: Một mục sai\n"
        "    answer: Câu trả lời đủ dài để qua kiểm tra độ dài.\n    basis: []\n"
        "    checked: 2026-11-22\n",
        encoding="utf-8",
    )
    with pytest.raises(KnowledgeBaseError, match="bad_entry"):
        load_knowledge_base(target)
