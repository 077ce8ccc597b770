"""A user's own identity (Art. 6 ¶1): submit it, and see where its check stands.

Responses carry the status only; the fields never come back to the user side.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from ..domain.principals import Principal
from ..services.container import Services
from .deps import current_user, services
from ..domain.fields import Text

router = APIRouter(prefix="/api/v1", tags=["identity"])


class IdentityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Generous bounds: the service checks the real rules and names the field.
    legal_name: Text = Field(max_length=256)
    id_number: Text = Field(max_length=64)
    phone: Text = Field(max_length=32)


@router.post("/identity", status_code=201)
async def submit_identity(
    body: IdentityIn, me: Annotated[Principal, Depends(current_user)], svc: Annotated[Services, Depends(services)]
) -> dict:
    """Submit one's real-name identity for review."""
    status = await svc.identities.submit(me.id, legal_name=body.legal_name, id_number=body.id_number, phone=body.phone)
    return {"status": status.value}


@router.get("/identity")
async def identity_status(
    me: Annotated[Principal, Depends(current_user)], svc: Annotated[Services, Depends(services)]
) -> dict:
    """Where the caller's identity review stands (masked)."""
    return {"status": (await svc.identities.status(me.id)).value}
