"""The review queue: what enters it, grouping, labelling into the reviewed-data file, /xemxet."""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from bot.answers import AnswerService
from bot.handlers.review import ReviewChat
from bot.nlu_model.review_queue import (
    SIMILARITY,
    ReviewLog,
    ReviewQueue,
    _clusters,
    _Row,
    similar,
    words,
)
from bot.store.db import ReviewQuestion
from bot.store.members import MemberStore
from nlu.build import TEST_DIR, TRAIN_DIR, fingerprint, load_examples, training_set
from nlu.privacy import mask_personal_data
from nlu.reviewed import add_examples, load_reviewed
from tests.unit.test_conversation import payloads, say
from tests.unit.test_roles import UNKNOWN, set_role
from tests.unit.test_training_chat import KB, SEARCH, make_core, member_id

INTENTS = load_examples(TRAIN_DIR).keys()


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("gọi 0912 345 678 giúp em", "gọi [SĐT] giúp em"),
        ("sdt 0912.345.678 hoac +84 912 345 678", "sdt [SĐT] hoac [SĐT]"),
        ("so 84912345678 nhe", "so [SĐT] nhe"),
        ("máy bàn 024-3826-1234", "máy bàn [SĐT]"),
        ("cccd 001203004567, cmnd 123456789", "cccd [SỐ ID], cmnd [SỐ ID]"),
        ("mail lan.nguyen+htx@gmail.com.vn nhé", "mail [EMAIL] nhé"),
        ("vốn 100.000.000 đồng năm 2023, 7 người", "vốn 100.000.000 đồng năm 2023, 7 người"),
        ("Nghị định 92/2024/NĐ-CP điều 10", "Nghị định 92/2024/NĐ-CP điều 10"),
        ("hộ chiếu C1234567, số p12345678", "hộ chiếu [SỐ HỘ CHIẾU], số [SỐ HỘ CHIẾU]"),
        ("mẫu số 01/HTX, khoản 2a, mã K12345", "mẫu số 01/HTX, khoản 2a, mã K12345"),
    ],
)  # fmt: skip
def test_personal_data_is_masked(text, masked):
    assert mask_personal_data(text) == masked


def test_similar_questions_share_words_despite_spelling():
    a = words("HTX cần bao nhiêu thành viên vậy ạ?")
    b = words("hop tac xa can bao nhieu thanh vien")
    c = words("vốn góp tối đa của một thành viên")
    assert similar(a, b) == 1.0
    assert similar(a, c) < 0.6


def queue_of(engine: Engine, tmp_path: Path) -> ReviewQueue:
    return ReviewQueue(engine, tmp_path / "reviewed.yml", INTENTS)


def record(log: ReviewLog, text: str, reason: str = "low_confidence", **kw: Any) -> int:
    return log.record(channel="telegram", text=text, reason=reason, intent=None,
                      confidence=None, **kw)  # fmt: skip


def test_groups_are_counted_ordered_and_labelled_into_the_reviewed_file(db_engine, tmp_path):
    log = ReviewLog(db_engine)
    first = record(log, "htx nuôi cá cần giấy phép môi trường không",
                   candidates=[("giai_the_htx", 0.3), ("out_of_scope", 0.2)])  # fmt: skip
    record(log, "HTX nuoi ca can giay phep moi truong ko", reason="thumbs_down",
           candidates=[("giai_the_htx", 0.5)])  # fmt: skip
    record(log, "htx nuôi cá cần giấy phép môi trường không")
    lone = record(log, "gọi cho tôi qua 0912345678 hoặc lan@example.com")
    queue = queue_of(db_engine, tmp_path)

    groups = queue.groups()
    assert [(g.id, g.count) for g in groups] == [(first, 3), (lone, 1)]
    group = groups[0]
    assert group.text == "htx nuôi cá cần giấy phép môi trường không"  # the most asked wording
    assert group.texts[1] == "HTX nuoi ca can giay phep moi truong ko"
    assert dict(group.reasons) == {"low_confidence": 2, "thumbs_down": 1}
    assert group.candidates[0][0] == "giai_the_htx"
    assert group.candidates[0][1] == pytest.approx((0.3 + 0.5) / 3)
    assert groups[1].text == "gọi cho tôi qua [SĐT] hoặc [EMAIL]"  # masked when stored
    assert queue.group(group.question_ids[2]) == group  # any of its questions finds it

    train_before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in TRAIN_DIR.iterdir()}
    stamp = dt.datetime(2026, 11, 24, 8, 0, tzinfo=dt.UTC)
    added = queue.label(group, "ho_so_dang_ky_htx", "telegram:1 (Lan)", now=stamp)
    assert added == 2  # the two spellings; the repeated one is not written twice
    examples = load_reviewed(queue.reviewed_path)
    assert [(e.text, e.intent, e.labelled_by, e.labelled_at) for e in examples] == [
        ("htx nuôi cá cần giấy phép môi trường không", "ho_so_dang_ky_htx", "telegram:1 (Lan)",
         "2026-11-24T08:00:00+00:00"),
        ("HTX nuoi ca can giay phep moi truong ko", "ho_so_dang_ky_htx", "telegram:1 (Lan)",
         "2026-11-24T08:00:00+00:00"),
    ]  # fmt: skip
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in TRAIN_DIR.iterdir()}
    assert after == train_before  # hand-written data untouched
    assert [g.id for g in queue.groups()] == [lone]
    with db_engine.connect() as connection:
        labelled = connection.execute(
            select(ReviewQuestion.status, ReviewQuestion.label, ReviewQuestion.labelled_by)
            .where(ReviewQuestion.id.in_(group.question_ids))
        ).all()  # fmt: skip
    assert set(labelled) == {("labelled", "ho_so_dang_ky_htx", "telegram:1 (Lan)")}
    assert queue.group(first) is None  # decided: no longer in the queue

    # The file is valid Rasa NLU data with the metadata kept.
    data = yaml.safe_load(queue.reviewed_path.read_text(encoding="utf-8"))
    assert data["nlu"][0]["examples"][0]["metadata"]["review_id"] == first


