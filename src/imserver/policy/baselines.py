"""The "seven baselines" an agreement must state (Art. 6 ¶2), in Simplified Chinese and English.

Art. 6 ¶2: users "commit to abide by the 'seven baselines' of observing laws and
regulations, the Socialist system, the national interest, citizens' lawful
rights and interests, public order, social morality and truthfulness of
information" — in Chinese 法律法规底线、社会主义制度底线、国家利益底线、
公民合法权益底线、社会公共秩序底线、道德风尚底线、信息真实性底线.

Each baseline is data: a stable key, its English and Chinese names, and the
phrasings that count as stating it. Deployments may replace a baseline's
phrasings (``agreement_baseline_phrases`` in the settings) without code.
Matching ignores case, Unicode width (NFKC) and all whitespace, so a line
break inside a phrase or full-width letters do not hide it. Pure: no I/O.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class Baseline:
    key: str
    en: str  # the English name (also what a refusal lists as missing)
    zh: str  # the Chinese name
    phrases: tuple[str, ...]  # any one of these states the baseline


DEFAULT_BASELINES: tuple[Baseline, ...] = (
    Baseline("laws_and_regulations", "laws and regulations", "法律法规底线", ("laws and regulations", "法律法规")),
    Baseline("socialist_system", "socialist system", "社会主义制度底线", ("socialist system", "社会主义制度")),
    Baseline(
        "national_interest",
        "national interest",
        "国家利益底线",
        ("national interest", "national interests", "国家利益"),
    ),
    Baseline(
        "lawful_rights",
        "lawful rights",
        "公民合法权益底线",
        ("lawful rights", "legitimate rights", "公民合法权益"),
    ),
    Baseline("public_order", "public order", "社会公共秩序底线", ("public order", "社会公共秩序")),
    Baseline(
        "social_morality",
        "social morality",
        "道德风尚底线",
        ("social morality", "public morality", "social morals", "道德风尚"),
    ),
    Baseline(
        "truthfulness",
        "truthfulness of information",
        "信息真实性底线",
        ("truthfulness of information", "authenticity of information", "information truthfulness", "信息真实性"),
    ),
)


def normalise(text: str) -> str:
    """Case-, width- and whitespace-blind form used on both the text and the phrases."""
    folded = unicodedata.normalize("NFKC", text).casefold().replace("’", "'")
    return "".join(folded.split())


def configured(overrides: Mapping[str, Sequence[str]] | None) -> tuple[Baseline, ...]:
    """The default baselines with the phrasings of ``overrides`` (key -> phrases) in place of theirs.

    An unknown key or an empty list is a configuration error (ValueError), raised at start-up."""
    overrides = dict(overrides or {})
    known = {b.key for b in DEFAULT_BASELINES}
    if unknown := sorted(set(overrides) - known):
        raise ValueError(f"unknown baselines {unknown}; known: {sorted(known)}")
    out = []
    for b in DEFAULT_BASELINES:
        phrases = tuple(p for p in overrides.get(b.key, b.phrases) if normalise(p))
        if not phrases:
            raise ValueError(f"baseline {b.key!r} needs at least one phrasing")
        out.append(replace(b, phrases=phrases))
    return tuple(out)


def missing(text: str, baselines: Iterable[Baseline] = DEFAULT_BASELINES) -> list[Baseline]:
    """The baselines ``text`` states in none of their phrasings, in the provisions' order."""
    body = normalise(text)
    return [b for b in baselines if not any(normalise(p) in body for p in b.phrases)]
