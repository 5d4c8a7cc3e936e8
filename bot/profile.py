"""Profile choices offered by /hoso (provinces, cooperative types, roles, VAT period), as data."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from nlu.textnorm import strip_diacritics

__all__ = [
    "PROFILE_STEPS",
    "Choice",
    "ProfileOptions",
    "ProfileStep",
    "folded",
    "load_profile_options",
]

OPTIONS_FILE = Path(__file__).with_name("profile_options.yml")


@dataclass(frozen=True, slots=True)
class Choice:
    """One option: the stored code and the label members see."""

    code: str
    label: str


@dataclass(frozen=True, slots=True)
class ProfileStep:
    """One question of the /hoso flow."""

    key: str  # short key used in button payloads
    field: str  # the members column it sets
    question: str
    summary: str  # the label in profile summaries


# The flow's order; each step's answer is stored at once, so a member may stop anywhere.
PROFILE_STEPS = (
    ProfileStep("p", "province", "Bước 1/4 — HTX của bạn ở tỉnh, thành phố nào?", "Tỉnh/thành"),
    ProfileStep("t", "coop_type", "Bước 2/4 — Loại hình của HTX?", "Loại hình"),
    ProfileStep("r", "coop_role", "Bước 3/4 — Vai trò của bạn trong HTX?", "Vai trò"),
    ProfileStep(
        "v", "vat_period", "Bước 4/4 — HTX khai thuế GTGT theo tháng hay quý?", "Khai GTGT"
    ),
)


@dataclass(frozen=True)
class ProfileOptions:
    """Choices per profile field."""

    by_field: dict[str, tuple[Choice, ...]]

    def choices(self, field: str) -> tuple[Choice, ...]:
        """The options of one field, in display order."""
        return self.by_field[field]

    def label(self, field: str, code: str | None) -> str | None:
        """The label of a stored code (None when unset or no longer offered)."""
        return next((c.label for c in self.by_field.get(field, ()) if c.code == code), None)

    def find(self, field: str, text: str) -> str | None:
        """The code a person typed as a code or a label ("Hà Nội", "ha noi", "ha_noi")."""
        wanted = folded(text)
        for choice in self.by_field.get(field, ()):
            if wanted in (folded(choice.code), folded(choice.label)):
                return choice.code
        return None

    def is_valid(self, field: str, code: str) -> bool:
        """True when ``code`` is one of the field's options."""
        return any(c.code == code for c in self.by_field.get(field, ()))


def folded(text: str) -> str:
    """Lower case, no diacritics, no punctuation: how typed labels are compared."""
    plain = strip_diacritics(text.casefold()).replace("_", " ")
    return " ".join("".join(ch if ch.isalnum() else " " for ch in plain).split())


_FILE_KEYS = {
    "province": "provinces",
    "coop_type": "coop_types",
    "coop_role": "coop_roles",
    "vat_period": "vat_periods",
}


@cache
def load_profile_options(path: Path = OPTIONS_FILE) -> ProfileOptions:
    """Reads the options file; raises ``ValueError`` when it is malformed."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    by_field: dict[str, tuple[Choice, ...]] = {}
    for field, key in _FILE_KEYS.items():
        items = raw.get(key) if isinstance(raw, dict) else None
        if not isinstance(items, list) or not items:
            raise ValueError(f"{path}: '{key}' must be a non-empty list")
        choices = tuple(Choice(str(item["code"]), str(item["label"])) for item in items)
        codes = [c.code for c in choices]
        if len(set(codes)) != len(codes):
            raise ValueError(f"{path}: duplicate codes in '{key}'")
        for code in codes:
            if not code.isascii() or len(code) > 20 or not code.replace("_", "").isalnum():
                raise ValueError(f"{path}: code {code!r} must be [a-z0-9_], at most 20 chars")
        by_field[field] = choices
    return ProfileOptions(by_field)