def test_personal_data_never_reaches_training_data(tmp_path):
    path = tmp_path / "reviewed.yml"
    add_examples(path, [("sđt em 0987 654 321, email a.b@c.vn, cccd 012345678901", None)],
                 "out_of_scope", "cli:admin")  # fmt: skip
    (example,) = load_reviewed(path)
    assert example.text == "sđt em [SĐT], email [EMAIL], cccd [SỐ ID]"
    raw = path.read_text(encoding="utf-8")
    assert "0987" not in raw and "a.b@c.vn" not in raw and "012345678901" not in raw


def test_relabelling_keeps_the_latest_decision_and_unknown_intents_are_refused(db_engine, tmp_path):
    log = ReviewLog(db_engine)
    queue = queue_of(db_engine, tmp_path)
    record(log, "thủ tục giải thể htx")
    queue.label(queue.groups()[0], "giai_the_htx", "a")
    record(log, "thu tuc giai the HTX")
    assert queue.label(queue.groups()[0], "pha_san_htx", "b") == 1
    (example,) = load_reviewed(queue.reviewed_path)
    assert (example.intent, example.labelled_by) == ("pha_san_htx", "b")
    record(log, "câu hỏi khác hẳn về thuế")
    with pytest.raises(ValueError, match="không có ý định"):
        queue.label(queue.groups()[0], "khong_ton_tai", "a")


def test_new_entry_irrelevant_and_skip(db_engine, tmp_path):
    log = ReviewLog(db_engine)
    queue = queue_of(db_engine, tmp_path)
    ids = [record(log, t) for t in ("giá phân bón hôm nay", "asdf qwer", "thuế nhà đất nông thôn")]
    by_id = {g.id: g for g in queue.groups()}
    assert queue.decide(by_id[ids[0]], "new_entry", "a") == 1
    assert queue.decide(by_id[ids[1]], "irrelevant", "a") == 1
    assert queue.decide(by_id[ids[2]], "skipped", "a") == 1
    assert queue.groups() == []
    (skipped,) = queue.groups(("open", "skipped"))
    assert skipped.id == ids[2] and skipped.status == "skipped"
    assert queue.group(ids[2]) == skipped  # a skipped group can still be labelled
    assert queue.group(ids[0]) is None
    assert not queue.reviewed_path.exists()  # nothing became training data
    with pytest.raises(ValueError):
        queue.decide(skipped, "labelled", "a")


def test_a_members_questions_leave_the_queue_with_their_data(db_engine):
    members = MemberStore(db_engine)
    lan = members.touch("telegram", "7", "7", "Lan")
    log = ReviewLog(db_engine)
    record(log, "câu hỏi của Lan", member_id=lan.id)
    record(log, "câu hỏi của người khác")
    assert members.delete(lan.id)
    with db_engine.connect() as connection:
        texts = connection.scalars(select(ReviewQuestion.text)).all()
    assert texts == ["câu hỏi của người khác"]


