"""Groups and history over REST (the WebSocket carries sends and live delivery)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from ..domain.principals import Principal
from ..services.container import Services
from .deps import current_user, services
from ..domain.fields import Cursor, Id, Text

router = APIRouter(prefix="/api/v1", tags=["chat"])

Me = Annotated[Principal, Depends(current_user)]
Svc = Annotated[Services, Depends(services)]


class GroupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Text = Field(min_length=1, max_length=128)
    members: list[Id] = Field(default_factory=list, max_length=1000)


class InviteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_ids: list[Id] = Field(min_length=1, max_length=1000)


@router.post("/groups", status_code=201)
async def create_group(body: GroupIn, me: Me, svc: Svc) -> dict:
    """Create a group conversation."""
    group_id = await svc.messaging.create_group(me.id, body.name, body.members)
    return {"id": group_id}


@router.post("/groups/{group_id}/members")
async def invite(group_id: Id, body: InviteIn, me: Me, svc: Svc) -> dict:
    """Add members to a group."""
    added = await svc.messaging.invite(me.id, group_id, body.user_ids)
    return {"added": added}


@router.delete("/groups/{group_id}/members/me", status_code=204)
async def leave(group_id: Id, me: Me, svc: Svc) -> None:
    """Leave a group."""
    await svc.messaging.leave(me.id, group_id)


@router.delete("/groups/{group_id}/members/{user_id}", status_code=204)
async def remove_member(group_id: Id, user_id: Id, me: Me, svc: Svc) -> None:
    """The group's owner removes a member: nothing sent afterwards reaches them, on any node."""
    await svc.messaging.remove_member(me.id, group_id, user_id)


@router.get("/groups/{group_id}/members")
async def members(group_id: Id, me: Me, svc: Svc) -> list[dict]:
    """A group's members."""
    return await svc.messaging.members(me.id, group_id)


@router.get("/conversations")
async def conversations(
    me: Me,
    svc: Svc,
    after: Annotated[Cursor, Query(description="return conversations with id greater than this")] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
) -> dict:
    """The caller's conversations, a page at a time (`next_after` is null on the last page)."""
    items = await svc.messaging.conversations(me.id, after=after, limit=limit)
    return {"items": items, "next_after": items[-1]["id"] if len(items) == limit else None}


@router.get("/conversations/{conversation_id}/messages")
async def history(
    conversation_id: Id,
    me: Me,
    svc: Svc,
    before: Annotated[Id | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict:
    """A conversation's delivered messages, newest first (messages are sent over /ws)."""
    items = await svc.messaging.history(me.id, conversation_id, before, limit)
    next_before = items[-1]["message_id"] if len(items) == limit else None
    return {"messages": items, "next_before": next_before}
