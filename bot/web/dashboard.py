"""The admin dashboard's pages: what each shows, built from the SQL aggregates.

Each page (:data:`PAGES`) is a role set and a builder: ``build(dashboard, query,
staff)`` runs the aggregates of :mod:`bot.store.stats` (one grouped statement per
chart or table; no page loads rows one by one into Python) and answers a
:class:`PageData`: headline figures, charts and tables. The routes
(:mod:`bot.web.admin`) render it with ``admin_<page>.html`` or, for
``/admin/<page>/<table>.csv``, write one of its tables as CSV, so a download
always holds the figures the page shows.

Charts are drawn in the browser by uPlot (vendored under ``static/vendor/uplot``):
the page carries each chart's data as a JSON block that ``static/admin.js`` reads;
see README "Admin dashboard" for the choice.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy.engine import Engine

from bot.clock import VIETNAM, format_date, format_timestamp, utcnow
from bot.handlers.review import ReviewChat
from bot.nlu_model.registry import ModelRecord, ModelRegistry
from bot.profile import ProfileOptions
from bot.store import stats
from bot.store.admin_sessions import Staff
from bot.store.broadcasts import BroadcastStore, Segment
from bot.store.roles import ROLE_LABELS, STAFF_ROLES
from bot.store.training import TrainingStore
from knowledge.base import KnowledgeBase
from scheduler.deadlines import Rule

__all__ = [
    "ADMIN_ONLY",
    "CHANNEL_LABELS",
    "OUTCOME_LABELS",
    "PAGES",
    "PERIODS",
    "Chart",
    "Column",
    "Dashboard",
    "Page",
    "PageData",
    "Query",
    "Table",
    "cell",
    "number",
    "page_named",
    "percent",
    "to_csv",
    "visible",
]

ADMIN_ONLY: Final = frozenset({"admin"})
PERIODS: Final = stats.PERIODS
OUTCOME_LABELS: Final = {
    "entry": "Trả lời từ mục hỏi đáp",
    "suggested": "Gợi ý mục gần đúng",
    "clause": "Trích dẫn điều luật",
    "out_of_scope": "Ngoài phạm vi",
    "fallback": "Chưa trả lời được",
    "chitchat": "Trò chuyện",
    stats.HANDOVER: "Chuyển cán bộ",
}
CHANNEL_LABELS: Final = {
    "telegram": "Telegram",
    "zalo": "Zalo",
    "web": "Web",
    "terminal": "Terminal",
}
STATUS_LABELS: Final = {
    "pending": "Chờ gửi",
    "sending": "Đang gửi",
    "sent": "Đã gửi",
    "blocked": "Chặn bot",
    "failed": "Lỗi",
    "dropped": "Bỏ",
    "unknown": "Không rõ",
}
_DELIVERY_ORDER: Final = ("sent", "unknown", "dropped", "blocked", "failed", "pending", "sending")
REMINDER_KINDS: Final = {
    "deadline": "Hạn nộp",
    "session": "Nhắc buổi tập huấn",
    "session_change": "Buổi tập huấn đổi/hủy",
    "session_after": "Tài liệu sau buổi tập huấn",
}
BROADCAST_STATUS: Final = {
    "draft": "Nháp",
    "sending": "Đang gửi",
    "done": "Đã xong",
    "cancelled": "Đã dừng",
}
MODEL_STATUS: Final = {
    "training": "Đang huấn luyện",
    "trained": "Đã huấn luyện",
    "deployed": "Đang dùng",
    "retired": "Đã thay",
    "rolled_back": "Đã quay lui",
    "refused": "Không đạt",
    "failed": "Lỗi",
}
NO_VALUE: Final = "(chưa khai báo)"


@dataclass(frozen=True)
class Dashboard:
    """What the pages read; kept in ``app.state.dashboard``. A None store: feature off."""

    engine: Engine
    kb: KnowledgeBase
    options: ProfileOptions
    registry: ModelRegistry | None = None
    broadcasts: BroadcastStore | None = None
    training: TrainingStore | None = None
    review: ReviewChat | None = None
    rules: tuple[Rule, ...] = ()
    clock: Callable[[], dt.datetime] = utcnow


@dataclass(frozen=True)
class Query:
    """A page's window (the last ``days`` Vietnam days) and province filter."""

    days: int
    province: str | None
    since: dt.datetime
    until: dt.datetime

    @classmethod
    def parse(cls, params: Any, options: ProfileOptions, now: dt.datetime) -> Query:
        """From the query string: ``days`` in PERIODS (else 30), ``province`` a known code."""
        try:
            days = int(params.get("days", "30"))
        except ValueError:
            days = 30
        if days not in PERIODS:
            days = 30
        province = params.get("province") or None
        if province is not None and not options.is_valid("province", province):
            province = None
        since, until = stats.days_window(days, now)
        return cls(days, province, since, until)

    def day_list(self) -> list[dt.date]:
        """The window's Vietnam days, oldest first."""
        first = self.since.astimezone(VIETNAM).date()
        return [first + dt.timedelta(days=i) for i in range(self.days)]