def test_training_set_adds_labelled_questions_but_keeps_hand_written_and_held_out_data(tmp_path):
    path = tmp_path / "reviewed.yml"
    hand_written = load_examples(TRAIN_DIR)["so_thanh_vien_toi_thieu"][0]
    held_out = load_examples(TEST_DIR)["so_thanh_vien_toi_thieu"][0]
    add_examples(
        path, [("htx nuôi cá cần giấy phép môi trường không", 1)], "ho_so_dang_ky_htx", "a"
    )
    add_examples(path, [(hand_written, 2), (held_out.upper(), 3)], "von_gop_toi_da", "a")
    before = fingerprint(reviewed=None)
    data = training_set(path)
    assert data.reviewed == {"ho_so_dang_ky_htx": ["htx nuôi cá cần giấy phép môi trường không"]}
    assert data.reviewed_dropped == 2
    assert "htx nuôi cá cần giấy phép môi trường không" in data.examples["ho_so_dang_ky_htx"]
    assert hand_written not in data.examples["von_gop_toi_da"]
    assert fingerprint(reviewed=path) != before
    assert fingerprint(reviewed=tmp_path / "missing.yml") == before


def test_fallbacks_unsure_answers_and_thumbs_down_enter_the_queue(sqlite_engine):
    review_log = ReviewLog(sqlite_engine)
    answers = AnswerService(KB, SEARCH, None, review_log=review_log, review_threshold=0.7)
    core = make_core(sqlite_engine, answers=answers)

    say(core, "giá vé máy bay đi Đà Nẵng", user="1")  # fallback
    say(core, "???", user="1")  # nothing to learn from: not queued
    (suggested,) = say(core, "hợp tác xã cần tối thiểu bao nhiêu thành viên", user="2")
    assert suggested.text.startswith("Có phải bạn hỏi về")  # search only: unsure
    (up, down) = (p for p in payloads(suggested) if p.startswith("fb:"))
    rows = _queue_rows(sqlite_engine)
    assert [(r.reason, r.member_id) for r in rows] == [
        ("nlu_unavailable", member_id(sqlite_engine, "1")),
        ("unsure", member_id(sqlite_engine, "2")),
    ]

    say(core, payload=down, user="2")
    assert [r.reason for r in _queue_rows(sqlite_engine)][-1] == "thumbs_down"
    assert _queue_rows(sqlite_engine)[-1].message_id == int(down.rsplit(":", 1)[1])
    say(core, payload=down, user="2")  # pressed twice: still one
    assert [r.reason for r in _queue_rows(sqlite_engine)].count("thumbs_down") == 1
    say(core, payload=up, user="2")  # changed their mind
    assert [r.reason for r in _queue_rows(sqlite_engine)].count("thumbs_down") == 0
    say(core, payload=down, user="3")  # not their message: nothing happens
    assert [r.reason for r in _queue_rows(sqlite_engine)].count("thumbs_down") == 0


def _queue_rows(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(select(ReviewQuestion).order_by(ReviewQuestion.id)).all())


# -- /xemxet ---------------------------------------------------------------------------------


@pytest.fixture
def review_core(sqlite_engine: Engine, tmp_path: Path) -> Any:
    queue = queue_of(sqlite_engine, tmp_path)
    return make_core(sqlite_engine, review=ReviewChat(queue, KB))


def test_admin_reviews_groups_with_buttons_in_chat(review_core, sqlite_engine, tmp_path):
    log = ReviewLog(sqlite_engine)
    first = record(log, "htx nuôi cá cần giấy phép môi trường không",
                   candidates=[("giai_the_htx", 0.4), ("out_of_scope", 0.3)])  # fmt: skip
    record(log, "htx nuoi ca can giay phep moi truong khong")
    second = record(log, "xin số điện thoại cán bộ 0912345678",
                    candidates=[("lien_minh_htx", 0.3)])  # fmt: skip
    say(review_core, "/start", user="boss")
    set_role(sqlite_engine, "boss", "admin")

    (shown,) = say(review_core, "/xemxet", user="boss")
    assert f"Nhóm #{first}: hỏi 2 lần (còn 2 nhóm, 3 câu chờ xem xét)" in shown.text
    assert "«htx nuôi cá cần giấy phép môi trường không»" in shown.text
    assert "htx nuoi ca can giay phep moi truong khong" in shown.text  # another wording
    assert payloads(shown) == [
        f"xx:l:{first}:giai_the_htx", f"xx:l:{first}:out_of_scope",
        f"xx:n:{first}", f"xx:x:{first}", f"xx:s:{first}",
    ]  # fmt: skip
    assert shown.buttons[0].label.startswith(KB.get("giai_the_htx").title)  # type: ignore[union-attr]

    (after,) = say(review_core, payload=f"xx:l:{first}:giai_the_htx", user="boss")
    assert after.edit and after.text.startswith("✅ Đã gán 2 câu vào «")
    assert f"Nhóm #{second}: hỏi 1 lần" in after.text and "[SĐT]" in after.text
    # The two differ only by diacritics: one example (training adds the plain spelling itself).
    assert [e.intent for e in load_reviewed(tmp_path / "reviewed.yml")] == ["giai_the_htx"]

    (stale,) = say(review_core, payload=f"xx:l:{first}:giai_the_htx", user="boss")
    assert stale.notice  # already decided
    (typed,) = say(review_core, f"/xemxet {second} lien_minh_htx", user="boss")
    assert typed.text.startswith("✅ Đã gán 1 câu") and "Không còn câu hỏi nào" in typed.text
    (wrong,) = say(review_core, f"/xemxet {second} khong_co", user="boss")
    assert wrong.text.startswith("Nhóm câu hỏi này đã được xử lý")
    record(log, "câu mới")
    (bad_intent,) = say(review_core, f"/xemxet {second + 1} khong_co", user="boss")
    assert "Không có ý định «khong_co»" in bad_intent.text
    (skip,) = say(review_core, payload=f"xx:s:{second + 1}", user="boss")
    assert skip.text.startswith("⏭ Đã bỏ qua nhóm này (1 câu)")


