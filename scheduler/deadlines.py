"""Deadline rules (``scheduler/deadlines.yml``) and the due dates they give.

A rule's nominal date follows its recurrence; a nominal date on a Saturday,
Sunday or public holiday moves to the next working day. Holidays come from the
``holidays`` package (country VN, Tết included), never from a table here.
The financial year is the calendar year (the defaults' ``financial_year_end``).
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import holidays
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bot.clock import format_date
from bot.store.members import PROFILE_FIELDS
from knowledge.law.references import Reference
from knowledge.law.register import Register, load_register

__all__ = [
    "DEADLINES_FILE",
    "Due",
    "Rule",
    "RuleError",
    "due_dates",
    "format_date",
    "is_working_day",
    "load_rules",
    "next_working_day",
]

DEADLINES_FILE: Final = Path(__file__).resolve().parent / "deadlines.yml"
_ROMAN: Final = ("I", "II", "III", "IV")


class RuleError(ValueError):
    """The deadlines file is invalid; the message names the rule and the field."""


class Recurrence(BaseModel):
    """When a rule falls due (see the file's header)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["monthly", "quarterly", "annual", "after_year_end"]
    day: int | None = Field(default=None, ge=1, le=31)
    month: int | None = Field(default=None, ge=1, le=12)
    months: int | None = Field(default=None, ge=1, le=12)
    days: int | None = Field(default=None, ge=1, le=366)

    @model_validator(mode="after")
    def _fields_of_kind(self) -> Recurrence:
        needed = {
            "monthly": ("day",),
            "quarterly": (),
            "annual": ("month", "day"),
            "after_year_end": (),
        }[self.kind]
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            raise ValueError(f"recurrence {self.kind} needs {', '.join(missing)}")
        if self.kind == "after_year_end" and (self.months is None) == (self.days is None):
            raise ValueError("recurrence after_year_end needs exactly one of months, days")
        return self


class BasisPeriod(BaseModel):
    """The legal basis of a rule for the due dates in one period of law."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    start: dt.date | None = Field(default=None, alias="from")
    until: dt.date | None = None
    refs: tuple[Reference, ...] = Field(min_length=1)

    def covers(self, day: dt.date) -> bool:
        """True when a due date on ``day`` rests on this basis."""
        return (self.start is None or day >= self.start) and (
            self.until is None or day <= self.until
        )


class Rule(BaseModel):
    """One deadline rule."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9_]{1,40}$")
    title: str = Field(min_length=1, max_length=120)
    basis: tuple[BasisPeriod, ...] = Field(min_length=1)
    recurrence: Recurrence
    applies_to: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    offsets: tuple[int, ...] = (7, 2, 0)
    at: dt.time = dt.time(8, 0)
    unconfirmed: bool = False

    @model_validator(mode="after")
    def _periods_in_order(self) -> Rule:
        for earlier, later in zip(self.basis, self.basis[1:], strict=False):
            if earlier.until is None or later.start is None or later.start <= earlier.until:
                raise ValueError("basis periods must follow each other: until D, then from D+1")
        return self

    def refs_on(self, day: dt.date) -> tuple[Reference, ...]:
        """The references a due date on ``day`` rests on (the latest period when none covers it)."""
        for period in self.basis:
            if period.covers(day):
                return period.refs
        return self.basis[-1].refs

    def basis_text(self, day: dt.date) -> str:
        """The basis of a due date on ``day``: ``Nghị định 252/2026/NĐ-CP, Điều 10 khoản 3``."""
        return _register().cite(self.refs_on(day))

    def applies(self, profile: Mapping[str, str | None]) -> bool:
        """True unless the profile sets a field to a value outside ``applies_to``."""
        for field_name, allowed in self.applies_to.items():
            value = profile.get(field_name)
            if value is not None and value not in allowed:
                return False
        return True


@dataclass(frozen=True, slots=True)
class Due:
    """One occurrence of a rule: the period it covers and its (working-day) due date."""

    rule: Rule
    period: str
    nominal: dt.date
    date: dt.date

    @property
    def moved(self) -> bool:
        """True when the nominal date was not a working day."""
        return self.date != self.nominal


@functools.cache
def _register() -> Register:
    return load_register()