@dataclass(frozen=True)
class Column:
    """A table column: its CSV name, its heading and how its cells look."""

    name: str
    heading: str
    kind: str = "text"  # "text", "num" (an integer) or "share" (a fraction 0..1)


@dataclass(frozen=True)
class Table:
    """A table of a page, also downloadable as ``/admin/<page>/<name>.csv``."""

    name: str
    title: str
    columns: tuple[Column, ...]
    rows: list[tuple[Any, ...]]
    note: str = ""


@dataclass(frozen=True)
class Chart:
    """A chart's data in the JSON shape ``static/admin.js`` draws.

    ``kind`` "time": ``x`` are the Unix seconds of each day (its Vietnam midnight);
    "bars": ``x`` are category labels. ``series``: (label, values), values as long as x.
    """

    id: str
    title: str
    kind: str
    x: list[Any]
    series: Sequence[tuple[str, Sequence[int | float | None]]]
    y_label: str = ""

    def data(self) -> dict[str, Any]:
        """The JSON object of the chart."""
        return {
            "kind": self.kind,
            "x": self.x,
            "series": [{"label": label, "values": values} for label, values in self.series],
            "y_label": self.y_label,
        }


@dataclass(frozen=True)
class Card:
    """A headline figure."""

    label: str
    value: str


@dataclass
class PageData:
    """What a page shows; ``extra`` holds page-specific values for its template."""

    cards: list[Card] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def table(self, name: str) -> Table | None:
        """The table called ``name``."""
        return next((t for t in self.tables if t.name == name), None)


Builder = Callable[[Dashboard, Query, Staff], PageData]


@dataclass(frozen=True)
class Page:
    """A dashboard page: ``/admin/<slug>`` (the overview's slug is empty)."""

    slug: str
    title: str
    roles: frozenset[str]
    build: Builder
    period: bool = True  # the 7/30/90-day choice applies
    province: bool = True  # the province filter applies
    # Pages with actions or links per row have their own; the others show cards,
    # charts and tables as they come.
    template: str = "admin_board.html"

    @property
    def path(self) -> str:
        """The page's path."""
        return f"/admin/{self.slug}" if self.slug else "/admin"

    @property
    def name(self) -> str:
        """The page's name in CSV paths (``/admin/csv/<name>/<table>.csv``)."""
        return self.slug or "overview"


def number(value: int) -> str:
    """An integer the Vietnamese way: 12.345."""
    return f"{value:,}".replace(",", ".")


def percent(value: float) -> str:
    """A fraction as a Vietnamese percentage: 12,3 %."""
    return f"{value * 100:.1f}".replace(".", ",") + " %"


def cell(value: Any, column: Column) -> str:
    """A table cell as the page shows it."""
    if value is None:
        return "–"
    if column.kind == "share":
        return percent(value)
    if column.kind == "num" and isinstance(value, int):
        return number(value)
    if isinstance(value, dt.datetime):
        return format_timestamp(value)
    if isinstance(value, dt.date):
        return format_date(value)
    return str(value)


