"""Masks personal data in a member's question before anyone reviews it or trains on it.

Masked: e-mail addresses, Vietnamese phone numbers (``0912 345 678``,
``0912.345.678``, ``+84 912 345 678``, landlines of 11 digits), ID card
numbers (CMND: 9 digits; CCCD: 12 digits), passport numbers (a letter and 7
or 8 digits: ``C1234567``) and any other run of 9 or more digits (a personal
tax code, a bank account). Amounts written with thousands
separators ("100.000.000 đồng") and years stay: they carry the meaning of the
question and identify nobody.
"""

from __future__ import annotations

import re

__all__ = ["EMAIL_MASK", "ID_MASK", "PASSPORT_MASK", "PHONE_MASK", "mask_personal_data"]

EMAIL_MASK = "[EMAIL]"
PHONE_MASK = "[SĐT]"
ID_MASK = "[SỐ ID]"
PASSPORT_MASK = "[SỐ HỘ CHIẾU]"

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
# A phone number: +84 / 84 / 0, then digits in groups separated by one space, dot or dash.
_PHONE = re.compile(r"(?<![\w+])(?:\+84|84|0)(?:[ .-]?\d){8,10}(?!\w)")
_LONG_NUMBER = re.compile(r"(?<!\w)\d{9,}(?!\w)")
_PASSPORT = re.compile(r"(?<!\w)[A-Za-z]\d{7,8}(?!\w)")


def _phone(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    if digits.startswith("84"):
        digits = "0" + digits[2:]
    text = match.group(0)
    if len(digits) in (10, 11):
        return PHONE_MASK
    # Not a phone number's length: a long ID written in one run is masked next.
    return text


def mask_personal_data(text: str) -> str:
    """Returns ``text`` with e-mail addresses, phone numbers and ID numbers replaced by tags."""
    text = _EMAIL.sub(EMAIL_MASK, text)
    text = _PHONE.sub(_phone, text)
    text = _PASSPORT.sub(PASSPORT_MASK, text)
    return _LONG_NUMBER.sub(ID_MASK, text)
