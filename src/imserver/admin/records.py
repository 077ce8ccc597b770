"""Records for `compliance`: the sign-in and network log, checkpoints, retention, legal holds.

``GET /access-log`` pages the log filtered by principal and period;
``GET /access-log/export`` returns all of it as JSON lines or CSV.
``GET /records/verify`` walks the record chain (as ``imserver audit verify``).
``POST /checkpoints`` signs the chain heads now; ``GET /checkpoints`` lists them.
``GET /retention`` is the retention table; ``POST /retention/purge`` runs the purge.
``POST /legal-holds``, ``POST /legal-holds/{id}/release``, ``GET /legal-holds``.
``GET /account-deletions``: deletion requests and when each account's data goes.
``GET /users/{id}/records?since=&until=``: everything about a user in a period.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from ..api.deps import operator_with, services
from ..domain.enums import Role
from ..domain.fields import Cursor, Id, Instant, Text
from ..domain.principals import Principal
from ..services.container import Services
from .schemas import ERRORS, OpenOut, Out

router = APIRouter(prefix="/admin/v1", tags=["admin", "records"], responses=ERRORS)

Svc = Annotated[Services, Depends(services)]
Compliance = Annotated[Principal, Depends(operator_with(Role.COMPLIANCE))]
PrincipalKindParam = Literal["user", "operator"] | None


def access_filters(
    principal_kind: PrincipalKindParam = None,
    principal_id: Id | None = None,
    since: Instant | None = None,
    until: Instant | None = None,
) -> dict:
    """The sign-in log's filters, shared by the page and the export."""
    return {"principal_kind": principal_kind, "principal_id": principal_id, "since": since, "until": until}


Filters = Annotated[dict, Depends(access_filters)]
ComplianceOrAdmin = Annotated[Principal, Depends(operator_with(Role.COMPLIANCE, Role.ADMIN))]
EXPORT_TYPES = {"text/csv": {}, "application/x-ndjson": {}}  # the export's two formats, for the OpenAPI


# -- response models -----------------------------------------------------------------------


class AccessEntryOut(Out):
    id: int
    at: str
    event: str = Field(description="signin, signin_failed, signout, ws_open or ws_close")
    principal_kind: str
    principal_id: int | None = Field(description="null: a failed sign-in under a handle no account has")
    handle: str | None
    ip: str | None
    user_agent: str | None
    node: str
    connection: str | None = Field(description="pairs a WebSocket session's open and close rows on one node")
    close_code: int | None
    detail: str | None


class AccessPageOut(Out):
    entries: list[AccessEntryOut]
    next_after: int | None = Field(description="pass as `after` for the next page; null on the last page")


class ChainBreakOut(Out):
    seq: int
    kind: str
    reason: str


class RecordProblemOut(Out):
    table: str
    row_id: int
    kind: str = Field(description="changed, deleted, inserted or reordered")
    reason: str


class VerifyOut(Out):
    ok: bool
    entries: int
    rows: int
    pending: int
    head: str | None = Field(description="seq:hash of the chain's last sealed entry")
    anchor: str | None
    chain_break: ChainBreakOut | None
    problems: list[RecordProblemOut]
    problem_count: int


class CheckpointOut(Out):
    id: int
    at: str
    node: str
    chain_head: str
    audit_head: str
    public_key: str = Field(description="Ed25519, hex")
    signature: str = Field(description="hex")


class CheckpointsOut(Out):
    checkpoints: list[CheckpointOut]


class RetentionKindOut(Out):
    kind: str
    days: float
    minimum_days: float
    covers: str


class RetentionTableOut(Out):
    kinds: list[RetentionKindOut]


class PurgedOut(OpenOut):
    """Per record kind, what the purge removed (counts and id ranges, never contents)."""

    purged: dict[str, dict]


class HoldSubjectOut(Out):
    kind: str
    id: int


class HoldOut(Out):
    id: int
    subject: HoldSubjectOut
    reason: str
    placed_by: int
    placed_at: str
    released_by: int | None
    released_at: str | None
    release_reason: str | None
    active: bool


class HoldsOut(Out):
    holds: list[HoldOut]


class DeletionOut(Out):
    id: int
    user_id: int
    requested_at: str
    erase_after: str = Field(description="personal data goes after this, unless a legal hold covers the user")
    erased_at: str | None
    held: bool


class DeletionsOut(Out):
    items: list[DeletionOut]
    next_after: int | None


class SubjectRecordsOut(OpenOut):
    """Everything the records hold about the user in the period, kind by kind."""

    subject: HoldSubjectOut
    since: str
    until: str
    generated_at: str
    counts: dict[str, int]
    truncated: list[str]
    records: dict


