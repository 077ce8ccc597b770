"""Content-filter term lists (`admin` role), read by the policy pipeline's content filter.

* ``GET /terms?list_name=``: page through terms.
* ``POST /terms``: one term; ``POST /terms/bulk``: many terms of one list and action.
* ``PATCH /terms/{id}``: change its action; ``DELETE /terms/{id}``.

Each change is audited and reloads the gate's filter on every node.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from ..api.deps import operator_with, services
from ..domain.enums import Role
from ..domain.principals import Principal
from ..services.container import Services
from ..services.terms import MAX_BULK
from ..services.worklists import PageArgs
from .schemas import ERRORS, BulkTermsOut, Page, TermOut
from ..domain.fields import Id, Text

router = APIRouter(prefix="/admin/v1", tags=["admin", "terms"], responses=ERRORS)

Svc = Annotated[Services, Depends(services)]
Admin = Annotated[Principal, Depends(operator_with(Role.ADMIN))]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TermIn(Strict):
    list_name: Text = Field(default="default", max_length=64)
    term: Text = Field(max_length=400)
    action: Text = Field(max_length=8)


class BulkIn(Strict):
    list_name: Text = Field(default="default", max_length=64)
    action: Text = Field(max_length=8)
    terms: list[Text] = Field(max_length=MAX_BULK)


class ActionIn(Strict):
    action: Text = Field(max_length=8)


@router.get("/terms", response_model=Page[TermOut])
async def list_terms(
    _: Admin,
    svc: Svc,
    args: Annotated[PageArgs, Depends()],
    list_name: Annotated[Text | None, Query(max_length=64)] = None,
) -> dict:
    """Content-filter terms in id order, of one list or all."""
    return await svc.terms.list(list_name=list_name, cursor=args.cursor, limit=args.limit)


@router.post("/terms", status_code=201, response_model=TermOut)
async def add_term(body: TermIn, me: Admin, svc: Svc) -> dict:
    """Add one term to a list (`term_exists` if it is there); every node reloads its filter."""
    return await svc.terms.add(me, list_name=body.list_name, term=body.term, action=body.action)


@router.post("/terms/bulk", response_model=BulkTermsOut)
async def add_terms(body: BulkIn, me: Admin, svc: Svc) -> dict:
    """Add many terms of one list and action; terms already there are skipped."""
    return await svc.terms.add_many(me, list_name=body.list_name, terms=body.terms, action=body.action)


@router.patch("/terms/{term_id}", response_model=TermOut)
async def set_action(term_id: Id, body: ActionIn, me: Admin, svc: Svc) -> dict:
    """Change what a term does (deny or hold)."""
    return await svc.terms.set_action(me, term_id, action=body.action)


@router.delete("/terms/{term_id}", status_code=204)
async def remove_term(term_id: Id, me: Admin, svc: Svc) -> None:
    """Remove a term."""
    await svc.terms.remove(me, term_id)
