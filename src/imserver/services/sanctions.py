"""Sanctions and appeals (Art. 8: "adopt measures such as warnings, restricting
publication, suspension of refreshing, and closure of accounts ... store relevant
records, and carry out their duty of reporting").

Every use case here is one transaction that writes the change (a sanction row
or an event, never an update), its regulator record (services/regulator.py) and
its audit row; after the commit it tells the policy caches
(``after_change(user_id)``, which reaches every node) and the user's live
connections (``emit``). Who may do what:

==========================  ===================================================
action                      who
==========================  ===================================================
impose / lift a kind        the ladder's ``imposed_by`` role (policy/ladder.py)
confirm an imposition       the same role, not the operator who imposed it
                            (where the ladder wants a second operator to impose)
confirm a lift or overturn  the same role, neither the proposer nor the imposer
                            (nor, for an overturn, the confirmer), where the
                            ladder wants a second operator for that act
appeal                      the sanctioned user, once, within the window
decide an appeal            compliance, not the imposer nor the confirmer
expire                      the sweeper, when ``ends_at`` has passed
==========================  ===================================================

Subjects are pluggable: ``subjects[kind]`` resolves a subject id to the user to
notify (None: no such subject); ``closers[kind]`` closes and reopens one. Only
``user`` is built in; ``services/public_accounts.py`` registers
``public_account`` (the owner is notified). Evidence must belong to the
subject: ``evidence_owners[key]`` answers which of the given ids belong to it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..domain.clock import Clock
from ..domain.enums import PrincipalKind, Role, UserStatus
from ..domain.errors import BadRequest, Code, Conflict, Forbidden, NotFound
from ..domain.policy_types import SanctionKind
from ..domain.principals import Principal
from ..store import accounts as account_store
from ..store import audit
from ..store import reports as report_store
from ..store import sanctions as store
from ..store.db import Database
from . import regulator
from .accounts import require_role
from .events import UserEvent
from .periodic import Periodic
from ..policy import ladder
from ..policy.ladder import Act, Measure
from .sanction_state import Event, Stage, allows, standing, status_at

log = logging.getLogger("imserver.sanctions")

MAX_REASON_CHARS = 2000  # a reason is a paragraph, not a dossier; evidence carries the rest
MAX_NOTE_CHARS = 2000
MAX_APPEAL_CHARS = 4000
MAX_EVIDENCE_IDS = 200  # per list: bounds one IN (...) query
EXPIRY_BATCH = 100  # sanctions expired per sweeper query
# Close code sent to a closed account's sockets (gateway/protocol.CLOSE_REVOKED;
# services do not import the gateway, the number is the contract).
CLOSE_ACCOUNT_CLOSED = 4003
EVIDENCE_KINDS = ("message_ids", "post_ids", "report_ids")

Conn = Any  # the store's connection, opaque to services
SubjectResolver = Callable[[Conn, int], Awaitable[int | None]]
Closer = Callable[[Conn, int, bool, datetime], Awaitable[None]]  # (conn, subject_id, closed?, now)
CloseHook = Callable[[Conn, str, int, bool, datetime], Awaitable[None]]
Subject = tuple[str, int]  # (subject kind, id)
# Evidence ids -> the subjects each one is about (ids that do not exist are left out).
EvidenceSubjects = Callable[[Conn, list[int]], Awaitable[dict[int, frozenset[Subject]]]]
# A report's target kind -> the evidence key whose resolver says whom the target is about.
TARGET_EVIDENCE = {"message": "message_ids", "post": "post_ids"}


async def _message_subjects(conn: Conn, ids: list[int]) -> dict[int, frozenset[Subject]]:
    """A message is about its sender."""
    return {m: frozenset({("user", sender)}) for m, sender in (await store.message_senders(conn, ids)).items()}


async def _user_subject(conn: Conn, user_id: int) -> int | None:
    return user_id if await account_store.get_user(conn, user_id) is not None else None


async def _close_user(conn: Conn, user_id: int, closed: bool, now: datetime) -> None:
    """Close: status closed and every session revoked (sign-in is refused). Reopen: status active."""
    await account_store.update_user(conn, user_id, status=UserStatus.CLOSED if closed else UserStatus.ACTIVE)
    if closed:
        await account_store.revoke_all_sessions(conn, PrincipalKind.USER, user_id, now)


def _clean(text: str, limit: int, what: str) -> str:
    text = text.strip()
    if not 1 <= len(text) <= limit:
        raise BadRequest(f"{what} must be 1-{limit} characters")
    return text


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass
class _After:
    """What to do once the transaction has committed."""

    user_id: int | None = None
    notice: dict | None = None
    disconnect: bool = False
    record: bool = False


class Sanctions:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        regulator: regulator.Regulator,
        after_change: Callable[..., Awaitable[None]],
        emit: Callable[[UserEvent], None],
        appeal_window: timedelta,
        strike_window: timedelta,
        sweep_interval: float,
    ) -> None:
        self.db = db
        self.clock = clock
        self.regulator = regulator
        self.after_change = after_change  # Services.after_policy_change(user_id=...)
        self.emit = emit  # the fan-out's user_event
        self.appeal_window = appeal_window
        self.strike_window = strike_window
        self.subjects: dict[str, SubjectResolver] = {"user": _user_subject}
        self.closers: dict[str, Closer] = {"user": _close_user}
        # Subjects a user answers for besides their own account (their public accounts): kind -> ids.
        self.owned_subjects: dict[str, Callable[[Conn, int], Awaitable[list[int]]]] = {}
        self.close_hooks: list[CloseHook] = []
        # Whom each kind of evidence is about; post_ids come with public accounts.
        self.evidence_subjects: dict[str, EvidenceSubjects] = {
            "message_ids": _message_subjects,
            "report_ids": self._report_subjects,
        }
        self._sweeper = Periodic("sanction-expiry", sweep_interval, self.expire_due)

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        self._sweeper.start()

    async def stop(self) -> None:
        await self._sweeper.stop()

    # -- impose ---------------------------------------------------------------------

    async def impose(
        self,
        operator: Principal,
        *,
        subject_kind: str,
        subject_id: int,
        kind: str,
        reason: str,
        evidence: dict[str, list[int]] | None = None,
        ends_at: datetime | None = None,
        duration_seconds: int | None = None,
    ) -> dict:
        """Record a sanction; a closure then waits for a second operator's confirmation."""
        try:
            sk = SanctionKind(kind)
        except ValueError as exc:
            kinds = ", ".join(k.value for k in SanctionKind)
            raise BadRequest(f"unknown sanction kind {kind!r}; one of {kinds}", Code.UNKNOWN_SANCTION_KIND) from exc
        if subject_kind not in self.subjects:
            raise BadRequest(
                f"subjects of kind {subject_kind!r} cannot be sanctioned here (known: {', '.join(self.subjects)})",
                Code.UNSUPPORTED_SUBJECT,
            )
        measure = ladder.measure(sk, subject_kind)
        require_role(operator, measure.imposed_by)
        reason = _clean(reason, MAX_REASON_CHARS, "reason")
        now = self.clock.now()
        end = self._end(sk, measure, now, ends_at, duration_seconds)
        evidence = self._evidence(evidence or {})
        needs = Act.IMPOSE in measure.second_operator
        async with self.db.transaction() as conn:
            user_id = await self.subjects[subject_kind](conn, subject_id)
            if user_id is None:
                raise NotFound(f"no {subject_kind} {subject_id}", Code.SUBJECT_NOT_FOUND)
            await self._check_evidence(conn, evidence, (subject_kind, subject_id))
            sanction_id = await store.insert_sanction(
                conn,
                subject_kind=subject_kind,
                subject_id=subject_id,
                kind=sk.value,
                reason=reason,
                evidence=evidence,
                imposed_by=operator.id,
                needs_confirmation=needs,
                starts_at=now,
                ends_at=end,
                now=now,
            )
            sanction = await store.get_sanction(conn, sanction_id)
            await regulator.record(conn, kind="imposed", sanction=sanction, event=None, now=now)
            await audit.append(
                conn,
                at=now,
                actor_kind="operator",
                actor_id=operator.id,
                action="sanction.impose",
                subject=f"{subject_kind}:{subject_id}",
                detail={"sanction_id": sanction_id, "kind": sk.value, "ends_at": _iso(end), "evidence": evidence},
            )
            view = await self._view(conn, sanction, now)
        notice = None if needs else self._imposed_notice(sanction)
        await self._after(_After(user_id, notice, record=True))
        return view

    def _end(
        self,
        kind: SanctionKind,
        measure: Measure,
        now: datetime,
        ends_at: datetime | None,
        duration_seconds: int | None,
    ) -> datetime | None:
        """The end given, else the ladder's default duration from now (None: until lifted)."""
        if ends_at is not None and duration_seconds is not None:
            raise BadRequest("give ends_at or duration_seconds, not both", Code.INVALID_PERIOD)
        if ends_at is None and duration_seconds is None:
            return now + measure.default_duration if measure.default_duration is not None else None
        if not measure.timed:
            raise BadRequest(f"a {kind.value} has no end; it lasts until lifted", Code.INVALID_PERIOD)
        if ends_at is not None and ends_at.tzinfo is None:
            raise BadRequest("ends_at needs a time zone (e.g. 2026-01-01T00:00:00Z)", Code.INVALID_PERIOD)
        end = ends_at if ends_at is not None else now + timedelta(seconds=duration_seconds)
        if end <= now:
            raise BadRequest("the end is not after the start (now)", Code.INVALID_PERIOD, starts_at=now.isoformat())
        return end

    def _evidence(self, evidence: dict[str, list[int]]) -> dict[str, list[int]]:
        out = {}
        for key in EVIDENCE_KINDS:
            ids = sorted(set(evidence.get(key) or []))
            if len(ids) > MAX_EVIDENCE_IDS:
                raise BadRequest(f"at most {MAX_EVIDENCE_IDS} {key}")
            out[key] = ids
        unknown = set(evidence) - set(EVIDENCE_KINDS)
        if unknown:
            raise BadRequest(f"evidence has only {', '.join(EVIDENCE_KINDS)}")
        return out

    async def _check_evidence(self, conn: Conn, evidence: dict[str, list[int]], subject: Subject) -> None:
        """Every cited id exists (else evidence_not_found) and is about the subject: a message
        it sent, a post of it (or of an account it owns), a report about it (else evidence_not_of_subject)."""
        missing: dict[str, list[int]] = {}
        foreign: dict[str, list[int]] = {}
        for key, ids in evidence.items():
            if not ids:
                continue
            resolver = self.evidence_subjects.get(key)
            about = await resolver(conn, ids) if resolver else {}
            if gone := sorted(set(ids) - set(about)):
                missing[key] = gone
            if other := sorted(i for i in ids if i in about and subject not in about[i]):
                foreign[key] = other
        if missing:
            raise BadRequest("some evidence does not exist", Code.EVIDENCE_NOT_FOUND, missing=missing)
        if foreign:
            raise BadRequest(
                f"evidence must be about the {subject[0]} sanctioned; these are about someone else",
                Code.EVIDENCE_NOT_OF_SUBJECT,
                foreign=foreign,
            )

    async def _report_subjects(self, conn: Conn, ids: list[int]) -> dict[int, frozenset[Subject]]:
        """A report is about whom its target is about (a reported account: that user)."""
        targets = await report_store.targets_of(conn, ids)
        by_kind: dict[str, list[int]] = {}
        for kind, target_id in targets.values():
            by_kind.setdefault(kind, []).append(target_id)
        resolved: dict[str, dict[int, frozenset[Subject]]] = {}
        for kind, target_ids in by_kind.items():
            if kind == "account":
                resolved[kind] = {t: frozenset({("user", t)}) for t in target_ids}
            else:
                resolver = self.evidence_subjects.get(TARGET_EVIDENCE.get(kind, ""))
                resolved[kind] = await resolver(conn, target_ids) if resolver else {}
        return {rid: resolved[kind].get(target_id, frozenset()) for rid, (kind, target_id) in targets.items()}

    def _imposed_notice(self, sanction: dict) -> dict:
        """What the user is told when a sanction takes effect: kind, reason, end and appeal deadline."""
        kind = sanction["kind"]
        data = {
            "sanction_id": sanction["id"],
            "sanction_kind": kind,
            "subject": {"kind": sanction["subject_kind"], "id": sanction["subject_id"]},
            "reason": sanction["reason"],
            "ends_at": _iso(sanction["ends_at"]),
            "appeal_deadline": _iso(self.appeal_deadline(sanction)),
        }
        if kind == SanctionKind.WARNING:
            return {"kind": "warning", "text": f"Warning: {sanction['reason']}", "data": data}
        where = "your account" if sanction["subject_kind"] == "user" else f"your public account {sanction['subject_id']}"
        return {"kind": "sanction", "text": f"A sanction ({kind}) applies to {where}: {sanction['reason']}", "data": data}

    def appeal_deadline(self, sanction: dict) -> datetime:
        """The last moment an appeal is accepted: the window from the sanction's start."""
        return sanction["starts_at"] + self.appeal_window

    # -- confirm, lift, expire --------------------------------------------------------

    async def confirm(self, operator: Principal, sanction_id: int, *, note: str = "") -> dict:
        """The second operator's confirmation of what awaits one: a closure's imposition
        (it takes effect now), or a proposal to lift or overturn it (it ends now)."""
        now = self.clock.now()
        async with self.db.transaction() as conn:
            sanction, st = await self._locked(conn, sanction_id)
            measure = ladder.measure(sanction["kind"], sanction["subject_kind"])
            require_role(operator, measure.imposed_by)
            if st.pending is not None:
                view, after = await self._confirm_undo(conn, operator, sanction, st, note, now)
            else:
                view, after = await self._confirm_imposition(conn, operator, sanction, st, note, now)
        await self._after(after)
        return view

    async def _confirm_imposition(
        self, conn: Conn, operator: Principal, sanction: dict, st, note: str, now: datetime
    ) -> tuple[dict, _After]:
        sanction_id = sanction["id"]
        if not sanction["needs_confirmation"] or not allows(st.stage, Event.CONFIRMED):
            raise Conflict(f"sanction {sanction_id} is {st.stage.value}; nothing to confirm", Code.SANCTION_STATE)
        if operator.id == sanction["imposed_by"]:
            raise Forbidden("a closure is confirmed by a second, different operator", Code.SAME_OPERATOR)
        event = await self._event(conn, sanction, Event.CONFIRMED, operator.id, note or None, now)
        await self._set_closed(conn, sanction, True, now)
        await regulator.record(conn, kind="confirmed", sanction=sanction, event=event, now=now)
        await self._audit(conn, operator.id, "sanction.confirm", sanction, now, note=note)
        user_id = await self.subjects[sanction["subject_kind"]](conn, sanction["subject_id"])
        view = await self._view(conn, sanction, now)
        # Closing a public account leaves its owner's own sessions alone.
        notice = self._imposed_notice(sanction)
        return view, _After(user_id, notice, disconnect=sanction["subject_kind"] == "user", record=True)

    async def decline(self, operator: Principal, sanction_id: int, *, note: str) -> dict:
        """The second operator declines a pending proposal to lift or overturn: the sanction stands."""
        note = _clean(note, MAX_NOTE_CHARS, "note")
        now = self.clock.now()
        async with self.db.transaction() as conn:
            sanction, st = await self._locked(conn, sanction_id)
            require_role(operator, ladder.measure(sanction["kind"], sanction["subject_kind"]).imposed_by)
            if st.pending is None:
                raise Conflict(f"nothing awaits a second operator on sanction {sanction_id}", Code.SANCTION_STATE)
            self._second_operator(operator, sanction, st)
            await self._event(conn, sanction, Event.UNDO_DECLINED, operator.id, note, now)
            await self._audit(conn, operator.id, "sanction.undo.decline", sanction, now, note=note)
            return await self._view(conn, sanction, now)

    async def lift(self, operator: Principal, sanction_id: int, *, reason: str) -> dict:
        """End a sanction early (or withdraw an unconfirmed closure), by the role that imposes its kind.

        Where the ladder wants a second operator to lift, this only proposes the
        lift; :meth:`confirm` by another operator then ends the sanction."""
        reason = _clean(reason, MAX_NOTE_CHARS, "reason")
        now = self.clock.now()
        async with self.db.transaction() as conn:
            sanction, st = await self._locked(conn, sanction_id)
            measure = ladder.measure(sanction["kind"], sanction["subject_kind"])
            require_role(operator, measure.imposed_by)
            if not allows(st.stage, Event.LIFTED):
                raise Conflict(f"sanction {sanction_id} has ended already", Code.SANCTION_STATE)
            if st.stage is Stage.IN_EFFECT and Act.LIFT in measure.second_operator:
                view, after = await self._propose(conn, operator, sanction, st, Event.LIFT_PENDING, reason, now)
            else:
                view, after = await self._lift(conn, operator.id, sanction, st, reason, now)
        await self._after(after)
        return view

    async def _lift(
        self, conn: Conn, operator_id: int, sanction: dict, st, reason: str, now: datetime
    ) -> tuple[dict, _After]:
        """Write the lift, its record and audit row; returns the view and what to do after the commit."""
        event = await self._event(conn, sanction, Event.LIFTED, operator_id, reason, now)
        if st.stage is Stage.IN_EFFECT:
            await self._set_closed(conn, sanction, False, now)
        await regulator.record(conn, kind="lifted", sanction=sanction, event=event, now=now)
        await self._audit(conn, operator_id, "sanction.lift", sanction, now, note=reason)
        user_id = await self.subjects[sanction["subject_kind"]](conn, sanction["subject_id"])
        notice = self._ended_notice(sanction, "lifted") if st.stage is Stage.IN_EFFECT else None
        return await self._view(conn, sanction, now), _After(user_id, notice, record=True)

    async def _propose(
        self, conn: Conn, operator: Principal, sanction: dict, st, event: Event, note: str | None, now: datetime
    ) -> tuple[dict, _After]:
        """Record a proposal to lift or overturn that waits for a second operator (nothing changes yet)."""
        if st.pending is not None:
            raise Conflict(
                f"a {st.pending.event.value} proposal awaits a second operator already", Code.SANCTION_STATE
            )
        await self._event(conn, sanction, event, operator.id, note, now)
        await self._audit(conn, operator.id, f"sanction.{event.value}", sanction, now, note=note or "")
        return await self._view(conn, sanction, now), _After()

    def _second_operator(self, operator: Principal, sanction: dict, st) -> None:
        """The four-eyes rule for undoing: neither the proposer nor the imposer (nor, for an
        overturn, the operator who confirmed the sanction)."""
        assert st.pending is not None
        excluded = {st.pending.operator_id, sanction["imposed_by"]}
        if st.pending.event is Event.OVERTURN_PENDING and st.confirmed_by is not None:
            excluded.add(st.confirmed_by)
        if operator.id in excluded:
            raise Forbidden(
                "a second operator confirms: not the proposer, nor the operator who imposed or confirmed it",
                Code.SAME_OPERATOR,
            )

    async def _confirm_undo(
        self, conn: Conn, operator: Principal, sanction: dict, st, note: str, now: datetime
    ) -> tuple[dict, _After]:
        self._second_operator(operator, sanction, st)
        pending = st.pending
        assert pending is not None
        if pending.event is Event.LIFT_PENDING:
            return await self._lift(conn, operator.id, sanction, st, pending.note or note, now)
        appeal = (await store.appeals_for(conn, [sanction["id"]])).get(sanction["id"])
        assert appeal is not None, "an overturn is proposed on an appeal"
        return await self._decide(conn, operator.id, sanction, st, appeal, Event.OVERTURNED, pending.note or note, now)

    async def expire_due(self) -> int:
        """The sweeper's step: write `expired` for every sanction whose end has passed."""
        done = 0
        while True:
            now = self.clock.now()
            async with self.db.transaction() as conn:
                ids = await store.due_for_expiry(conn, now, EXPIRY_BATCH)
            for sanction_id in ids:
                if await self._expire(sanction_id, now):
                    done += 1
            if len(ids) < EXPIRY_BATCH:
                return done

    async def _expire(self, sanction_id: int, now: datetime) -> bool:
        async with self.db.transaction() as conn:
            sanction, st = await self._locked(conn, sanction_id)
            if not allows(st.stage, Event.EXPIRED) or sanction["ends_at"] is None or sanction["ends_at"] > now:
                return False  # lifted (or expired by another node) meanwhile
            event = await self._event(conn, sanction, Event.EXPIRED, None, None, now)
            await self._set_closed(conn, sanction, False, now)
            await regulator.record(conn, kind="expired", sanction=sanction, event=event, now=now)
            await audit.append(
                conn,
                at=now,
                actor_kind="system",
                actor_id=None,
                action="sanction.expire",
                subject=f"{sanction['subject_kind']}:{sanction['subject_id']}",
                detail={"sanction_id": sanction_id, "kind": sanction["kind"], "ends_at": _iso(sanction["ends_at"])},
            )
            user_id = await self.subjects[sanction["subject_kind"]](conn, sanction["subject_id"])
        await self._after(_After(user_id, self._ended_notice(sanction, "expired"), record=True))
        return True

    def _ended_notice(self, sanction: dict, how: str) -> dict:
        return {
            "kind": "sanction_ended",
            "text": f"The {sanction['kind']} on your account has {how}.",
            "data": {"sanction_id": sanction["id"], "sanction_kind": sanction["kind"], "ended_by": how},
        }

    # -- appeals ----------------------------------------------------------------------

    async def appeal(self, user: Principal, sanction_id: int, *, text: str) -> dict:
        """The sanctioned user's one appeal, within the window from the sanction's start."""
        text = _clean(text, MAX_APPEAL_CHARS, "text")
        now = self.clock.now()
        async with self.db.transaction() as conn:
            sanction = await store.lock_sanction(conn, sanction_id)
            owner = None
            if sanction is not None and sanction["subject_kind"] in self.subjects:
                owner = await self.subjects[sanction["subject_kind"]](conn, sanction["subject_id"])
            if sanction is None or owner != user.id:
                raise NotFound(f"no sanction {sanction_id} on your account", Code.SANCTION_NOT_FOUND)
            st = standing(sanction, (await store.events_for(conn, [sanction_id]))[sanction_id])
            if not allows(st.stage, Event.APPEALED):
                raise Conflict("this sanction has not taken effect", Code.SANCTION_STATE)
            deadline = self.appeal_deadline(sanction)
            if now > deadline:
                raise Conflict(
                    f"the appeal window closed at {deadline.isoformat()}",
                    Code.APPEAL_WINDOW_CLOSED,
                    deadline=deadline.isoformat(),
                )
            appeal_id = await store.insert_appeal(conn, sanction_id=sanction_id, user_id=user.id, text=text, now=now)
            if appeal_id is None:
                raise Conflict(
                    "this sanction has been appealed already; each sanction is appealed once", Code.APPEAL_EXISTS
                )
            await self._event(conn, sanction, Event.APPEALED, None, None, now)
            await audit.append(
                conn,
                at=now,
                actor_kind="user",
                actor_id=user.id,
                action="sanction.appeal",
                subject=f"{sanction['subject_kind']}:{sanction['subject_id']}",
                detail={"sanction_id": sanction_id, "appeal_id": appeal_id},
            )
        await self._after(_After(user.id))
        return {"appeal_id": appeal_id, "sanction_id": sanction_id, "filed_at": now.isoformat(), "decision": None}

    async def decide_appeal(self, operator: Principal, appeal_id: int, *, overturn: bool, note: str = "") -> dict:
        """Uphold or overturn; overturning ends the sanction (if in effect) and marks it overruled.

        Where the ladder wants a second operator to overturn (a closure), overturning
        only proposes it; :meth:`confirm` by another compliance operator decides."""
        require_role(operator, Role.COMPLIANCE)
        now = self.clock.now()
        async with self.db.transaction() as conn:
            appeal = await store.get_appeal(conn, appeal_id)
            if appeal is None:
                raise NotFound(f"no appeal {appeal_id}", Code.APPEAL_NOT_FOUND)
            sanction, st = await self._locked(conn, appeal["sanction_id"])
            if appeal["decision"] is not None:
                raise Conflict(f"appeal {appeal_id} was decided already", Code.APPEAL_DECIDED)
            if operator.id in (sanction["imposed_by"], st.confirmed_by):
                raise Forbidden(
                    "an appeal is decided by a compliance operator who neither imposed nor confirmed the sanction",
                    Code.SAME_OPERATOR,
                )
            if st.pending is not None:
                raise Conflict(
                    f"a {st.pending.event.value} proposal awaits a second operator: confirm or decline it",
                    Code.SANCTION_STATE,
                )
            measure = ladder.measure(sanction["kind"], sanction["subject_kind"])
            if overturn and Act.OVERTURN in measure.second_operator:
                view, after = await self._propose(
                    conn, operator, sanction, st, Event.OVERTURN_PENDING, note or None, now
                )
                decision = None
            else:
                event = Event.OVERTURNED if overturn else Event.UPHELD
                view, after = await self._decide(conn, operator.id, sanction, st, appeal, event, note or None, now)
                decision = event.value
        await self._after(after)
        return {"appeal_id": appeal_id, "sanction_id": sanction["id"], "decision": decision, "sanction": view}

    async def _decide(
        self, conn: Conn, operator_id: int, sanction: dict, st, appeal, decision: Event, note: str | None, now: datetime
    ) -> tuple[dict, _After]:
        """Record an appeal's decision (upheld or overturned), its event, regulator record and audit row;
        overturning also ends the sanction if it is in effect."""
        if not await store.decide_appeal(
            conn, appeal["id"], decision=decision.value, decided_by=operator_id, note=note, now=now
        ):
            raise Conflict(f"appeal {appeal['id']} was decided already", Code.APPEAL_DECIDED)
        event = await self._event(conn, sanction, decision, operator_id, note, now)
        if decision is Event.OVERTURNED and st.stage is Stage.IN_EFFECT:
            await self._set_closed(conn, sanction, False, now)
        await regulator.record(conn, kind=decision.value, sanction=sanction, event=event, now=now, appeal=appeal)
        await self._audit(
            conn,
            operator_id,
            "sanction.appeal.decide",
            sanction,
            now,
            note=note or "",
            appeal_id=appeal["id"],
            decision=decision.value,
        )
        user_id = await self.subjects[sanction["subject_kind"]](conn, sanction["subject_id"])
        notice = self._decided_notice(sanction, appeal["id"], decision)
        return await self._view(conn, sanction, now), _After(user_id, notice, record=True)

    def _decided_notice(self, sanction: dict, appeal_id: int, decision: Event) -> dict:
        text = (
            f"Your appeal against the {sanction['kind']} was upheld in your favour: it is overturned."
            if decision is Event.OVERTURNED
            else f"Your appeal against the {sanction['kind']} was rejected: the sanction stands."
        )
        return {
            "kind": "appeal_decided",
            "text": text,
            "data": {"appeal_id": appeal_id, "sanction_id": sanction["id"], "decision": decision.value},
        }

    # -- reads --------------------------------------------------------------------------

    async def get(self, sanction_id: int) -> dict:
        async with self.db.transaction() as conn:
            sanction = await store.get_sanction(conn, sanction_id)
            if sanction is None:
                raise NotFound(f"no sanction {sanction_id}", Code.SANCTION_NOT_FOUND)
            view = await self._view(conn, sanction, self.clock.now())
        view["regulator_records"] = await self.regulator.records_for(sanction_id)
        return view

    async def history(self, subject_kind: str, subject_id: int) -> dict:
        """A subject's sanctions and strikes in the strike window (the escalation hint)."""
        if subject_kind not in self.subjects:
            raise BadRequest(f"unknown subject kind {subject_kind!r}", Code.UNSUPPORTED_SUBJECT)
        now = self.clock.now()
        async with self.db.transaction() as conn:
            if await self.subjects[subject_kind](conn, subject_id) is None:
                raise NotFound(f"no {subject_kind} {subject_id}", Code.SUBJECT_NOT_FOUND)
            rows = await store.for_subject(conn, subject_kind, subject_id)
            views = await self._views(conn, rows, now)
            strikes = await store.count_strikes(conn, subject_kind, subject_id, now - self.strike_window)
        in_effect = [v["kind"] for v in views if v["status"] == Stage.IN_EFFECT]
        return {
            "subject": {"kind": subject_kind, "id": subject_id},
            "sanctions": views,
            "strikes": strikes,
            "strike_window_days": self.strike_window.days,
            "in_effect": in_effect,
        }

    async def mine(self, user_id: int) -> list[dict]:
        """The user's own sanctions, without operator ids, with the appeal deadline."""
        now = self.clock.now()
        async with self.db.transaction() as conn:
            rows = await store.for_subject(conn, "user", user_id)
            for subject_kind, owned in self.owned_subjects.items():
                for subject_id in await owned(conn, user_id):
                    rows += await store.for_subject(conn, subject_kind, subject_id)
            views = await self._views(conn, rows, now)
        out = []
        for v in views:
            if v["status"] == Stage.AWAITING_CONFIRMATION:
                continue  # not taken effect; nothing to tell or appeal yet
            deadline = datetime.fromisoformat(v["starts_at"]) + self.appeal_window
            appeal = v["appeal"]
            out.append(
                {
                    "id": v["id"],
                    "kind": v["kind"],
                    "subject": v["subject"],
                    "reason": v["reason"],
                    "starts_at": v["starts_at"],
                    "ends_at": v["ends_at"],
                    "status": v["status"],
                    "ended_by": v["ended_by"],
                    "overruled": v["overruled"],
                    "appeal_deadline": deadline.isoformat(),
                    "can_appeal": appeal is None and now <= deadline,
                    "appeal": None
                    if appeal is None
                    else {"id": appeal["id"], "filed_at": appeal["filed_at"], "decision": appeal["decision"]},
                }
            )
        return out

    async def views_of(self, conn: Conn, rows: list[dict]) -> list[dict]:
        """Operator views of sanction rows another service read in `conn` (the workbench lists, the dossier)."""
        return await self._views(conn, rows, self.clock.now())

    # -- helpers -------------------------------------------------------------------------

    async def _locked(self, conn: Conn, sanction_id: int):
        sanction = await store.lock_sanction(conn, sanction_id)
        if sanction is None:
            raise NotFound(f"no sanction {sanction_id}", Code.SANCTION_NOT_FOUND)
        events = (await store.events_for(conn, [sanction_id]))[sanction_id]
        return sanction, standing(sanction, events)

    async def _event(
        self, conn: Conn, sanction: dict, kind: Event, operator_id: int | None, note: str | None, now: datetime
    ) -> dict:
        event_id = await store.insert_event(
            conn, sanction_id=sanction["id"], kind=kind.value, operator_id=operator_id, note=note, at=now
        )
        return {"id": event_id, "kind": kind.value, "operator_id": operator_id, "note": note, "at": now}

    async def _set_closed(self, conn: Conn, sanction: dict, closed: bool, now: datetime) -> None:
        """Apply or undo a closure's effect on its subject; other kinds act through the checks only.

        Reopening happens only if no other confirmed closure still holds the subject.
        """
        if sanction["kind"] != SanctionKind.CLOSE_ACCOUNT:
            return
        kind, subject_id = sanction["subject_kind"], sanction["subject_id"]
        if not closed and await store.other_confirmed_closure(conn, kind, subject_id, but=sanction["id"]):
            return
        await self.closers[kind](conn, subject_id, closed, now)
        for hook in self.close_hooks:
            await hook(conn, kind, subject_id, closed, now)

    async def _audit(self, conn: Conn, operator_id: int, action: str, sanction: dict, now: datetime, **detail) -> None:
        await audit.append(
            conn,
            at=now,
            actor_kind="operator",
            actor_id=operator_id,
            action=action,
            subject=f"{sanction['subject_kind']}:{sanction['subject_id']}",
            detail={"sanction_id": sanction["id"], "kind": sanction["kind"], **detail},
        )

    async def _views(self, conn: Conn, rows: list[dict], now: datetime) -> list[dict]:
        ids = [r["id"] for r in rows]
        events = await store.events_for(conn, ids)
        appeals = await store.appeals_for(conn, ids)
        return [self._render(r, events[r["id"]], appeals.get(r["id"]), now) for r in rows]

    async def _view(self, conn: Conn, sanction: dict, now: datetime) -> dict:
        return (await self._views(conn, [sanction], now))[0]

    def _render(self, s: dict, events: list[dict], appeal: dict | None, now: datetime) -> dict:
        st = standing(s, events)
        return {
            "id": s["id"],
            "subject": {"kind": s["subject_kind"], "id": s["subject_id"]},
            "kind": s["kind"],
            "reason": s["reason"],
            "evidence": s["evidence"],
            "imposed_by": s["imposed_by"],
            "needs_confirmation": s["needs_confirmation"],
            "confirmed_by": st.confirmed_by,
            "starts_at": _iso(s["starts_at"]),
            "ends_at": _iso(s["ends_at"]),
            "created_at": _iso(s["created_at"]),
            "status": status_at(s, st, now),
            "ended_by": st.ended_by.value if st.ended_by else None,
            "ended_at": _iso(st.ended_at),
            "overruled": st.overruled,
            "pending": None
            if st.pending is None
            else {
                "act": "lift" if st.pending.event is Event.LIFT_PENDING else "overturn",
                "proposed_by": st.pending.operator_id,
                "note": st.pending.note,
                "at": _iso(st.pending.at),
            },
            "events": [
                {"kind": e["kind"], "operator_id": e["operator_id"], "note": e["note"], "at": _iso(e["at"])}
                for e in events
            ],
            "appeal": None
            if appeal is None
            else {
                "id": appeal["id"],
                "text": appeal["text"],
                "filed_at": _iso(appeal["filed_at"]),
                "decision": appeal["decision"],
                "decided_by": appeal["decided_by"],
                "decided_at": _iso(appeal["decided_at"]),
                "note": appeal["note"],
            },
        }

    async def _after(self, after: _After) -> None:
        """After the commit: drop cached snapshots everywhere, then tell the user's live connections."""
        if after.user_id is not None:
            notice = UserEvent((after.user_id,), "notice", after.notice) if after.notice is not None else None
            if after.disconnect and notice is not None:
                self.emit(notice)  # before anything drops the socket, so a closed user's client learns why
            await self.after_change(user_id=after.user_id)
            if notice is not None and not after.disconnect:
                self.emit(notice)
            if after.disconnect:
                self.emit(
                    UserEvent(
                        (after.user_id,),
                        "disconnect",
                        {"code": CLOSE_ACCOUNT_CLOSED, "reason": "account closed", "flush": True},
                    )
                )
        if after.record:
            self.regulator.nudge()
