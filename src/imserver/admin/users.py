"""Users and their content, for operators.

* ``GET /users``: search by handle or nickname prefix, or exact id; filters, sorting, paging.
* ``GET /users/{id}``: the dossier (identity itself stays behind ``/users/{id}/identity``).
* ``GET /messages/{id}?context=N``, ``GET /posts/{id}``: content with its author; every read is audited.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from ..domain.fields import Id
from ..api.deps import operator_with, services
from ..domain.enums import Role
from ..domain.principals import Principal
from ..services.container import Services
from ..services.content import CONTEXT_MAX
from ..services.directory import UserFilter, UserSort
from ..services.worklists import Order, PageArgs
from .schemas import ERRORS, DossierOut, MessageOut, Page, PostOut, UserSummaryOut

router = APIRouter(prefix="/admin/v1", tags=["admin", "user records"], responses=ERRORS)
content_router = APIRouter(prefix="/admin/v1", tags=["admin", "content"], responses=ERRORS)

Svc = Annotated[Services, Depends(services)]
UserReader = Annotated[Principal, Depends(operator_with(Role.REVIEWER, Role.MODERATOR, Role.COMPLIANCE))]
ContentReader = Annotated[Principal, Depends(operator_with(Role.MODERATOR, Role.COMPLIANCE))]


@router.get("/users", response_model=Page[UserSummaryOut])
async def search_users(
    me: UserReader,
    svc: Svc,
    f: Annotated[UserFilter, Depends()],
    args: Annotated[PageArgs, Depends()],
    sort: UserSort = UserSort.CREATED_AT,
    order: Order = Order.ASC,
) -> dict:
    """Find users by handle or nickname prefix (`q`) or `id`, filtered by status, real-name status,
    sanctions in force and registration period [registered_since, registered_until)."""
    return await svc.workbench.users.search(me, f, args, sort=sort, order=order)


@router.get("/users/{user_id}", response_model=DossierOut)
async def dossier(user_id: Id, me: UserReader, svc: Svc) -> dict:
    """One user's record: profile, statuses, acceptances, sanctions and strikes, reports by and
    against them, appeals, public accounts. Reading it is audited."""
    return await svc.workbench.users.dossier(me, user_id)


@content_router.get("/messages/{message_id}", response_model=MessageOut)
async def read_message(
    message_id: Id,
    me: ContentReader,
    svc: Svc,
    context: Annotated[int, Query(ge=0, le=CONTEXT_MAX, description="messages either side, for context")] = 0,
) -> dict:
    """A message (any status), its author and conversation, and the messages around it. Audited."""
    return await svc.workbench.content.message(me, message_id, context=context)


@content_router.get("/posts/{post_id}", response_model=PostOut)
async def read_post(post_id: Id, me: ContentReader, svc: Svc) -> dict:
    """A post (taken down or not), its account and author. Audited."""
    return await svc.workbench.content.post(me, post_id)
