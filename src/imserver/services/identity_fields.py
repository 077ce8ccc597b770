"""The three identity fields: validation, normalisation and masking. Pure functions.

* Resident ID number (GB 11643-1999): 18 characters, a real birth date that is
  not in the future, a known province code, and the ISO 7064 MOD 11-2 check
  digit (``x`` is upper-cased). python-stdnum's ``cn.ric`` computes the check
  digit and the birth date.
* Mobile phone: a mainland number, 11 digits starting ``1[3-9]``, optionally
  written with ``+86``; spaces and hyphens are ignored.
* Legal name: 1-64 characters after NFC normalisation, no digits, no control
  characters (the middle dot of names like 阿依古丽·买买提 is fine).

Error details never repeat the value: they end up in responses and logs.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from stdnum.cn import ric
from stdnum.exceptions import InvalidComponent

from ..domain.errors import BadRequest, Code

# GB/T 2260 province-level codes (the first two digits), plus 81/82/83 of the
# residence permits for Hong Kong, Macao and Taiwan residents (GB 11643 format).
PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 63 64 65 81 82 83".split()  # noqa: SIM905
)
EARLIEST_BIRTH_YEAR = 1900  # no living holder was born earlier; catches a mistyped century
MAX_LEGAL_NAME_CHARS = 64  # longer than any name on a resident ID card
PHONE_RE = re.compile(r"^(?:\+86)?(1[3-9]\d{9})$")
_PHONE_SEPARATORS = str.maketrans("", "", " -")


def normalise_id_number(value: str, *, today: date) -> str:
    """The canonical 18-character form, or BadRequest(INVALID_ID_NUMBER) saying what is wrong.

    The steps of ``ric.validate`` but one: stdnum also requires the six-digit
    region code to have existed in the birth year, which refuses real numbers
    (the code is where the card was issued, often a district created after the
    holder's birth) and new districts its table does not know yet. The two-digit
    province prefix is checked instead: those codes do not change.
    """
    number = ric.compact(unicodedata.normalize("NFKC", value))
    if len(number) != 18:
        raise BadRequest("a resident ID number has 18 characters", Code.INVALID_ID_NUMBER)
    if not number[:17].isascii() or not number[:17].isdigit():
        raise BadRequest("the first 17 characters of an ID number are digits", Code.INVALID_ID_NUMBER)
    if number[-1] != ric.calc_check_digit(number):  # ISO 7064 MOD 11-2
        raise BadRequest("the ID number's check digit is wrong", Code.INVALID_ID_NUMBER)
    try:
        born = ric.get_birth_date(number)
    except InvalidComponent as exc:
        raise BadRequest("the ID number's birth date is not a date", Code.INVALID_ID_NUMBER) from exc
    if born.year < EARLIEST_BIRTH_YEAR or born > today:
        raise BadRequest("the ID number's birth date is out of range", Code.INVALID_ID_NUMBER)
    if number[:2] not in PROVINCES:
        raise BadRequest("the ID number's region code is not valid", Code.INVALID_ID_NUMBER)
    return number


def normalise_phone(value: str) -> str:
    """The 11-digit national number, or BadRequest(INVALID_PHONE)."""
    match = PHONE_RE.match(unicodedata.normalize("NFKC", value).strip().translate(_PHONE_SEPARATORS))
    if not match:
        raise BadRequest("a mainland mobile number has 11 digits starting 13-19, optionally +86", Code.INVALID_PHONE)
    return match.group(1)


def clean_legal_name(value: str) -> str:
    name = unicodedata.normalize("NFC", value).strip()
    if (
        not 1 <= len(name) <= MAX_LEGAL_NAME_CHARS
        or any(c.isdigit() for c in name)
        or any(unicodedata.category(c).startswith("C") for c in name)
    ):
        raise BadRequest(
            f"a legal name has 1-{MAX_LEGAL_NAME_CHARS} characters, no digits or control characters",
            Code.INVALID_LEGAL_NAME,
        )
    return name


# -- masking, for the reviewer's view ------------------------------------------------------


def mask_name(name: str) -> str:
    """First character and one star, whatever the length: 张三丰 → 张*."""
    return name[:1] + "*"


def mask_id_number(number: str) -> str:
    """First 4 and last 4 kept (region prefix, order and check digit): 1101**********002X."""
    return number[:4] + "*" * (len(number) - 8) + number[-4:]


def mask_phone(phone: str) -> str:
    """138****5678."""
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]
