"""The policy pipeline: checks in a configured order; the first that does not allow decides.

``Pipeline(checks).evaluate(snapshot, outgoing, now) -> Decision`` is pure and
synchronous: the caller (``services``) loads the snapshot (from its per-node
cache), passes the time from its injected clock, and acts on the decision.

Building one from settings::

    registry = merge_registries(builtin_checks(terms, limits), load_plugins())
    pipeline = Pipeline.from_names(settings_order, registry)

Plugins are extra checks installed as packages that declare an entry point in
the ``imserver.policy`` group; the entry point names the check and loads either
a check object or a class/factory called with no arguments. A plugin runs only
where the configured order names it, and may not take a built-in's name: a
compliance check is never replaced silently.

A check that raises is a bug in that check; the exception propagates to the
service, which refuses the send (fail closed) and logs it with context.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from importlib.metadata import EntryPoint, entry_points
from typing import Protocol, runtime_checkable

from ..domain.policy_types import Outgoing, PolicySnapshot
from .decision import ALLOW, Decision, Outcome

ENTRY_POINT_GROUP = "imserver.policy"


@runtime_checkable
class Check(Protocol):
    name: str

    def __call__(self, snapshot: PolicySnapshot, outgoing: Outgoing, now: datetime) -> Decision: ...


class Pipeline:
    __slots__ = ("checks",)

    def __init__(self, checks: Iterable[Check]) -> None:
        self.checks: tuple[Check, ...] = tuple(checks)
        names = [check.name for check in self.checks]
        if len(set(names)) != len(names):
            raise ValueError(f"a check appears twice in the pipeline: {names}")

    @classmethod
    def from_names(cls, names: Sequence[str], registry: Mapping[str, Check]) -> Pipeline:
        """The checks named, in that order. An unknown name is a configuration
        error, reported at startup with the names that are known."""
        unknown = [name for name in names if name not in registry]
        if unknown:
            raise ValueError(f"unknown policy checks {unknown}; known: {sorted(registry)}")
        return cls(registry[name] for name in names)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(check.name for check in self.checks)

    def check(self, name: str) -> Check:
        """The check called ``name`` (e.g. to swap the content filter's terms)."""
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)

    def evaluate(self, snapshot: PolicySnapshot, outgoing: Outgoing, now: datetime) -> Decision:
        for check in self.checks:
            decision = check(snapshot, outgoing, now)
            if decision.outcome is not Outcome.ALLOW:
                return decision
        return ALLOW


class _Named:
    """Gives a plain function plugin the entry point's name."""

    __slots__ = ("_fn", "name")

    def __init__(self, name: str, fn) -> None:
        self.name, self._fn = name, fn

    def __call__(self, snapshot: PolicySnapshot, outgoing: Outgoing, now: datetime) -> Decision:
        return self._fn(snapshot, outgoing, now)


def load_plugins(eps: Iterable[EntryPoint] | None = None) -> dict[str, Check]:
    """Plugin checks by entry-point name, from ``eps`` or the installed
    ``imserver.policy`` group. A class is instantiated with no arguments; an
    object without a ``name`` is given the entry point's."""
    found: dict[str, Check] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP) if eps is None else eps:
        obj = ep.load()
        if isinstance(obj, type):
            obj = obj()
        if not callable(obj):
            raise TypeError(f"policy plugin {ep.name!r} ({ep.value}) is not callable")
        if getattr(obj, "name", None) != ep.name:
            obj = _Named(ep.name, obj)
        found[ep.name] = obj
    return found


def merge_registries(*registries: Mapping[str, Check]) -> dict[str, Check]:
    """One name → check map; a name defined twice is a configuration error."""
    merged: dict[str, Check] = {}
    for registry in registries:
        clash = merged.keys() & registry.keys()
        if clash:
            raise ValueError(f"policy check names defined twice: {sorted(clash)}")
        merged.update(registry)
    return merged
