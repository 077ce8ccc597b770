"""The compliance pipeline: pure checks of (snapshot, outgoing, now) → Decision.

No I/O and no awaits; imports only ``domain``. Modules, one idea each:

* ``decision``: the Decision value (allow, deny, hold; reason code; check name).
* ``pipeline``: ordered checks, first non-allow decides; plugins by entry point.
* ``checks``: the eight built-in checks, in the pipeline's order.
* ``ladder``: the sanction ladder as one table (Art. 8): who imposes each measure,
  which acts need a second operator, its default duration and what it stops.
* ``baselines``: the seven baselines of an agreement, in Chinese and English (Art. 6).
* ``provinces``: the provincial-level department a filing goes to (Art. 3).
* ``provider``: the provider's qualifications; public accounts need the news one (Art. 4).
* ``news``: which account categories may publish or reprint news (Art. 7).
* ``content_filter``: operator term lists in an Aho–Corasick automaton.
* ``ratelimit``: per-user token buckets, time passed in.
* ``bench``: ``python -m imserver.policy.bench`` prints the cost per evaluation.
"""

from .checks import DEFAULT_ORDER, RateLimits, builtin_checks
from .content_filter import Term, TermList
from .decision import ALLOW, Decision, Outcome
from .pipeline import Check, Pipeline, load_plugins, merge_registries
from .ratelimit import Rate

__all__ = [
    "ALLOW",
    "DEFAULT_ORDER",
    "Check",
    "Decision",
    "Outcome",
    "Pipeline",
    "Rate",
    "RateLimits",
    "Term",
    "TermList",
    "builtin_checks",
    "load_plugins",
    "merge_registries",
]
