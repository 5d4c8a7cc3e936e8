"""Deadline rules: due dates over several years, moved off weekends and Vietnamese holidays."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.profile import load_profile_options
from scheduler.deadlines import (
    RuleError,
    due_dates,
    is_working_day,
    load_rules,
    next_working_day,
)

RULES = load_rules()
D = dt.date


def dues(rule_id: str, year: int) -> dict[str, tuple[dt.date, dt.date]]:
    """period -> (nominal, due) for one rule's dates falling in ``year``."""
    rule = next(r for r in RULES if r.id == rule_id)
    return {
        d.period: (d.nominal, d.date) for d in due_dates([rule], D(year, 1, 1), D(year, 12, 31))
    }


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (D(2026, 11, 20), D(2026, 11, 20)),  # a Friday
        (D(2026, 11, 21), D(2026, 11, 23)),  # Saturday -> Monday
        (D(2026, 2, 16), D(2026, 2, 23)),  # Tết 2026: 16-20/02, then the weekend
        (D(2027, 2, 4), D(2027, 2, 11)),  # Tết 2027: 04-10/02
        (D(2026, 4, 30), D(2026, 5, 4)),  # 30/4 and 1/5, then the weekend
        (D(2027, 4, 30), D(2027, 5, 4)),  # 30/4 Fri, 1/5 Sat, observed Mon 3/5
        (D(2026, 8, 31), D(2026, 9, 3)),  # 31/8 substituted day off, 1-2/9 National Day
        (D(2027, 9, 2), D(2027, 9, 6)),  # 2-3/9, then the weekend
        (D(2026, 1, 1), D(2026, 1, 2)),  # New Year's Day
    ],
)
def test_next_working_day(day, expected):
    assert next_working_day(day) == expected
    assert is_working_day(expected)


def test_monthly_vat_returns_over_two_years():
    assert dues("gtgt_thang", 2026) == {
        "tháng 12/2025": (D(2026, 1, 20), D(2026, 1, 20)),
        "tháng 01/2026": (D(2026, 2, 20), D(2026, 2, 23)),  # 4th day of Tết, then weekend
        "tháng 02/2026": (D(2026, 3, 20), D(2026, 3, 20)),
        "tháng 03/2026": (D(2026, 4, 20), D(2026, 4, 20)),
        "tháng 04/2026": (D(2026, 5, 20), D(2026, 5, 20)),
        "tháng 05/2026": (D(2026, 6, 20), D(2026, 6, 22)),  # Saturday
        "tháng 06/2026": (D(2026, 7, 20), D(2026, 7, 20)),
        "tháng 07/2026": (D(2026, 8, 20), D(2026, 8, 20)),
        "tháng 08/2026": (D(2026, 9, 20), D(2026, 9, 21)),  # Sunday
        "tháng 09/2026": (D(2026, 10, 20), D(2026, 10, 20)),
        "tháng 10/2026": (D(2026, 11, 20), D(2026, 11, 20)),
        "tháng 11/2026": (D(2026, 12, 20), D(2026, 12, 21)),  # Sunday
    }
    assert len(dues("gtgt_thang", 2027)) == 12


def test_quarterly_vat_returns_include_the_fourth_quarter_of_the_year_before():
    assert dues("gtgt_quy", 2026) == {
        "quý IV/2025": (D(2026, 1, 31), D(2026, 2, 2)),  # Saturday
        "quý I/2026": (D(2026, 4, 30), D(2026, 5, 4)),  # 30/4, 1/5, weekend
        "quý II/2026": (D(2026, 7, 31), D(2026, 7, 31)),
        "quý III/2026": (D(2026, 10, 31), D(2026, 11, 2)),  # Saturday
    }
    assert dues("gtgt_quy", 2028)["quý IV/2027"] == (D(2028, 1, 31), D(2028, 1, 31))


def test_annual_rules_and_leap_years():
    assert dues("quyet_toan_tndn", 2026) == {"năm tài chính 2025": (D(2026, 3, 31), D(2026, 3, 31))}
    # 90 days after 31/12: 31/03 in a common year, 30/03 in a leap year.
    assert dues("bao_cao_tai_chinh", 2027) == {
        "năm tài chính 2026": (D(2027, 3, 31), D(2027, 3, 31))
    }
    assert dues("bao_cao_tai_chinh", 2028) == {
        "năm tài chính 2027": (D(2028, 3, 30), D(2028, 3, 30))
    }
    assert dues("dai_hoi_thuong_nien", 2026) == {
        "năm tài chính 2025": (D(2026, 4, 30), D(2026, 5, 4))
    }
    assert dues("cap_nhat_thong_tin", 2029) == {"năm 2029": (D(2029, 12, 15), D(2029, 12, 17))}


def test_profiles_select_the_rules():
    year = (D(2027, 1, 1), D(2027, 12, 31))
    quarterly = {d.rule.id for d in due_dates(RULES, *year, {"vat_period": "quarterly"})}
    assert "gtgt_quy" in quarterly and "gtgt_thang" not in quarterly
    group = {d.rule.id for d in due_dates(RULES, *year, {"coop_type": "to_hop_tac"})}
    assert "dai_hoi_thuong_nien" not in group and "gtgt_thang" in group  # VAT period unknown


def test_rules_name_only_known_profile_values():
    options = load_profile_options()
    for rule in RULES:
        for field, allowed in rule.applies_to.items():
            assert {c.code for c in options.choices(field)} >= set(allowed), rule.id
        assert rule.basis and rule.offsets == (7, 2, 0) and rule.at == dt.time(8, 0)


def test_an_invalid_rule_is_named(tmp_path: Path):
    bad = tmp_path / "deadlines.yml"
    bad.write_text(
        "rules:\n  - id: thue_x\n    title: X\n    basis: [{refs: [{doc: XYZ}]}]\n"
        "    recurrence: {kind: monthly}\n",
        encoding="utf-8",
    )
    with pytest.raises(RuleError, match=r"thue_x.*recurrence"):
        load_rules(bad)
    bad.write_text(
        "rules:\n  - id: a\n    title: X\n    basis: [{refs: [{doc: XYZ}]}]\n"
        "    recurrence: {kind: weekly}\n"
    )
    with pytest.raises(RuleError, match="'a'"):
        load_rules(bad)


def test_coopbot_deadlines_prints_the_year_the_vietnamese_way():
    result = CliRunner().invoke(
        app, ["deadlines", "--year", "2027", "--profile", "vat_period=quarterly"]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(
        "01/02/2027  Nộp tờ khai thuế GTGT quý — quý IV/2026 (dời từ 31/01/2027)"
    )
    assert all("GTGT tháng" not in line for line in lines)
    report = [line for line in lines if line.startswith("31/03/2027  Nộp báo cáo tài chính năm")]
    assert len(report) == 1 and report[0].endswith("[cần kiểm tra lại]")
    bad = CliRunner().invoke(app, ["deadlines", "--profile", "tinh=ha_noi"])
    assert bad.exit_code == 2