@router.get("/access-log", response_model=AccessPageOut)
async def access_log(
    _: Compliance,
    svc: Svc,
    filters: Filters,
    after: Cursor = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict:
    """The sign-in and network log, oldest first, filtered by principal and period [since, until)."""
    return await svc.access_log.read(after=after, limit=limit, **filters)


@router.get(
    "/access-log/export",
    response_class=Response,
    responses={200: {"content": EXPORT_TYPES, "description": "the rows; X-Record-Count says how many"}},
)
async def export_access_log(_: Compliance, svc: Svc, filters: Filters, format: Literal["jsonl", "csv"] = "jsonl") -> Response:
    """The sign-in and network log with the same filters, as JSON lines or CSV, in one download."""
    body, count = await svc.access_log.export(fmt=format, **filters)
    return Response(
        body,
        media_type="text/csv; charset=utf-8" if format == "csv" else "application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="access-log.{format}"', "X-Record-Count": str(count)},
    )


@router.get("/records/verify", response_model=VerifyOut)
async def verify_records(_: ComplianceOrAdmin, svc: Svc) -> dict:
    """The chain over every record table: every changed, deleted, swapped or inserted row, by table and id."""
    return (await svc.records.verify()).to_dict()


@router.post("/checkpoints", status_code=201, response_model=CheckpointOut)
async def take_checkpoint(_: Compliance, svc: Svc) -> dict:
    """Sign the chain heads now (also sent to the regulator outbox)."""
    return await svc.checkpoints.take()


@router.get("/checkpoints", response_model=CheckpointsOut)
async def list_checkpoints(_: Compliance, svc: Svc, limit: Annotated[int, Query(ge=1, le=1000)] = 20) -> dict:
    """The latest signed checkpoints, newest first."""
    return {"checkpoints": await svc.checkpoints.latest(limit)}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HoldIn(Strict):
    subject_kind: Literal["user", "conversation", "public_account"]
    subject_id: Id
    reason: Text = Field(max_length=2000)


class ReleaseIn(Strict):
    reason: Text = Field(max_length=2000)


class PurgeIn(Strict):
    kinds: list[Text] | None = None
    days: float | None = Field(default=None, ge=0, le=36_500)  # overrides the configured period; never under the legal floor


@router.get("/retention", response_model=RetentionTableOut)
async def retention_table(_: ComplianceOrAdmin, svc: Svc) -> dict:
    """The retention table as configured: each kind's period and its legal floor."""
    return {"kinds": svc.retention.table()}


@router.post("/retention/purge", response_model=PurgedOut)
async def purge(body: PurgeIn, me: Compliance, svc: Svc) -> dict:
    """Purge what is past retention now (`retention_below_minimum` under the legal floor); nothing under a hold."""
    return {"purged": await svc.retention.purge(body.kinds, days=body.days, operator_id=me.id)}


@router.post("/legal-holds", status_code=201, response_model=HoldOut)
async def place_hold(body: HoldIn, me: Compliance, svc: Svc) -> dict:
    """Suspend purging everything about a user, conversation or public account (`hold_reason_required`)."""
    return await svc.legal_holds.place(me, subject_kind=body.subject_kind, subject_id=body.subject_id, reason=body.reason)


@router.post("/legal-holds/{hold_id}/release", response_model=HoldOut)
async def release_hold(hold_id: Id, body: ReleaseIn, me: Compliance, svc: Svc) -> dict:
    """Release a hold, with a reason; purging of what it covered resumes."""
    return await svc.legal_holds.release(me, hold_id, reason=body.reason)


@router.get("/legal-holds", response_model=HoldsOut)
async def list_holds(
    _: Compliance,
    svc: Svc,
    active: bool = True,
    subject_kind: Literal["user", "conversation", "public_account"] | None = None,
    subject_id: Id | None = None,
) -> dict:
    """Legal holds (active ones unless `active=false`), optionally of one subject."""
    return {"holds": await svc.legal_holds.list(active_only=active, subject_kind=subject_kind, subject_id=subject_id)}


@router.get("/account-deletions", response_model=DeletionsOut)
async def account_deletions(
    _: ComplianceOrAdmin,
    svc: Svc,
    pending: bool = True,
    after: Cursor = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict:
    """Deletion requests with their schedule (erase_after) and whether a legal hold stops them."""
    return await svc.deletions.listing(pending_only=pending, after=after, limit=limit)


@router.get("/users/{user_id}/records", response_model=SubjectRecordsOut)
async def subject_records(user_id: Id, since: Instant, until: Instant, me: Compliance, svc: Svc) -> dict:
    """Everything the records hold about a user in [since, until): the regulator's question, one call."""
    return await svc.subject_export.user(user_id, since=since, until=until, actor_kind="operator", actor_id=me.id)