def to_csv(table: Table) -> str:
    """The table as CSV (UTF-8 with a BOM, so that spreadsheet programs read Vietnamese)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([c.name for c in table.columns])
    for row in table.rows:
        writer.writerow(
            [_csv_cell(value, column) for value, column in zip(row, table.columns, strict=True)]
        )
    return "\ufeff" + out.getvalue()


def _csv_cell(value: Any, column: Column) -> Any:
    if value is None:
        return ""
    if column.kind == "share":
        return f"{value:.4f}"
    if isinstance(value, dt.datetime):
        return value.astimezone(VIETNAM).isoformat(timespec="minutes")
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value)
    # A cell starting like a formula would be run by a spreadsheet program: quote it.
    return f"'{text}" if text[:1] in ("=", "+", "-", "@") and column.kind == "text" else text


def _midnight(day: dt.date) -> int:
    """The Unix seconds of a Vietnam day's first moment."""
    return int(dt.datetime.combine(day, dt.time(), VIETNAM).timestamp())


def _label(options: ProfileOptions, field_name: str, code: str | None) -> str:
    if code is None:
        return NO_VALUE
    return options.label(field_name, code) or code


def _channel(code: str) -> str:
    return CHANNEL_LABELS.get(code, code)


# -- overview ------------------------------------------------------------------------------


def overview(board: Dashboard, query: Query, staff: Staff) -> PageData:
    """Questions per day by channel, outcome shares, 👍/👎 and active members."""
    engine, since, until, province = board.engine, query.since, query.until, query.province
    per_day = stats.questions_per_day(engine, since, until, province)
    result = stats.outcomes(engine, since, until, province)
    active = stats.active_members(engine, since, until, province)
    days = query.day_list()
    channels = sorted({row.channel for row in per_day}, key=lambda c: (c not in CHANNEL_LABELS, c))
    counts = {(row.day, row.channel): row.count for row in per_day}
    series = [(_channel(c), [counts.get((d, c), 0) for d in days]) for c in channels]
    daily = Table(
        "questions_per_day",
        "Câu hỏi mỗi ngày theo kênh",
        (
            Column("day", "Ngày"),
            *(Column(c, _channel(c), "num") for c in channels),
            Column("total", "Tổng", "num"),
        ),
        [
            (
                d,
                *(counts.get((d, c), 0) for c in channels),
                sum(counts.get((d, c), 0) for c in channels),
            )
            for d in reversed(days)
        ],
    )
    shares = Table(
        "outcomes",
        "Kết quả trả lời",
        (
            Column("outcome", "Kết quả"),
            Column("count", "Số câu", "num"),
            Column("share", "Tỉ lệ", "share"),
        ),
        [
            (OUTCOME_LABELS.get(kind, kind), n, result.share(kind))
            for kind, n in result.counts.items()
        ],
        note="Tỉ lệ tính trên số câu hỏi; chuyển cán bộ là số lượt thành viên nhờ cán bộ trả lời.",
    )
    return PageData(
        cards=[
            Card("Câu hỏi", number(result.questions)),
            Card("Thành viên đã dùng", number(active)),
            Card("Trả lời từ mục hỏi đáp", percent(result.share("entry"))),
            Card("👍 Hữu ích", number(result.thumbs_up)),
            Card("👎 Chưa hữu ích", number(result.thumbs_down)),
            Card("Chuyển cán bộ", number(result.counts.get(stats.HANDOVER, 0))),
        ],
        charts=[
            Chart(
                "chart-questions",
                "Câu hỏi mỗi ngày theo kênh",
                "time",
                [_midnight(d) for d in days],
                series,
                "Câu hỏi",
            ),
            Chart(
                "chart-outcomes",
                "Kết quả trả lời",
                "bars",
                [OUTCOME_LABELS.get(k, k) for k in result.counts],
                [("Số câu", list(result.counts.values()))],
            ),
        ],
        tables=[shares, daily],
    )


# -- topics --------------------------------------------------------------------------------


