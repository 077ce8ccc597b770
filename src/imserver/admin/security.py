"""Operator security: the TOTP second factor.

* ``POST /totp/enroll``: a new secret for the caller (shown once), off until enabled.
* ``POST /totp/enable``: prove a current code; sign-ins then need one.

The routes need only a signed-in operator, so one whose role requires a second
factor (``operator_totp_required_roles``) can enrol before anything else is
open to them. The four-eyes confirmation of privileged grants lives with the
other operator routes (admin/routes.py, services/operators.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from ..api.deps import current_operator, services
from ..domain.fields import Text
from ..domain.principals import Principal
from ..services.container import Services
from .schemas import ERRORS, TotpEnabledOut, TotpEnrollOut

router = APIRouter(prefix="/admin/v1", tags=["admin", "security"], responses=ERRORS)

Svc = Annotated[Services, Depends(services)]
Me = Annotated[Principal, Depends(current_operator)]


class CodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: Text = Field(max_length=16, description="the authenticator's current six-digit code")


@router.post("/totp/enroll", response_model=TotpEnrollOut)
async def enroll_totp(me: Me, svc: Svc) -> dict:
    """Start enrolling a TOTP second factor: a new secret, shown once (`second_factor_state` if one is on)."""
    return await svc.accounts.enroll_totp(me)


@router.post("/totp/enable", response_model=TotpEnabledOut)
async def enable_totp(body: CodeIn, me: Me, svc: Svc) -> dict:
    """Turn the enrolled secret on by proving a current code; from then on sign-in needs a code."""
    return await svc.accounts.enable_totp(me, body.code)
