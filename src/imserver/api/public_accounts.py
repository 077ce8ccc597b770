"""Public accounts for users (Art. 7): apply, edit, profile, search, follow, post, history.

* ``POST /public-accounts``: apply (verified real name only).
* ``GET /public-accounts/mine``: the caller's accounts, any status, with review outcomes.
* ``PATCH /public-accounts/{id}``: description at once; name, category, operator or
  licence as a change awaiting re-review.
* ``GET /public-accounts?q=&category=``: search approved accounts.
* ``GET /public-accounts/following``: the accounts the caller follows.
* ``GET /public-accounts/{id}``: the profile (badge, status, followers, filing reference).
* ``PUT|DELETE /public-accounts/{id}/follow``: follow, unfollow (idempotent).
* ``POST /public-accounts/{id}/posts``: post; the ack is the post id and position,
  or the reason code of the check that refused it.
* ``GET /public-accounts/{id}/posts``: history, newest first.
* ``DELETE /public-accounts/{id}/posts/{post_id}``: the owner takes a post down.

Bodies forbid unknown fields: nothing an account sends can set its news
permission or badge (Art. 7 ¶2-3), which the server derives.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from ..domain.principals import Principal
from ..services.container import Services
from ..services.public_accounts import PAGE_MAX
from .deps import current_user, services
from ..domain.fields import Cursor, Id, Instant, Text

router = APIRouter(prefix="/api/v1/public-accounts", tags=["public accounts"])

Svc = Annotated[Services, Depends(services)]
Me = Annotated[Principal, Depends(current_user)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Bounds here are generous; the service checks the real rules and answers with its own codes.
class ApplicationIn(Strict):
    name: Text = Field(max_length=256)
    description: Text = Field(default="", max_length=4000)
    category: Text = Field(max_length=64)
    operator_name: Text | None = Field(default=None, max_length=512)
    credit_code: Text | None = Field(default=None, max_length=64)
    licence_number: Text | None = Field(default=None, max_length=128)
    licence_expires_at: Instant | None = None
    province: Text | None = Field(default=None, max_length=8)  # individuals: GB/T 2260 code declared


class UpdateIn(Strict):
    name: Text | None = Field(default=None, max_length=256)
    description: Text | None = Field(default=None, max_length=4000)
    category: Text | None = Field(default=None, max_length=64)
    operator_name: Text | None = Field(default=None, max_length=512)
    credit_code: Text | None = Field(default=None, max_length=64)
    licence_number: Text | None = Field(default=None, max_length=128)
    licence_expires_at: Instant | None = None


class SourceIn(Strict):
    name: Text | None = Field(default=None, max_length=1000)
    url: Text | None = Field(default=None, max_length=4096)
    author: Text | None = Field(default=None, max_length=1000)
    title: Text | None = Field(default=None, max_length=1000)


class PostIn(Strict):
    kind: Literal["ordinary", "news_original", "news_reprint"] = "ordinary"
    title: Text = Field(max_length=1000)
    body: Text = Field(max_length=100_000)
    source: SourceIn | None = None


@router.post("", status_code=201)
async def apply(body: ApplicationIn, me: Me, svc: Svc) -> dict:
    """Apply for a public account (reviewed before it may publish)."""
    return await svc.public_accounts.apply(me.id, **body.model_dump())


@router.get("")
async def search(
    svc: Svc,
    me: Me,
    q: Annotated[Text | None, Query(max_length=64)] = None,
    category: Annotated[Text | None, Query(max_length=64)] = None,
    after: Annotated[Cursor, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 20,
) -> dict:
    """Search approved public accounts by name and category."""
    items = await svc.public_accounts.search(query=q, category=category, after=after, limit=limit)
    return {"items": items, "next_after": items[-1]["id"] if items else after}


@router.get("/mine")
async def mine(me: Me, svc: Svc) -> dict:
    """The caller's own public accounts, with their review state."""
    return {"items": await svc.public_accounts.mine(me.id)}


@router.get("/following")
async def following(me: Me, svc: Svc) -> dict:
    """The public accounts the caller follows."""
    return {"items": await svc.public_accounts.following(me.id)}


@router.get("/{account_id}")
async def profile(account_id: Id, me: Me, svc: Svc) -> dict:
    """One public account as users see it."""
    return await svc.public_accounts.profile(account_id, viewer_id=me.id)


@router.patch("/{account_id}")
async def update(account_id: Id, body: UpdateIn, me: Me, svc: Svc) -> dict:
    """Change an account's filed facts (a filed account's change is re-reviewed)."""
    return await svc.public_accounts.update(me.id, account_id, body.model_dump(exclude_unset=True))


@router.put("/{account_id}/follow")
async def follow(account_id: Id, me: Me, svc: Svc) -> dict:
    """Follow a public account."""
    return await svc.public_accounts.follow(me.id, account_id)


@router.delete("/{account_id}/follow")
async def unfollow(account_id: Id, me: Me, svc: Svc) -> dict:
    """Stop following a public account."""
    return await svc.public_accounts.unfollow(me.id, account_id)


@router.post("/{account_id}/posts", status_code=201)
async def post(account_id: Id, body: PostIn, me: Me, svc: Svc) -> dict:
    """Publish a post from an account the caller owns."""
    source = body.source.model_dump() if body.source is not None else None
    return await svc.public_accounts.post(
        me.id, account_id, kind=body.kind, title=body.title, body=body.body, source=source
    )


@router.get("/{account_id}/posts")
async def history(
    account_id: Id,
    me: Me,
    svc: Svc,
    before: Annotated[Id | None, Query(ge=1, description="posts with a position below this")] = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 20,
) -> dict:
    """An account's posts, newest first."""
    items = await svc.public_accounts.history(account_id, viewer_id=me.id, before=before, limit=limit)
    return {"items": items, "next_before": items[-1]["position"] if items else None}


@router.delete("/{account_id}/posts/{post_id}")
async def take_down(account_id: Id, post_id: Id, me: Me, svc: Svc) -> dict:
    """The owner takes their own post down."""
    return await svc.public_accounts.take_down_own(me.id, account_id, post_id)