def topics(board: Dashboard, query: Query, staff: Staff) -> PageData:
    """Most asked entries and categories; for admins, the largest unanswered groups."""
    counted = stats.top_entries(board.engine, query.since, query.until, query.province, limit=None)
    kb = board.kb
    per_category: dict[str, int] = defaultdict(int)
    rows = []
    for item in counted:
        entry = kb.get(item.key) if item.key else None
        category = kb.category_title(entry.category) if entry is not None else "(mục đã bỏ)"
        per_category[category] += item.count
        rows.append((item.key, entry.title if entry else "", category, item.count))
    top = rows[:20]
    categories = sorted(per_category.items(), key=lambda kv: (-kv[1], kv[0]))
    data = PageData(
        charts=[
            Chart(
                "chart-categories",
                "Câu hỏi theo nhóm chủ đề",
                "bars",
                [c for c, _ in categories],
                [("Câu hỏi", [n for _, n in categories])],
            ),
        ],
        tables=[
            Table(
                "entries",
                "Mục hỏi đáp được hỏi nhiều nhất",
                (
                    Column("entry_id", "Mã mục"),
                    Column("title", "Câu hỏi"),
                    Column("category", "Nhóm"),
                    Column("questions", "Số câu", "num"),
                ),
                top,
            ),
            Table(
                "categories",
                "Nhóm chủ đề",
                (Column("category", "Nhóm"), Column("questions", "Số câu", "num")),
                categories,
            ),
        ],
    )
    if staff.role in ADMIN_ONLY and board.review is not None:
        groups = board.review.queue.groups()[:20]
        data.tables.append(
            Table(
                "unanswered",
                "Nhóm câu hỏi chưa trả lời được (hàng chờ xem xét)",
                (
                    Column("group", "Nhóm"),
                    Column("question", "Câu hỏi tiêu biểu"),
                    Column("asked", "Số lần hỏi", "num"),
                    Column("reasons", "Lý do"),
                    Column("last_asked", "Hỏi gần nhất"),
                ),
                [(g.id, g.text, g.count, g.reasons_text(), g.last_at) for g in groups],
                note="Toàn bộ hàng chờ, không theo khoảng thời gian hay tỉnh đã chọn.",
            )
        )
    return data


# -- members -------------------------------------------------------------------------------


def members(board: Dashboard, query: Query, staff: Staff) -> PageData:
    """Active members by province (all 34), cooperative type and channel; new per week."""
    engine, options, province = board.engine, board.options, query.province
    by_province = {c.key: c.count for c in stats.members_by(engine, "province", province)}
    province_rows = [
        (choice.label, by_province.pop(choice.code, 0)) for choice in options.choices("province")
    ]
    province_rows += [(_label(options, "province", code), n) for code, n in by_province.items()]
    by_type = stats.members_by(engine, "coop_type", province)
    by_channel = stats.members_by(engine, "channel", province)
    weekly = stats.new_members_per_week(engine, query.since, query.until, province)
    total = sum(n for _, n in province_rows)
    count_col = Column("members", "Thành viên", "num")
    share_col = Column("share", "Tỉ lệ", "share")
    return PageData(
        cards=[
            Card("Thành viên đang hoạt động", number(total)),
            Card("Thành viên mới trong kỳ", number(sum(w.count for w in weekly))),
        ],
        charts=[
            Chart(
                "chart-weekly",
                "Thành viên mới mỗi tuần",
                "time",
                [_midnight(w.week_start) for w in weekly],
                [("Thành viên mới", [w.count for w in weekly])],
                "Thành viên",
            ),
            Chart(
                "chart-channels",
                "Thành viên theo kênh",
                "bars",
                [_channel(c.key or "") for c in by_channel],
                [("Thành viên", [c.count for c in by_channel])],
            ),
        ],
        tables=[
            Table(
                "provinces",
                "Theo tỉnh/thành",
                (Column("province", "Tỉnh/thành"), count_col, share_col),
                [(p, n, n / total if total else 0.0) for p, n in province_rows],
            ),
            Table(
                "coop_types",
                "Theo loại hình HTX",
                (Column("coop_type", "Loại hình"), count_col, share_col),
                [
                    (
                        _label(options, "coop_type", c.key),
                        c.count,
                        c.count / total if total else 0.0,
                    )
                    for c in by_type
                ],
            ),
            Table(
                "channels",
                "Theo kênh",
                (Column("channel", "Kênh"), count_col, share_col),
                [
                    (_channel(c.key or ""), c.count, c.count / total if total else 0.0)
                    for c in by_channel
                ],
            ),
            Table(
                "new_per_week",
                "Thành viên mới mỗi tuần",
                (
                    Column("week_start", "Tuần từ ngày"),
                    Column("iso_week", "Tuần"),
                    Column("new_members", "Thành viên mới", "num"),
                ),
                [
                    (w.week_start, f"{w.iso_week[0]}-W{w.iso_week[1]:02d}", w.count)
                    for w in reversed(weekly)
                ],
            ),
        ],
    )


