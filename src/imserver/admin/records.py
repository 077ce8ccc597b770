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

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from ..api.deps import operator_with, services
from ..domain.enums import Role
from ..domain.principals import Principal
from ..services.container import Services

router = APIRouter(prefix="/admin/v1", tags=["admin", "records"])

Svc = Annotated[Services, Depends(services)]
Compliance = Annotated[Principal, Depends(operator_with(Role.COMPLIANCE))]
PrincipalKindParam = Literal["user", "operator"] | None


def access_filters(
    principal_kind: PrincipalKindParam = None,
    principal_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict:
    """The sign-in log's filters, shared by the page and the export."""
    return {"principal_kind": principal_kind, "principal_id": principal_id, "since": since, "until": until}


Filters = Annotated[dict, Depends(access_filters)]


@router.get("/access-log")
async def access_log(
    _: Compliance,
    svc: Svc,
    filters: Filters,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict:
    return await svc.access_log.read(after=after, limit=limit, **filters)


@router.get("/access-log/export")
async def export_access_log(_: Compliance, svc: Svc, filters: Filters, format: Literal["jsonl", "csv"] = "jsonl") -> Response:
    body, count = await svc.access_log.export(fmt=format, **filters)
    return Response(
        body,
        media_type="text/csv; charset=utf-8" if format == "csv" else "application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="access-log.{format}"', "X-Record-Count": str(count)},
    )


@router.get("/records/verify")
async def verify_records(_: Annotated[Principal, Depends(operator_with(Role.COMPLIANCE, Role.ADMIN))], svc: Svc) -> dict:
    """The chain over every record table: every changed, deleted, swapped or inserted row, by table and id."""
    return (await svc.records.verify()).to_dict()


@router.post("/checkpoints", status_code=201)
async def take_checkpoint(_: Compliance, svc: Svc) -> dict:
    """Sign the chain heads now (also sent to the regulator outbox)."""
    return await svc.checkpoints.take()


@router.get("/checkpoints")
async def list_checkpoints(_: Compliance, svc: Svc, limit: Annotated[int, Query(ge=1, le=1000)] = 20) -> dict:
    return {"checkpoints": await svc.checkpoints.latest(limit)}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HoldIn(Strict):
    subject_kind: Literal["user", "conversation", "public_account"]
    subject_id: int
    reason: str = Field(max_length=2000)


class ReleaseIn(Strict):
    reason: str = Field(max_length=2000)


class PurgeIn(Strict):
    kinds: list[str] | None = None
    days: float | None = None  # overrides the configured period; never under the legal floor


@router.get("/retention")
async def retention_table(_: Annotated[Principal, Depends(operator_with(Role.COMPLIANCE, Role.ADMIN))], svc: Svc) -> dict:
    return {"kinds": svc.retention.table()}


@router.post("/retention/purge")
async def purge(body: PurgeIn, me: Compliance, svc: Svc) -> dict:
    return {"purged": await svc.retention.purge(body.kinds, days=body.days, operator_id=me.id)}


@router.post("/legal-holds", status_code=201)
async def place_hold(body: HoldIn, me: Compliance, svc: Svc) -> dict:
    return await svc.legal_holds.place(me, subject_kind=body.subject_kind, subject_id=body.subject_id, reason=body.reason)


@router.post("/legal-holds/{hold_id}/release")
async def release_hold(hold_id: int, body: ReleaseIn, me: Compliance, svc: Svc) -> dict:
    return await svc.legal_holds.release(me, hold_id, reason=body.reason)


@router.get("/legal-holds")
async def list_holds(
    _: Compliance,
    svc: Svc,
    active: bool = True,
    subject_kind: Literal["user", "conversation", "public_account"] | None = None,
    subject_id: int | None = None,
) -> dict:
    return {"holds": await svc.legal_holds.list(active_only=active, subject_kind=subject_kind, subject_id=subject_id)}


@router.get("/account-deletions")
async def account_deletions(
    _: Annotated[Principal, Depends(operator_with(Role.COMPLIANCE, Role.ADMIN))],
    svc: Svc,
    pending: bool = True,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict:
    """Deletion requests with their schedule (erase_after) and whether a legal hold stops them."""
    return await svc.deletions.listing(pending_only=pending, after=after, limit=limit)


@router.get("/users/{user_id}/records")
async def subject_records(user_id: int, since: datetime, until: datetime, me: Compliance, svc: Svc) -> dict:
    """Everything the records hold about a user in [since, until): the regulator's question, one call."""
    return await svc.subject_export.user(user_id, since=since, until=until, actor_kind="operator", actor_id=me.id)
