"""Helpers for identity tests: valid resident ID numbers, computed rather than copied."""

from __future__ import annotations

import itertools

import httpx

# GB 11643-1999 weights for the 17 leading digits; check digit table of ISO 7064 MOD 11-2.
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK = "10X98765432"
_seq = itertools.count(1)


def check_digit(first17: str) -> str:
    return CHECK[sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11]


def make_id(region: str = "110105", birth: str = "19491231", seq: str | None = None) -> str:
    """A valid 18-character ID number; a fresh order code each call unless given."""
    seq = seq or f"{next(_seq) % 1000:03d}"
    body = region + birth + seq
    return body + check_digit(body)


def identity(**over) -> dict:
    fields = {"legal_name": "张三", "id_number": make_id(), "phone": "13812345678"}
    fields.update(over)
    return fields


async def submit(http: httpx.AsyncClient, user: dict, **over) -> httpx.Response:
    return await http.post("/api/v1/identity", json=identity(**over), headers=user["headers"])
