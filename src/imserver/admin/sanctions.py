"""Sanctions and appeals for operators (Art. 8; ARCHITECTURE.md "Sanctions (the ladder)", "Operators").

* ``POST /sanctions``: impose. ``warning`` and ``restrict_publication`` need
  ``moderator``; ``suspend_updates`` and ``close_account`` need ``compliance``
  (403 otherwise). A closure waits for ``POST /sanctions/{id}/confirm`` by a
  second, different compliance operator.
* ``POST /sanctions/{id}/lift``: end it early, with a reason (a ``lifted`` event).
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

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from ..api.deps import operator_with, services
from ..domain.enums import Role
from ..domain.principals import Principal
from ..services.container import Services
from ..services.sanctions import MAX_EVIDENCE_IDS, PAGE_MAX
from ..api.fields import Cursor, Id, Instant, Text, bounded

router = APIRouter(prefix="/admin/v1", tags=["admin", "sanctions"])

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


class LiftIn(Strict):
    reason: Text = Field(max_length=4000)


class DecisionIn(Strict):
    decision: Literal["uphold", "overturn"]
    note: Text = Field(default="", max_length=2000)


@router.post("/sanctions", status_code=201)
async def impose(body: SanctionIn, me: Sanctioner, svc: Svc) -> dict:
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


@router.get("/sanctions/awaiting-confirmation")
async def awaiting_confirmation(
    _: Compliance, svc: Svc, limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 50
) -> list[dict]:
    return await svc.sanctions.awaiting_confirmation(limit)


@router.get("/sanctions/{sanction_id}")
async def get_sanction(sanction_id: Id, _: Sanctioner, svc: Svc) -> dict:
    return await svc.sanctions.get(sanction_id)


@router.post("/sanctions/{sanction_id}/confirm")
async def confirm(sanction_id: Id, me: Compliance, svc: Svc, body: NoteIn | None = None) -> dict:
    return await svc.sanctions.confirm(me, sanction_id, note=body.note if body else "")


@router.post("/sanctions/{sanction_id}/lift")
async def lift(sanction_id: Id, body: LiftIn, me: Sanctioner, svc: Svc) -> dict:
    return await svc.sanctions.lift(me, sanction_id, reason=body.reason)


@router.get("/subjects/{subject_kind}/{subject_id}/sanctions")
async def subject_history(subject_kind: Text, subject_id: Id, _: Sanctioner, svc: Svc) -> dict:
    return await svc.sanctions.history(subject_kind, subject_id)


@router.get("/appeals")
async def pending_appeals(
    _: Compliance,
    svc: Svc,
    after: Annotated[Cursor, Query(ge=0, description="return appeals with id greater than this")] = 0,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 50,
) -> dict:
    items = await svc.sanctions.pending_appeals(after=after, limit=limit)
    return {"items": items, "next_after": items[-1]["appeal_id"] if items else after}


@router.post("/appeals/{appeal_id}/decision")
async def decide_appeal(appeal_id: Id, body: DecisionIn, me: Compliance, svc: Svc) -> dict:
    return await svc.sanctions.decide_appeal(me, appeal_id, overturn=body.decision == "overturn", note=body.note)