# -- broadcasts ----------------------------------------------------------------------------


def broadcasts(board: Dashboard, query: Query, staff: Staff) -> PageData:
    """Each broadcast of the window with its deliveries; deliveries per day by state."""
    items = stats.broadcast_deliveries(board.engine, query.since, query.until)
    days = stats.delivery_days(items)
    day_list = query.day_list()
    by_day = {(d.day, d.status): d.count for d in days}
    statuses = [s for s in _DELIVERY_ORDER if any(d.status == s for d in days)]
    rows = []
    stoppable = set()
    for item in items:
        pending = item.counts.get("pending", 0) + item.counts.get("sending", 0)
        if item.status in ("draft", "sending"):
            stoppable.add(item.id)
        rows.append(
            (
                item.id,
                item.created_at,
                _segment(board, item.segment),
                item.recipients,
                BROADCAST_STATUS.get(item.status, item.status),
                item.counts.get("sent", 0),
                item.counts.get("blocked", 0),
                item.counts.get("failed", 0),
                item.counts.get("dropped", 0) + item.counts.get("unknown", 0),
                pending,
            )
        )
    return PageData(
        charts=[
            Chart(
                "chart-deliveries",
                "Tin thông báo theo ngày và trạng thái",
                "time",
                [_midnight(d) for d in day_list],
                [
                    (STATUS_LABELS.get(s, s), [by_day.get((d, s), 0) for d in day_list])
                    for s in statuses
                ],
                "Tin",
            ),
        ],
        tables=[
            Table(
                "broadcasts",
                "Thông báo",
                (
                    Column("id", "Số"),
                    Column("created_at", "Tạo lúc"),
                    Column("segment", "Gửi tới"),
                    Column("recipients", "Người nhận", "num"),
                    Column("status", "Trạng thái"),
                    Column("sent", "Đã gửi", "num"),
                    Column("blocked", "Chặn bot", "num"),
                    Column("failed", "Lỗi", "num"),
                    Column("dropped", "Bỏ/không rõ", "num"),
                    Column("pending", "Chờ gửi", "num"),
                ),
                rows,
            )
        ],
        extra={"stoppable": stoppable, "enabled": board.broadcasts is not None},
    )


def _segment(board: Dashboard, text: str) -> str:
    try:
        return Segment.from_json(text).describe(board.options)
    except (ValueError, TypeError, KeyError):
        return text


# -- reminders and training ----------------------------------------------------------------


