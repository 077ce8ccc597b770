"""Sanctions and appeals for operators (Art. 8; the ladder in policy/ladder.py, docs/sanctions.md).

* ``POST /sanctions``: impose. ``warning`` and ``restrict_publication`` need
  ``moderator``; ``suspend_updates`` and ``close_account`` need ``compliance``
  (403 otherwise); the roles and the four-eyes acts are the ladder's
  (``policy/ladder.py``). A closure waits for ``POST /sanctions/{id}/confirm``
  by a second, different compliance operator.
* ``POST /sanctions/{id}/lift``: end it early, with a reason (a ``lifted`` event);
  for a closure, a proposal that ``/confirm`` by a second operator completes
  and ``/decline`` drops.
* ``GET /sanctions/{id}``, ``GET /sanctions/awaiting-confirmation``.
* ``GET /subjects/{kind}/{id}/sanctions``: history and strikes in the last 90
  days (the escalation hint).
* ``GET /appeals``, ``POST /appeals/{id}/decision``: compliance, not the
  operator who imposed (or confirmed) the sanction.

Kinds and subject kinds arrive as plain strings so the service can answer an
unknown one with its own code (``unknown_sanction_kind``, ``unsupported_subject``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from ..api.deps import operator_with, services
from ..domain.enums import Role
from ..domain.principals import Principal
from ..services.container import Services
from ..services.sanction_state import Stage
from ..services.sanctions import MAX_EVIDENCE_IDS
from ..services.worklists import AppealFilter, Order, PageArgs, SanctionFilter, SanctionSort
from .schemas import ERRORS, AppealDecisionOut, SubjectHistoryOut, AppealOut, Page, SanctionDetailOut, SanctionOut
from ..domain.fields import Id, Instant, Text, bounded

router = APIRouter(prefix="/admin/v1", tags=["admin", "sanctions"], responses=ERRORS)

Svc = Annotated[Services, Depends(services)]
Sanctioner = Annotated[Principal, Depends(operator_with(Role.MODERATOR, Role.COMPLIANCE))]
Compliance = Annotated[Principal, Depends(operator_with(Role.COMPLIANCE))]
MAX_DURATION_SECONDS = 10 * 365 * 24 * 3600  # ten years; longer than that is a closure


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EvidenceIn(Strict):
    message_ids: list[Id] = Field(default_factory=list, max_length=MAX_EVIDENCE_IDS)
    post_ids: list[Id] = Field(default_factory=list, max_length=MAX_EVIDENCE_IDS)
    report_ids: list[Id] = Field(default_factory=list, max_length=MAX_EVIDENCE_IDS)


class SanctionIn(Strict):
    subject_kind: Text = Field(default="user", max_length=32)
    subject_id: Id
    kind: Text = Field(max_length=32)
    reason: Text = Field(max_length=4000)
    evidence: EvidenceIn = Field(default_factory=EvidenceIn)
    ends_at: Instant | None = None
    # Bounded both ways so no timedelta overflows; a zero or negative duration is
    # the service's invalid_period.
    duration_seconds: bounded(-MAX_DURATION_SECONDS, MAX_DURATION_SECONDS) | None = None


class NoteIn(Strict):
    note: Text = Field(default="", max_length=2000)


class DeclineIn(Strict):
    note: Text = Field(max_length=2000)


class LiftIn(Strict):
    reason: Text = Field(max_length=4000)


class DecisionIn(Strict):
    decision: Literal["uphold", "overturn"]
    note: Text = Field(default="", max_length=2000)


@router.post("/sanctions", status_code=201, response_model=SanctionOut)
async def impose(body: SanctionIn, me: Sanctioner, svc: Svc) -> dict:
    """Impose a sanction: warning and restrict_publication (moderator), suspend_updates and
    close_account (compliance; a closure waits for a second operator's confirmation)."""
    return await svc.sanctions.impose(
        me,
        subject_kind=body.subject_kind,
        subject_id=body.subject_id,
        kind=body.kind,
        reason=body.reason,
        evidence=body.evidence.model_dump(),
        ends_at=body.ends_at,
        duration_seconds=body.duration_seconds,
    )


@router.get("/sanctions", response_model=Page[SanctionOut])
async def list_sanctions(
    me: Sanctioner,
    svc: Svc,
    f: Annotated[SanctionFilter, Depends()],
    args: Annotated[PageArgs, Depends()],
    sort: SanctionSort = SanctionSort.CREATED_AT,
    order: Order = Order.DESC,
) -> dict:
    """Sanctions filtered by kind, status, subject, imposing operator and creation period [since, until); newest first by default."""
    return await svc.workbench.lists.sanctions_list(me, f, args, sort=sort, order=order)


@router.get("/sanctions/awaiting-confirmation", response_model=Page[SanctionOut])
async def awaiting_confirmation(me: Compliance, svc: Svc, args: Annotated[PageArgs, Depends()]) -> dict:
    """What waits for a second operator, oldest first: closures to confirm, proposals to lift or overturn one
    (`GET /sanctions?status=awaiting_confirmation`)."""
    awaiting = SanctionFilter(status=Stage.AWAITING_CONFIRMATION)
    return await svc.workbench.lists.sanctions_list(me, awaiting, args, order=Order.ASC)


@router.get("/sanctions/{sanction_id}", response_model=SanctionDetailOut)
async def get_sanction(sanction_id: Id, me: Sanctioner, svc: Svc) -> dict:
    """One sanction with its events, appeal, regulator records and its evidence's content (an audited read)."""
    return await svc.workbench.lists.sanction_detail(me, sanction_id)


@router.post("/sanctions/{sanction_id}/confirm", response_model=SanctionOut)
async def confirm(sanction_id: Id, me: Compliance, svc: Svc, body: NoteIn | None = None) -> dict:
    """Confirm a closure (a second compliance operator, not the one who imposed it): it takes effect now."""
    return await svc.sanctions.confirm(me, sanction_id, note=body.note if body else "")


@router.post("/sanctions/{sanction_id}/decline", response_model=SanctionOut)
async def decline(sanction_id: Id, body: DeclineIn, me: Sanctioner, svc: Svc) -> dict:
    """A second operator declines a pending proposal to lift or overturn: the sanction stands."""
    return await svc.sanctions.decline(me, sanction_id, note=body.note)


@router.post("/sanctions/{sanction_id}/lift", response_model=SanctionOut)
async def lift(sanction_id: Id, body: LiftIn, me: Sanctioner, svc: Svc) -> dict:
    """End a sanction early, with a reason (by the role that imposes its kind)."""
    return await svc.sanctions.lift(me, sanction_id, reason=body.reason)


@router.get("/subjects/{subject_kind}/{subject_id}/sanctions", response_model=SubjectHistoryOut)
async def subject_history(subject_kind: Text, subject_id: Id, _: Sanctioner, svc: Svc) -> dict:
    """A subject's sanctions and its strikes in the strike window (the escalation hint)."""
    return await svc.sanctions.history(subject_kind, subject_id)


@router.get("/appeals", response_model=Page[AppealOut])
async def list_appeals(
    me: Compliance,
    svc: Svc,
    f: Annotated[AppealFilter, Depends()],
    args: Annotated[PageArgs, Depends()],
    order: Order = Order.ASC,
) -> dict:
    """Appeals in every status (or one), filed in [since, until), oldest first, each with its sanction."""
    return await svc.workbench.lists.appeals_list(me, f, args, order=order)


@router.post("/appeals/{appeal_id}/decision", response_model=AppealDecisionOut)
async def decide_appeal(appeal_id: Id, body: DecisionIn, me: Compliance, svc: Svc) -> dict:
    """Uphold or overturn an appeal (compliance, neither the imposer nor the confirmer)."""
    return await svc.sanctions.decide_appeal(me, appeal_id, overturn=body.decision == "overturn", note=body.note)
