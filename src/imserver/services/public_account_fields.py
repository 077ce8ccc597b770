"""The fields of a public-account application and of a post: validation and
normalisation (Art. 7). Pure functions; each failure names its field with a code.

* Name: 2-64 characters after NFC, no control characters; compared and searched
  by :func:`imserver.policy.public_accounts.name_key`.
* Category: one of :class:`~imserver.domain.policy_types.AccountCategory`.
* Operator entity: required for organisations (the name on the credit-code
  certificate), none for individuals (the owner's verified identity is the operator).
* Unified social credit code (GB 32100-2015): required for organisations,
  optional for ``other``, refused for individuals; 18 characters with a valid
  check character (python-stdnum ``cn.uscc``, which also checks the
  organisation-code check digit inside it).
* News licence (``news_unit``, ``news_service_licensee``): the Internet news
  information service licence number and its expiry, which must be in the future.
* Posts: a title and a body; a reprint carries its source (name, http(s) URL,
  original author, original title) and no other kind carries one.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from stdnum.cn import uscc
from stdnum.exceptions import ValidationError

from ..domain.errors import BadRequest, Code
from ..domain.policy_types import AccountCategory, PostKind
from ..policy import provinces
from ..policy.public_accounts import LICENSED, ORGANISATIONS

NAME_MIN, NAME_MAX = 2, 64  # short names are squatted; 64 fits any organisation's short name
DESCRIPTION_MAX = 1000  # a profile blurb, not an article
OPERATOR_MAX = 128  # the longest registered Chinese organisation names are ~60 characters
# Licence numbers as printed (e.g. 11220180001): letters, digits and hyphens.
LICENCE_RE = re.compile(r"^[A-Za-z0-9\-]{6,64}$")
TITLE_MAX = 200
BODY_MAX = 20_000  # a long article; the frame limit (64 KiB) must still hold it
SOURCE_FIELD_MAX = 200
SOURCE_URL_MAX = 2048
REASON_MAX = 2000


def _text(value: str) -> str:
    return unicodedata.normalize("NFC", value).strip()


def _has_control(value: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in value)


def clean_name(value: str) -> str:
    name = " ".join(_text(value).split())
    if not NAME_MIN <= len(name) <= NAME_MAX or _has_control(name):
        raise BadRequest(f"the name must be {NAME_MIN}-{NAME_MAX} printable characters", Code.INVALID_ACCOUNT_NAME)
    return name


def clean_description(value: str) -> str:
    text = _text(value)
    if len(text) > DESCRIPTION_MAX:
        raise BadRequest(f"the description is at most {DESCRIPTION_MAX} characters")
    return text


def clean_category(value: str) -> AccountCategory:
    try:
        return AccountCategory(value)
    except ValueError as exc:
        known = ", ".join(c.value for c in AccountCategory)
        raise BadRequest(f"unknown category {value!r}; one of {known}", Code.UNKNOWN_CATEGORY) from exc


@dataclass(frozen=True, slots=True)
class Operator:
    """Who runs the account, as filed: entity name, credit code, news licence."""

    name: str | None
    credit_code: str | None
    licence_number: str | None
    licence_expires_at: datetime | None


def clean_operator(
    category: AccountCategory,
    *,
    name: str | None,
    credit_code: str | None,
    licence_number: str | None,
    licence_expires_at: datetime | None,
    now: datetime,
) -> Operator:
    """Validate the operator facts a category needs (module docstring)."""
    org = category in ORGANISATIONS
    name = _text(name) if name else None
    if org and not name:
        raise BadRequest(f"a {category.value} account names its operating organisation", Code.INVALID_OPERATOR)
    if category is AccountCategory.INDIVIDUAL and name:
        raise BadRequest("an individual account has no operator entity: it is its owner", Code.INVALID_OPERATOR)
    if name and (len(name) > OPERATOR_MAX or _has_control(name)):
        raise BadRequest(f"the operator name is at most {OPERATOR_MAX} printable characters", Code.INVALID_OPERATOR)
    code = _credit_code(category, credit_code)
    number, expires = _licence(category, licence_number, licence_expires_at, now)
    return Operator(name, code, number, expires)


def _credit_code(category: AccountCategory, value: str | None) -> str | None:
    if not value:
        if category in ORGANISATIONS:
            raise BadRequest(
                f"a {category.value} account gives its unified social credit code", Code.INVALID_CREDIT_CODE
            )
        return None
    if category is AccountCategory.INDIVIDUAL:
        raise BadRequest("an individual account has no unified social credit code", Code.INVALID_CREDIT_CODE)
    try:
        return uscc.validate(unicodedata.normalize("NFKC", value))
    except ValidationError as exc:
        raise BadRequest(
            f"the unified social credit code is not valid: {exc.message}", Code.INVALID_CREDIT_CODE
        ) from exc


def _licence(
    category: AccountCategory, number: str | None, expires: datetime | None, now: datetime
) -> tuple[str | None, datetime | None]:
    if category not in LICENSED:
        if number or expires:
            raise BadRequest("only news categories give a news licence", Code.INVALID_LICENCE)
        return None, None
    if not number or expires is None:
        raise BadRequest(f"a {category.value} account gives its news licence number and expiry", Code.INVALID_LICENCE)
    number = unicodedata.normalize("NFKC", number).strip()
    if not LICENCE_RE.match(number):
        raise BadRequest("the licence number is 6-64 letters, digits or hyphens", Code.INVALID_LICENCE)
    if expires.tzinfo is None:
        raise BadRequest("the licence expiry needs a time zone (e.g. 2027-01-01T00:00:00Z)", Code.INVALID_LICENCE)
    if expires <= now:
        raise BadRequest("the news licence has expired", Code.INVALID_LICENCE)
    return number, expires


def clean_reason(value: str) -> str:
    text = _text(value)
    if not 1 <= len(text) <= REASON_MAX:
        raise BadRequest(f"a reason is 1-{REASON_MAX} characters")
    return text


# -- posts ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Source:
    """Where a reprinted piece of news came from (Art. 7 ¶2)."""

    name: str
    url: str
    author: str
    title: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "url": self.url, "author": self.author, "title": self.title}


def clean_post_kind(value: str) -> PostKind:
    try:
        return PostKind(value)
    except ValueError as exc:
        known = ", ".join(k.value for k in PostKind)
        raise BadRequest(f"unknown post kind {value!r}; one of {known}", Code.INVALID_POST) from exc


def clean_post(
    kind: PostKind, title: str, body: str, source: dict[str, str | None] | None
) -> tuple[str, str, Source | None]:
    title, body = _text(title), body.strip()
    if not 1 <= len(title) <= TITLE_MAX or _has_control(title):
        raise BadRequest(f"a title is 1-{TITLE_MAX} printable characters", Code.INVALID_POST)
    if not 1 <= len(body) <= BODY_MAX:
        raise BadRequest(f"a body is 1-{BODY_MAX} characters", Code.INVALID_POST)
    if kind is not PostKind.NEWS_REPRINT:
        if source:
            raise BadRequest("only a news_reprint carries a source", Code.INVALID_POST)
        return title, body, None
    fields = {k: _text(v) if isinstance(v, str) else "" for k, v in (source or {}).items()}
    missing = [k for k in ("name", "url", "author", "title") if not fields.get(k)]
    if missing:
        raise BadRequest(
            f"a reprint names its source: missing {', '.join(missing)}", Code.REPRINT_SOURCE_MISSING, missing=missing
        )
    for key in ("name", "author", "title"):
        if len(fields[key]) > SOURCE_FIELD_MAX:
            raise BadRequest(f"source {key} is at most {SOURCE_FIELD_MAX} characters", Code.INVALID_POST)
    url = fields["url"]
    parts = urlsplit(url)
    if len(url) > SOURCE_URL_MAX or parts.scheme not in ("http", "https") or not parts.netloc:
        raise BadRequest("the source URL is an http(s) URL", Code.REPRINT_SOURCE_MISSING, missing=["url"])
    return title, body, Source(fields["name"], url, fields["author"], fields["title"])


def clean_province(credit_code: str | None, declared: str | None) -> str:
    """The province an account is registered in (Art. 3): its credit code's region, else the
    province the applicant declares (a GB/T 2260 two-digit code); a contradiction is refused."""
    declared = declared.strip() if declared else None
    if declared is not None and declared not in provinces.PROVINCES:
        raise BadRequest(
            f"province {declared!r} is not a GB/T 2260 provincial code (e.g. 11 Beijing, 44 Guangdong)",
            Code.INVALID_PROVINCE,
        )
    derived = provinces.of_credit_code(credit_code) if credit_code else None
    if derived is not None and declared is not None and declared != derived:
        raise BadRequest(
            f"the credit code is registered in province {derived}, not {declared}", Code.INVALID_PROVINCE
        )
    province = derived or declared
    if province is None:
        raise BadRequest("declare the province you are registered in (province)", Code.INVALID_PROVINCE)
    return province