def reminders(board: Dashboard, query: Query, staff: Staff) -> PageData:
    """Reminders per kind and rule or session by delivery state; seats per session."""
    counted = stats.reminder_deliveries(board.engine, query.since, query.until, query.province)
    sessions = board.training.all() if board.training is not None else []
    titles = {s.id: s.title for s in sessions}
    rules = {r.id: r.title for r in board.rules}
    pivot: dict[tuple[str, str], dict[str, int]] = {}
    for item in counted:
        pivot.setdefault((item.kind, item.ref), {})[item.status] = item.count
    statuses = ("sent", "unknown", "dropped", "blocked", "failed", "pending")
    rows = []
    for (kind, ref), counts in pivot.items():
        name = rules.get(ref, ref) if kind == "deadline" else _session_title(titles, ref)
        rows.append(
            (
                REMINDER_KINDS.get(kind, kind),
                name,
                *(counts.get(s, 0) for s in statuses),
                sum(counts.values()),
            )
        )
    shown = [s for s in sessions if s.starts_at >= query.since or s.ends_at >= query.since]
    session_rows = [
        (
            s.id,
            s.title,
            s.starts_at,
            _label(board.options, "province", s.province) if s.province else "Toàn quốc",
            s.status,
            s.capacity,
            s.registered,
        )
        for s in sorted(shown, key=lambda s: s.starts_at)
    ]
    return PageData(
        charts=[
            Chart(
                "chart-reminders",
                "Nhắc hẹn theo trạng thái",
                "bars",
                [STATUS_LABELS[s] for s in statuses],
                [
                    (
                        label,
                        [
                            sum(c.count for c in counted if c.kind == kind and c.status == s)
                            for s in statuses
                        ],
                    )
                    for kind, label in REMINDER_KINDS.items()
                    if any(c.kind == kind for c in counted)
                ],
            ),
            Chart(
                "chart-registrations",
                "Đăng ký theo buổi tập huấn",
                "bars",
                [f"#{r[0]}" for r in session_rows],
                [
                    ("Đã đăng ký", [r[6] for r in session_rows]),
                    ("Số chỗ", [r[5] for r in session_rows]),
                ],
            ),
        ],
        tables=[
            Table(
                "reminders",
                "Nhắc hẹn theo quy tắc và buổi tập huấn",
                (
                    Column("kind", "Loại"),
                    Column("rule", "Quy tắc / buổi"),
                    *(Column(s, STATUS_LABELS[s], "num") for s in statuses),
                    Column("total", "Tổng", "num"),
                ),
                rows,
                note="Tính theo thời điểm hẹn gửi trong khoảng đã chọn.",
            ),
            Table(
                "sessions",
                "Buổi tập huấn",
                (
                    Column("id", "Số"),
                    Column("title", "Tên buổi"),
                    Column("starts_at", "Bắt đầu"),
                    Column("province", "Tỉnh/thành"),
                    Column("status", "Trạng thái"),
                    Column("capacity", "Số chỗ", "num"),
                    Column("registered", "Đã đăng ký", "num"),
                ),
                session_rows,
                note="Các buổi diễn ra từ đầu khoảng đã chọn trở đi.",
            ),
        ],
    )


def _session_title(titles: dict[int, str], ref: str) -> str:
    try:
        return f"#{ref} {titles[int(ref)]}"
    except (ValueError, KeyError):
        return f"#{ref}"


# -- NLU models ----------------------------------------------------------------------------


def models(board: Dashboard, query: Query, staff: Staff) -> PageData:
    """The model registry's latest versions with their metrics and who deployed them."""
    records = board.registry.latest(30) if board.registry is not None else []
    deployed = next((r for r in records if r.status == "deployed"), None)
    previous = board.registry.previous() if board.registry is not None else None
    rows = [
        (
            r.version,
            MODEL_STATUS.get(r.status, r.status),
            r.created_at,
            r.created_by,
            r.examples,
            *_scores(r),
            r.deployed_by,
            r.deployed_at,
        )
        for r in records
    ]
    scored = [r for r in reversed(records) if r.metrics.get("heldout")]
    return PageData(
        charts=[
            Chart(
                "chart-models",
                "Độ chính xác trên tập kiểm tra giữ riêng",
                "bars",
                [r.version for r in scored],
                [
                    ("Độ chính xác", [round(r.metrics["heldout"]["accuracy"], 4) for r in scored]),
                    ("F1", [round(r.metrics["heldout"]["macro_f1"], 4) for r in scored]),
                ],
            ),
        ],
        tables=[
            Table(
                "models",
                "Các phiên bản mô hình",
                (
                    Column("version", "Phiên bản"),
                    Column("status", "Trạng thái"),
                    Column("created_at", "Tạo lúc"),
                    Column("created_by", "Người tạo"),
                    Column("examples", "Số câu mẫu", "num"),
                    Column("accuracy", "Độ chính xác", "share"),
                    Column("macro_f1", "F1", "share"),
                    Column("reviewed_accuracy", "Đúng câu đã gán nhãn", "share"),
                    Column("deployed_by", "Người triển khai"),
                    Column("deployed_at", "Triển khai lúc"),
                ),
                rows,
            )
        ],
        extra={"deployed": deployed, "previous": previous},
    )


