"""Retrain benchmark: retrain, evaluate and deploy on the current data; questions during swaps.

Run with `make bench-retrain`.

1. A running assistant: `coopbot run` in its own process with default settings
   (its own NLU service, the model of the current data, NLU_MODEL_POLL_SECONDS
   5) on a fresh SQLite database, in a scratch folder (models, reviewed data).
2. 30 members' questions wait in the review queue; an admin labels them (six
   groups, six intents). Not timed.
3. Measured: `coopbot nlu retrain`, from its start until the running assistant
   answers with the new model: training on the current data plus the labelled
   questions (with an empty Rasa cache, as after any data change), scoring the
   deployed and the new model on the held-out split and the labelled
   questions, the deployment in the registry, and the hot swap (target: <= 5
   minutes in all).
4. Then 10 more swaps (`coopbot nlu rollback`, back and forth between the two
   models). A steady stream of questions (8 a second, from 8 web chat
   members) runs from before the retrain to after the last swap; every answer
   is checked against its expected entry (target: zero failed questions).

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.figures import percentile
from bot.nlu_model.registry import ModelRegistry
from bot.nlu_model.review_queue import ReviewLog, ReviewQueue
from bot.nlu_model.service import free_port
from bot.settings import PROJECT_ROOT, load_settings
from bot.store.db import create_db_engine, upgrade_db
from nlu.build import TRAIN_DIR, current_model, load_examples
from tests.processes import stop
from tests.question_stream import Sent, Stream

COOPBOT = PROJECT_ROOT / ".venv" / "bin" / "coopbot"
TARGET_S = 300
# Members' wordings an admin labels (six intents, five wordings each).
LABELLED = {
    "ho_so_dang_ky_htx": [
        "làm htx nuôi cá thì nộp những giấy gì",
        "thanh lap htx nuoi ca can chuan bi giay to gi",
        "giấy tờ lập hợp tác xã trồng rau gồm những gì",
        "muon lap htx rau sach thi lam ho so sao",
        "bộ hồ sơ mở htx chăn nuôi có những gì",
    ],
    "han_khai_thue_quy": [
        "quý này nộp tờ khai chậm nhất ngày nào",
        "to khai quy 3 nop truoc ngay may",
        "htx khai thuế theo quý thì hạn cuối khi nào",
        "han chot nop to khai quy la ngay bao nhieu",
        "tờ khai gtgt quý nộp muộn nhất hôm nào",
    ],
    "giai_the_htx": [
        "htx làm ăn thua lỗ muốn đóng cửa luôn thì sao",
        "muon dong cua htx vinh vien lam the nao",
        "không muốn duy trì htx nữa thì thủ tục thế nào",
        "thu tuc cham dut hoat dong htx o dau",
        "xã viên muốn dẹp htx thì làm sao",
    ],
    "von_gop_toi_da": [
        "một người được góp nhiều nhất mấy phần vốn",
        "xa vien gop von toi da bao nhieu phan tram",
        "có giới hạn vốn góp của một thành viên không",
        "mot nguoi gop het von htx duoc khong",
        "trần vốn góp mỗi thành viên là bao nhiêu",
    ],
    "hoa_don_dien_tu": [
        "htx xuất hóa đơn điện tử thế nào",
        "hoa don dien tu htx dang ky o dau",
        "bán rau cho siêu thị có phải xuất hóa đơn điện tử",
        "htx dung hoa don giay duoc nua khong",
        "cách lập hóa đơn điện tử cho hợp tác xã",
    ],
    "out_of_scope": [
        "giá lúa hôm nay bao nhiêu",
        "gia phan bon ure tuan nay",
        "thời tiết miền tây tuần sau",
        "xem bong da o dau",
        "cách nấu canh chua cá lóc",
    ],
}


def env_for(folder: Path, port: int) -> dict[str, str]:
    keep = ("DATABASE_", "NLU_", "TELEGRAM_", "ZALO_", "WEB_", "MODEL_", "REVIEWED_", "ADMIN_")
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(keep)},
        "DATABASE_URL": f"sqlite:///{folder / 'bench.db'}",
        "MODEL_DIR": str(folder / "models"),
        "REVIEWED_DATA": str(folder / "reviewed.yml"),
        "NLU_URL": "http://127.0.0.1:9",  # nothing there: the assistant starts its own
        "WEB_PORT": str(port),
        "REMINDERS_ENABLED": "false",
        "WEB_MESSAGES_PER_IP_MINUTE": "100000",  # the stream's many members share one address
        "RASA_CACHE_DIRECTORY": str(folder / "rasa-cache"),
        "LOG_LEVEL": "INFO",
    }


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 240.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("coopbot run exited; see its log")
        try:
            if httpx.get(f"{url}healthz", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("coopbot run did not become healthy in time")


def label_questions(database_url: str, reviewed: Path) -> int:
    engine = create_db_engine(database_url)
    try:
        upgrade_db(engine)
        log = ReviewLog(engine)
        for texts in LABELLED.values():
            for text in texts:
                log.record(channel="web", text=text, reason="low_confidence", intent=None,
                           confidence=None)  # fmt: skip
        queue = ReviewQueue(engine, reviewed, load_examples(TRAIN_DIR).keys())
        wanted = {t: i for i, texts in LABELLED.items() for t in texts}
        added = 0
        for group in queue.groups():
            intents = {wanted[t] for t in group.texts if t in wanted}
            if len(intents) == 1:
                added += queue.label(group, intents.pop(), "bench:admin")
        return added
    finally:
        engine.dispose()


def swaps_in_log(log_path: Path) -> list[tuple[float, float]]:
    """(moment in monotonic seconds, milliseconds taken) of each hot swap the assistant logged."""
    offset = time.monotonic() - time.time()
    found = []
    pattern = r"^(\S+ \S+) INFO bot.nlu_model.swap: NLU model .* swapped in after (\d+) ms"
    for stamp, ms in re.findall(pattern, log_path.read_text(encoding="utf-8"), re.M):
        moment = dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
        found.append((moment + offset, float(ms)))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--swaps", type=int, default=10, help="swaps after the retrain")
    args = parser.parse_args()
    settings = load_settings()
    model = current_model(settings.model_dir, reviewed=None)
    if model is None:
        raise SystemExit("no model of the current data: run `make model` first")
    folder = Path(tempfile.mkdtemp(prefix="coopbot-bench-retrain-"))
    (folder / "models").mkdir()
    shutil.copy(model, folder / "models" / model.name)
    port = free_port()
    env = env_for(folder, port)
    url = f"http://127.0.0.1:{port}/"
    log_path = folder / "run.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen([str(COOPBOT), "run"], env=env, stdout=log_file,
                                   stderr=subprocess.STDOUT, cwd=folder)  # fmt: skip
    try:
        wait_ready(url, process)
        added = label_questions(env["DATABASE_URL"], folder / "reviewed.yml")
        print(f"labelled: {sum(len(v) for v in LABELLED.values())} questions in the review "
              f"queue, {added} new examples in the reviewed data")  # fmt: skip
        stream = Stream(url, rate=8.0, sessions=8)
        stream.start()
        time.sleep(2.0)

        started = time.monotonic()
        retrain = subprocess.run([str(COOPBOT), "nlu", "retrain", "--wait", "120"], env=env,
                                 capture_output=True, text=True, cwd=folder)  # fmt: skip
        total = time.monotonic() - started
        out = retrain.stdout
        if retrain.returncode != 0 or "Trợ lý đang trả lời bằng" not in out:
            stream.stop()
            raise SystemExit(f"retrain failed ({retrain.returncode}):\n{out}\n{retrain.stderr}")
        timing = re.search(r"huấn luyện (\d+) s, đánh giá (\d+) s, tổng (\d+) s", out)
        loaded = re.search(r"nạp sau ([\d.]+) s", out)
        engine = create_db_engine(env["DATABASE_URL"])
        new = ModelRegistry(engine, folder / "models").deployed()
        engine.dispose()
        assert new is not None
        print("retrain on the current data (coopbot nlu retrain, until the assistant uses it):")
        for line in out.splitlines():
            if line.startswith(("Mô hình", "✅", "⛔")):
                print(f"  {line}")
        if timing and loaded:
            print(f"  train {timing.group(1)} s, evaluate {timing.group(2)} s, "
                  f"deploy and swap {loaded.group(1)} s (registry poll every 5 s)")  # fmt: skip
        print(f"  total {total:.1f} s  target <= {TARGET_S} s")

        for i in range(args.swaps):
            time.sleep(2.0)
            target = [] if i % 2 == 0 else ["--to", new.version]
            subprocess.run([str(COOPBOT), "nlu", "rollback", *target, "--wait", "60"], env=env,
                           capture_output=True, text=True, cwd=folder, check=True)  # fmt: skip
        time.sleep(2.0)
        sent = stream.stop()
        report(sent, folder / "run.log")
    finally:
        stop(process)
    shutil.rmtree(folder, ignore_errors=True)


def report(sent: list[Sent], log_path: Path) -> None:
    swaps = swaps_in_log(log_path)
    swaps_ms = [ms for _, ms in swaps]
    failed = [s for s in sent if not s.ok]
    # In flight within 1 s of the end of a swap (the log line is written when it ends).
    near = [s for s in sent if any(s.started - 1.0 <= end <= s.finished + 1.0
                                   for end, _ in swaps)]  # fmt: skip
    latency = [(s.finished - s.started) * 1000 for s in sent]
    near_latency = [(s.finished - s.started) * 1000 for s in near]
    if swaps_ms:
        print(f"swaps: {len(swaps_ms)} hot swaps (PUT /model behind the gate), "
              f"{min(swaps_ms):.0f}-{max(swaps_ms):.0f} ms each")  # fmt: skip
    print(f"questions during the run: {len(sent)} asked, {len(sent) - len(failed)} answered "
          f"right, {len(failed)} failed  target 0 failed")  # fmt: skip
    print(f"  within 1 s of a swap: {len(near)} asked, "
          f"{sum(1 for s in near if not s.ok)} failed")  # fmt: skip
    if latency:
        print(f"  latency p50 {percentile(latency, 50):.0f} ms, p99 {percentile(latency, 99):.0f} "
              f"ms, max {max(latency):.0f} ms (within 1 s of a swap: max "
              f"{max(near_latency, default=0):.0f} ms)")  # fmt: skip
    for s in failed[:5]:
        print(f"  failed: {s.detail}")


if __name__ == "__main__":
    main()
