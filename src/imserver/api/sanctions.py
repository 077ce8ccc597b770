"""A user's own sanctions and appeals (Art. 8).

* ``GET /sanctions``: the sanctions on your account (and your public accounts)
  that took effect: kind, reason, end, status, and until when each can be appealed.
* ``POST /sanctions/{id}/appeal``: appeal one, once, within the window
  (``appeal_window_days``, default 20). A compliance operator other than the
  one who imposed it decides; you get a ``notice`` with the outcome.

Both accept the appeal-only token a closed account gets when it signs in with
the right password (``account_closed``, ``appeal_token``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from ..domain.principals import Principal
from ..services.container import Services
from ..services.sanctions import MAX_APPEAL_CHARS
from .deps import current_user_or_appeal, services
from ..domain.fields import Id, Text

router = APIRouter(prefix="/api/v1", tags=["sanctions"])

Svc = Annotated[Services, Depends(services)]
# A closed account's appeal token works here, and nowhere else.
Me = Annotated[Principal, Depends(current_user_or_appeal)]


class AppealIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Text = Field(min_length=1, max_length=MAX_APPEAL_CHARS)


@router.get("/sanctions")
async def my_sanctions(me: Me, svc: Svc) -> list[dict]:
    """The caller's own sanctions, with the appeal deadline."""
    return await svc.sanctions.mine(me.id)


@router.post("/sanctions/{sanction_id}/appeal", status_code=201)
async def appeal(sanction_id: Id, body: AppealIn, me: Me, svc: Svc) -> dict:
    """Appeal one's own sanction, once, within the window."""
    return await svc.sanctions.appeal(me, sanction_id, text=body.text)