def _scores(record: ModelRecord) -> tuple[float | None, float | None, float | None]:
    heldout = record.metrics.get("heldout") or {}
    reviewed = record.metrics.get("reviewed") or {}
    return (
        heldout.get("accuracy"),
        heldout.get("macro_f1"),
        reviewed.get("accuracy") if reviewed.get("n") else None,
    )


# -- review queue and roles (admins) -------------------------------------------------------


def review(board: Dashboard, query: Query, staff: Staff) -> PageData:
    """The open review groups, most asked first, with the intents to label them with."""
    if board.review is None:
        return PageData(extra={"groups": [], "intents": [], "enabled": False})
    chat = board.review
    groups = chat.queue.groups()[:50]
    intents = sorted(((chat.intent_name(i), i) for i in chat.queue.intents), key=lambda t: t[0])
    rows = [(g.id, g.text, g.count, g.reasons_text(), g.first_at, g.last_at) for g in groups]
    return PageData(
        cards=[
            Card("Câu hỏi chờ xem xét", number(sum(g.count for g in groups))),
            Card("Nhóm", number(len(groups))),
        ],
        tables=[
            Table(
                "groups",
                "Nhóm câu hỏi chờ xem xét",
                (
                    Column("group", "Nhóm"),
                    Column("question", "Câu hỏi tiêu biểu"),
                    Column("asked", "Số lần hỏi", "num"),
                    Column("reasons", "Lý do"),
                    Column("first_asked", "Hỏi lần đầu"),
                    Column("last_asked", "Hỏi gần nhất"),
                ),
                rows,
            )
        ],
        extra={"groups": groups, "intents": intents, "enabled": True},
    )


def roles(board: Dashboard, query: Query, staff: Staff) -> PageData:
    """Who has a staff or admin role."""
    people = stats.staff_members(board.engine)
    return PageData(
        tables=[
            Table(
                "roles",
                "Cán bộ và quản trị viên",
                (
                    Column("member_id", "Mã thành viên"),
                    Column("name", "Tên"),
                    Column("role", "Vai trò"),
                    Column("channel", "Kênh"),
                    Column("province", "Tỉnh/thành"),
                ),
                [
                    (
                        p.id,
                        p.name or "",
                        ROLE_LABELS.get(p.role, p.role),
                        _channel(p.channel),
                        _label(board.options, "province", p.province),
                    )
                    for p in people
                ],
                note="Đổi vai trò bằng lệnh /capquyen trong khung chat.",
            )
        ]
    )


STAFF: Final = frozenset(STAFF_ROLES)
PAGES: Final = (
    Page("", "Tổng quan", STAFF, overview),
    Page("topics", "Chủ đề", STAFF, topics, template="admin_topics.html"),
    Page("members", "Thành viên", STAFF, members),
    Page(
        "broadcasts",
        "Thông báo",
        STAFF,
        broadcasts,
        province=False,
        template="admin_broadcasts.html",
    ),
    Page("reminders", "Nhắc hẹn và tập huấn", STAFF, reminders),
    Page(
        "review",
        "Xem xét câu hỏi",
        ADMIN_ONLY,
        review,
        period=False,
        province=False,
        template="admin_review.html",
    ),
    Page(
        "models",
        "Mô hình NLU",
        ADMIN_ONLY,
        models,
        period=False,
        province=False,
        template="admin_models.html",
    ),
    Page("roles", "Vai trò", ADMIN_ONLY, roles, period=False, province=False),
)


def visible(pages: Iterable[Page], role: str) -> list[Page]:
    """The pages a role may open, in menu order."""
    return [p for p in pages if role in p.roles]


def page_named(name: str) -> Page | None:
    """The page called ``name`` (``overview`` for the overview)."""
    return next((p for p in PAGES if p.name == name), None)
