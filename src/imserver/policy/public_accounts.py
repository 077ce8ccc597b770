"""Pure rules of public accounts (Art. 7): the news permission with its expiries,
the badge, and names that impersonate party, government, military or news bodies.

No I/O and no clock of its own: every function takes ``now``, so the same facts
give the same answer and the tests move time by passing another ``now``.

News permission (Art. 7 ¶2). "Public accounts opened by news work units and news
websites may be used to disseminate or reprint current affairs-type news, public
accounts set up by non-news work units who have obtained Internet news
information service qualifications may be used to reprint [...]. Other public
accounts may not [...] without approval." So:

* the category gives the default (``news.BY_CATEGORY``), but only while the
  licence the news categories hold is in force: an expired licence takes the
  permission away on its own;
* a ``compliance`` approval (reference, scope, expiry) raises it to its scope
  while it is neither expired nor revoked;
* the account itself can never set it: it is derived here, nowhere stored.

The badge (Art. 7 ¶3: "indicate public accounts that may disseminate or reprint
current affairs-type news with a symbol") is a function of the permission only.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from ..domain.policy_types import AccountCategory, NewsPermission
from .news import BY_CATEGORY

# Categories whose news permission rests on a licence: they must give its number and expiry.
LICENSED = frozenset({AccountCategory.NEWS_UNIT, AccountCategory.NEWS_SERVICE_LICENSEE})
# Categories that are organisations and so hold a unified social credit code (GB 32100).
ORGANISATIONS = frozenset(
    {
        AccountCategory.NEWS_UNIT,
        AccountCategory.NEWS_SERVICE_LICENSEE,
        AccountCategory.GOVERNMENT,
        AccountCategory.ENTERPRISE,
        AccountCategory.PUBLIC_INSTITUTION,
        AccountCategory.PEOPLES_ORGANIZATION,
    }
)


@dataclass(frozen=True, slots=True)
class Approval:
    """A compliance operator's news approval for one account, as recorded."""

    scope: NewsPermission  # publish | reprint
    expires_at: datetime
    revoked: bool = False


@dataclass(frozen=True, slots=True)
class NewsFacts:
    """What the permission is derived from."""

    category: AccountCategory
    licence_expires_at: datetime | None
    approvals: tuple[Approval, ...] = ()


def news_permission(facts: NewsFacts, now: datetime) -> NewsPermission:
    """The permission in force at ``now``: the licensed category default, raised by live approvals."""
    category = AccountCategory(facts.category)
    best = NewsPermission.NONE
    if category in LICENSED:
        if facts.licence_expires_at is not None and facts.licence_expires_at > now:
            best = BY_CATEGORY[category]
    else:
        best = BY_CATEGORY[category]
    for approval in facts.approvals:
        if not approval.revoked and approval.expires_at > now and approval.scope.rank > best.rank:
            best = approval.scope
    return best


def valid_until(facts: NewsFacts, now: datetime) -> datetime | None:
    """The earliest expiry after ``now`` that could change the permission (None: nothing expires).

    A snapshot computed at ``now`` must be recomputed from then on.
    """
    times = [a.expires_at for a in facts.approvals if not a.revoked and a.expires_at > now]
    if facts.licence_expires_at is not None and facts.licence_expires_at > now:
        times.append(facts.licence_expires_at)
    return min(times, default=None)


def badge(permission: NewsPermission) -> str | None:
    """The news badge of every public view: "publish", "reprint" or None (Art. 7 ¶3)."""
    permission = NewsPermission(permission)
    return None if permission is NewsPermission.NONE else permission.value


# -- impersonation (Art. 7 ¶1 examination) --------------------------------------------------

# Terms that, in an account's name, claim to be a party, government, military or
# news body. A name containing one is not refused (a real ministry may apply) but
# goes to manual review, and the reviewer must acknowledge the flag to approve.
# Latin terms match whole words (case-folded); CJK terms match anywhere. Kept
# short and conservative on purpose: a long list floods the queue with false hits.
IMPERSONATION_TERMS: dict[str, tuple[str, ...]] = {
    "party": ("communist", "cpc", "ccp", "party committee", "中共", "共产党", "党委", "党支部", "纪委"),
    "government": (
        "government",
        "ministry",
        "state council",
        "municipal",
        "police",
        "public security",
        "customs",
        "政府",
        "国务院",
        "部委",
        "公安",
        "警察",
        "法院",
        "检察院",
        "海关",
    ),
    "military": (
        "army",
        "military",
        "pla",
        "armed police",
        "navy",
        "解放军",
        "军区",
        "部队",
        "武警",
        "军委",
        "海军",
        "空军",
    ),
    "news": (
        "news",
        "xinhua",
        "people's daily",
        "cctv",
        "press agency",
        "新闻",
        "新华",
        "人民日报",
        "央视",
        "日报",
        "通讯社",
        "电视台",
        "广播电台",
    ),
}


def name_key(name: str) -> str:
    """The form names are compared in: NFKC (full-width → ASCII), case-folded, spaces collapsed."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def _is_cjk(term: str) -> bool:
    return any(ord(ch) > 0x2E80 for ch in term)


def _compile(terms: Iterable[str]) -> re.Pattern[str]:
    parts = []
    for term in sorted(set(terms), key=len, reverse=True):
        escaped = re.escape(name_key(term)).replace(r"\ ", r"\s+")
        parts.append(escaped if _is_cjk(term) else rf"(?<![a-z0-9]){escaped}(?![a-z0-9])")
    return re.compile("|".join(parts))


_PATTERNS = {body: _compile(terms) for body, terms in IMPERSONATION_TERMS.items()}


def impersonation_flags(name: str) -> list[str]:
    """``["impersonation:<body>:<term>", ...]`` for each body kind the name claims to be."""
    key = name_key(name)
    flags = []
    for body, pattern in _PATTERNS.items():
        found = pattern.search(key)
        if found:
            flags.append(f"impersonation:{body}:{found.group(0)}")
    return flags
