"""Operator-managed term lists, compiled into one Aho–Corasick automaton.

Art. 5 asks the provider to "timely deal with unlawful and harmful
information"; the ``admin`` role keeps lists of terms, each with an action:
``deny`` (refuse the message) or ``hold`` (store it held for a moderator).

Theory of operation:

* Terms and text are normalised the same way: NFKC folds width (full-width
  ``ＡＢＣ１`` to ``ABC1``, half-width katakana to full) and compatibility
  forms, then ``casefold`` folds case. ASCII text skips NFKC (it is a no-op
  there), which keeps the common path cheap.
* Matching is substring matching, as suits scripts without word breaks: a term
  matches wherever it occurs. One pass of the automaton (``pyahocorasick``, a
  C extension) finds every term at once, so cost grows with the text, not with
  the number of terms.
* The automaton runs over UTF-8 bytes (spelt as a latin-1 ``str``, which is
  what pyahocorasick's unicode build accepts), not over code points.
  pyahocorasick finds a node's child by a linear scan; over code points the
  root of 10,000 CJK terms has thousands of children and a 100-character
  message cost ~60 µs, over bytes the root has at most 256 and the same
  message ~2 µs. UTF-8 is self-synchronising, so a byte match is always a
  whole-character match: the results are the same.
* ``deny`` wins over ``hold``: the scan stops at the first deny; otherwise the
  first hold found is reported. The same term in two lists with different
  actions is a deny.
* A :class:`TermList` is immutable. Changing the lists means building a new
  one and swapping the reference (``ContentFilterCheck.swap``): an assignment,
  atomic for the evaluating code, which never sees a half-built automaton.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import ahocorasick  # type: ignore[import-not-found]  # a C extension without stubs

from ..domain.policy_types import FilterAction


def normalise(text: str) -> str:
    """Width- and case-fold ``text`` for matching (NFKC, casefold, NFKC again:
    casefolding can produce characters NFKC would fold further)."""
    if text.isascii():
        return text.lower()  # casefold == lower on ASCII; NFKC is the identity
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def _as_bytes(normalised: str) -> str:
    """The UTF-8 byte string the automaton runs over (strip before, never after:
    latin-1 counts the continuation bytes 0x85 and 0xA0 as whitespace)."""
    if normalised.isascii():
        return normalised  # ASCII is its own UTF-8
    return normalised.encode("utf-8").decode("latin-1")


@dataclass(frozen=True, slots=True)
class Term:
    text: str  # as the operator typed it
    action: FilterAction
    list_name: str = "default"

    def __post_init__(self) -> None:
        # Rows from the store carry the action as a plain string.
        object.__setattr__(self, "action", FilterAction(self.action))


class TermList:
    """An immutable, compiled set of terms. Build with :meth:`build`."""

    __slots__ = ("_automaton", "_count")

    def __init__(self, automaton: ahocorasick.Automaton | None, count: int) -> None:
        self._automaton = automaton
        self._count = count

    @classmethod
    def build(cls, terms: Iterable[Term]) -> TermList:
        """Compile ``terms``; blank terms (after normalising) are skipped, since
        they would match every text."""
        chosen: dict[str, Term] = {}
        for term in terms:
            folded = normalise(term.text).strip()
            if not folded:
                continue
            key = _as_bytes(folded)
            seen = chosen.get(key)
            if seen is None or (seen.action is FilterAction.HOLD and term.action is FilterAction.DENY):
                chosen[key] = term  # deny wins over hold for the same term
        if not chosen:
            return cls(None, 0)
        automaton = ahocorasick.Automaton()
        for key, term in chosen.items():
            automaton.add_word(key, term)
        automaton.make_automaton()
        return cls(automaton, len(chosen))

    @classmethod
    def empty(cls) -> TermList:
        return cls(None, 0)

    def __len__(self) -> int:
        return self._count

    def match(self, text: str) -> Term | None:
        """The deciding term found in ``text`` (as the operator gave it): the
        first deny, else the first hold, else None."""
        if self._automaton is None:
            return None
        first_hold: Term | None = None
        for _end, term in self._automaton.iter(_as_bytes(normalise(text))):
            if term.action is FilterAction.DENY:
                return term
            if first_hold is None:
                first_hold = term
        return first_hold