@functools.cache
def _vn_holidays(year: int) -> frozenset[dt.date]:
    return frozenset(holidays.country_holidays("VN", years=year))


def is_working_day(day: dt.date) -> bool:
    """Monday to Friday and not a Vietnamese public holiday."""
    return day.weekday() < 5 and day not in _vn_holidays(day.year)


def next_working_day(day: dt.date) -> dt.date:
    """``day`` itself if it is a working day, else the next one."""
    while not is_working_day(day):
        day += dt.timedelta(days=1)
    return day


def _month_end(year: int, month: int) -> dt.date:
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def _add_months(year: int, month: int, count: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + count
    return index // 12, index % 12 + 1


def _occurrences(rule: Rule, year: int) -> Iterator[tuple[str, dt.date]]:
    """(period, nominal date) pairs whose nominal date may fall in ``year`` or next to it."""
    r = rule.recurrence
    if r.kind == "monthly":
        assert r.day is not None
        for offset in range(-2, 13):
            p_year, p_month = _add_months(year, 1, offset)
            d_year, d_month = _add_months(p_year, p_month, 1)
            day = min(r.day, calendar.monthrange(d_year, d_month)[1])
            yield f"tháng {p_month:02d}/{p_year}", dt.date(d_year, d_month, day)
    elif r.kind == "quarterly":
        for p_year in (year - 1, year):
            for quarter in range(1, 5):
                d_year, d_month = _add_months(p_year, quarter * 3, 1)
                yield f"quý {_ROMAN[quarter - 1]}/{p_year}", _month_end(d_year, d_month)
    elif r.kind == "annual":
        assert r.month is not None and r.day is not None
        for p_year in (year - 1, year):
            day = min(r.day, calendar.monthrange(p_year, r.month)[1])
            yield f"năm {p_year}", dt.date(p_year, r.month, day)
    else:
        for fiscal in (year - 2, year - 1, year):
            year_end = dt.date(fiscal, 12, 31)
            if r.months is not None:
                d_year, d_month = _add_months(fiscal, 12, r.months)
                nominal = _month_end(d_year, d_month)
            else:
                assert r.days is not None
                nominal = year_end + dt.timedelta(days=r.days)
            yield f"năm tài chính {fiscal}", nominal


def due_dates(
    rules: Iterable[Rule],
    start: dt.date,
    end: dt.date,
    profile: Mapping[str, str | None] | None = None,
) -> list[Due]:
    """Every due date (after moving to a working day) from ``start`` to ``end`` inclusive."""
    found: dict[tuple[str, str], Due] = {}  # neighbouring years yield some periods twice
    for rule in rules:
        if profile is not None and not rule.applies(profile):
            continue
        for year in range(start.year, end.year + 1):
            for period, nominal in _occurrences(rule, year):
                due = Due(rule, period, nominal, next_working_day(nominal))
                if start <= due.date <= end:
                    found.setdefault((rule.id, period), due)
    return sorted(found.values(), key=lambda d: (d.date, d.rule.id, d.nominal))


def load_rules(path: Path = DEADLINES_FILE) -> tuple[Rule, ...]:
    """Reads and validates the rules; raises ``RuleError`` naming the rule and field."""
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RuleError(f"{path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise RuleError(f"{path}: expected a 'rules' list")
    defaults = data.get("defaults") or {}
    rules: list[Rule] = []
    for index, raw in enumerate(data["rules"]):
        if not isinstance(raw, dict):
            raise RuleError(f"{path}: rule #{index + 1} is not a mapping")
        values = {key: defaults[key] for key in ("offsets", "at") if key in defaults}
        values.update(raw)
        try:
            rule = Rule.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise RuleError(
                f"{path}: rule {raw.get('id', index + 1)!r}, {where}: {first['msg']}"
            ) from exc
        unknown = set(rule.applies_to) - set(PROFILE_FIELDS)
        if unknown:
            raise RuleError(
                f"{path}: rule {rule.id!r}, applies_to: not profile fields: {sorted(unknown)} "
                f"(known: {', '.join(PROFILE_FIELDS)})"
            )
        if any(rule.id == other.id for other in rules):
            raise RuleError(f"{path}: rule id {rule.id!r} appears twice")
        rules.append(rule)
    return tuple(rules)
