"""(being written)"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/admin/v1", tags=["admin"])
