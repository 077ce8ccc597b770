"""Languages of the console: Simplified Chinese and English, through gettext catalogs.

English strings are the message ids; ``locale/zh_CN/LC_MESSAGES/messages.mo`` is
compiled from the ``.po`` beside it and shipped in the package (the commands
that refresh them are in docs/console.md). The language is the operator's
choice (a cookie set by the switch on every page), else the best match of
``Accept-Language``, else English.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_datetime, format_timedelta
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = {"en": "English", "zh_CN": "简体中文"}  # code -> its own name, shown on the switch
DEFAULT = "en"
LANG_COOKIE = "imserver_console_lang"


def N_(message: str) -> str:
    """Mark a string for extraction; it is translated where it is shown."""
    return message


@cache
def translations(lang: str) -> NullTranslations:
    if lang == DEFAULT:
        return NullTranslations()
    return Translations.load(str(LOCALE_DIR), [lang], domain="messages")


def negotiate(accept_language: str | None, chosen: str | None) -> str:
    """The language to answer in: the operator's choice, else Accept-Language (q-ordered), else English."""
    if chosen in LANGUAGES:
        return chosen
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate((accept_language or "").split(",")[:20]):  # bounded: a header is not a list to scan
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        ranked.append((-q, i, tag.strip().lower()))
    for neg_q, _, tag in sorted(ranked):
        if neg_q >= 0:
            break
        if tag.startswith("zh"):
            return "zh_CN"
        if tag.startswith("en"):
            return "en"
    return DEFAULT


class Formatter:
    """Dates in the operator's time zone and ages, in the page's language."""

    def __init__(self, lang: str, time_zone: str) -> None:
        self.locale = Locale.parse(lang)
        self.tz = ZoneInfo(time_zone)

    def datetime(self, value: str | datetime | None) -> str:
        if value is None or value == "":
            return "—"
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return format_datetime(value, "yyyy-MM-dd HH:mm:ss zzz", tzinfo=self.tz, locale=self.locale)

    def age(self, seconds: float | None) -> str:
        if not seconds:
            return "—"
        return format_timedelta(timedelta(seconds=seconds), threshold=1.0, locale=self.locale)