@pytest.mark.parametrize("role", ["member", "trainer", "staff"])
def test_only_admins_review_or_retrain(review_core, sqlite_engine, tmp_path, role):
    log = ReviewLog(sqlite_engine)
    first = record(log, "htx nuôi cá cần giấy phép môi trường không")
    say(review_core, "/start", user="u")
    set_role(sqlite_engine, "u", role)
    for command in ("xemxet", "huanluyen"):
        (reply,) = say(review_core, f"/{command}", user="u")
        assert reply.text == UNKNOWN.format(name=command)
    (pressed,) = say(review_core, payload=f"xx:l:{first}:giai_the_htx", user="u")
    assert pressed.notice
    with sqlite_engine.connect() as connection:
        open_rows = connection.scalar(
            select(func.count()).where(ReviewQuestion.status == "open")
        )  # fmt: skip
    assert open_rows == 1 and not (tmp_path / "reviewed.yml").exists()


def test_strip_invisible_keeps_vietnamese_newlines_and_emoji():
    from nlu.textnorm import strip_invisible

    text = "Hợp tác xã 🌾\nthành viên\t7"
    assert strip_invisible(text) == text
    assert strip_invisible("\u2066Lớp\u2069 \u202etập huấn\u200b\x07") == "Lớp tập huấn"
    assert strip_invisible("a\u00adb\u2060c\x00") == "abc"


def test_grouping_compares_only_clusters_that_can_match_yet_finds_the_same_groups():
    def naive(rows):  # every row against the first row of every cluster
        clusters = []
        for row in rows:
            scores = [similar(row.words, c[0].words) for c in clusters]
            best = max(range(len(scores)), key=lambda i: (scores[i], -i), default=None)
            if best is not None and scores[best] >= SIMILARITY:
                clusters[best].append(row)
            else:
                clusters.append([row])
        return [[r.id for r in c] for c in clusters]

    rng = random.Random(7)
    vocabulary = [
        "htx",
        "von",
        "gop",
        "thanh",
        "vien",
        "thue",
        "dang",
        "ky",
        "giai",
        "the",
        "loi",
        "nhuan",
        "quy",
        "dat",
    ]
    when = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    rows = []
    for i in range(600):
        text = " ".join(rng.sample(vocabulary, rng.randint(0, 5))) or "?"
        rows.append(_Row(i, text, words(text), "unsure", (), "open", when))
    found = [[r.id for r in c] for c in _clusters(rows)]
    assert found == naive(rows)
    assert 20 < len(found) < 500  # groups formed, and not all in one


def test_groups_are_made_again_only_when_the_queue_changes(db_engine, tmp_path):
    log = ReviewLog(db_engine)
    queue = queue_of(db_engine, tmp_path)
    made = []
    group_now = queue._group_now
    queue._group_now = lambda statuses: made.append(statuses) or group_now(statuses)

    def ask(text: str) -> int:
        return log.record(channel="telegram", text=text, reason="unsure", intent=None,
                          confidence=None)  # fmt: skip

    ask("htx muốn vay vốn ngân hàng")
    ask("giá lúa hôm nay")
    first = queue.groups()
    assert queue.groups() == first and len(made) == 1  # nothing changed: kept
    ask("htx muốn vay vốn ngân hàng thế nào")
    assert [g.count for g in queue.groups()] == [2, 1] and len(made) == 2
    queue.decide(queue.groups()[1], "skipped", "Lan")  # open -> skipped: same ids in all
    assert [g.count for g in queue.groups()] == [2] and len(made) == 3
    both = queue.groups(("open", "skipped"))
    assert [(g.status, g.count) for g in both] == [("open", 2), ("skipped", 1)]
    assert queue.groups(("open", "skipped")) == both and len(made) == 4
