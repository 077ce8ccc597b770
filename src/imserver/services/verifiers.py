"""Identity verifiers: who decides whether a submitted identity is real (Art. 6 ¶1).

A verifier sees one submission right after it is committed as pending and
answers with a :class:`Verdict`, or ``None`` to leave it in the review queue
for the ``reviewer`` role. It is called outside any transaction, so a slow one
holds no database connection.

* :class:`ReviewQueueVerifier` (``IMSERVER_IDENTITY_VERIFIER=review``, the
  default) always answers ``None``: people decide.
* :class:`HttpVerifier` (``IMSERVER_IDENTITY_VERIFIER=http``) POSTs the fields
  as JSON to ``IMSERVER_IDENTITY_VERIFIER_URL``::

      → {"identity_id": 7, "legal_name": "...", "id_number": "...", "phone": "..."}
      ← 200 {"result": "verified" | "rejected", "note": "optional text"}

  Anything else (an error status, a network fault, an unknown result) raises
  :class:`VerifierError`; the caller then leaves the submission pending, so a
  verification service outage degrades to manual review, never to a lost
  submission. Use https in production: the request carries the plaintext.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import httpx

from ..domain.enums import RealNameStatus

# The verification service answers a lookup, not a batch; ten seconds bounds how
# long a user's submit call waits before falling back to the review queue.
HTTP_VERIFIER_TIMEOUT_SECONDS = 10.0
MAX_NOTE_CHARS = 1000  # the review_note column is Text; bound what a remote service can store


_HTTP_RESULTS = {"verified": RealNameStatus.VERIFIED, "rejected": RealNameStatus.REJECTED}


@dataclass(frozen=True, slots=True)
class Submission:
    identity_id: int
    user_id: int
    legal_name: str
    id_number: str
    phone: str

    def __repr__(self) -> str:  # never let the plaintext reach a log line by accident
        return f"Submission(identity_id={self.identity_id}, user_id={self.user_id})"


@dataclass(frozen=True, slots=True)
class Verdict:
    status: RealNameStatus  # VERIFIED or REJECTED
    note: str = ""


class VerifierError(Exception):
    """The verifier could not decide (its fault, or the network's)."""


class Verifier(Protocol):
    name: str

    async def verify(self, submission: Submission) -> Verdict | None: ...


class ReviewQueueVerifier:
    """Leaves every submission pending for the reviewer role."""

    name = "review"

    async def verify(self, submission: Submission) -> Verdict | None:
        return None


class HttpVerifier:
    """Asks an external verification service over HTTP (see the module docstring)."""

    name = "http"

    def __init__(self, url: str, *, timeout: float = HTTP_VERIFIER_TIMEOUT_SECONDS) -> None:
        if not url:
            raise ValueError("the http identity verifier needs IMSERVER_IDENTITY_VERIFIER_URL")
        self.url = url
        self.timeout = timeout

    async def verify(self, submission: Submission) -> Verdict | None:
        payload = {
            "identity_id": submission.identity_id,
            "legal_name": submission.legal_name,
            "id_number": submission.id_number,
            "phone": submission.phone,
        }
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.post(self.url, json=payload)
        except httpx.HTTPError as exc:
            raise VerifierError(f"the verification service is unreachable: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise VerifierError(f"the verification service answered {response.status_code}")
        try:
            body = response.json()
            status = _HTTP_RESULTS[body["result"]]
            note = str(body.get("note") or "")[:MAX_NOTE_CHARS]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise VerifierError("the verification service's answer is not {'result': 'verified'|'rejected'}") from exc
        return Verdict(status, note)


def build_verifier(kind: str, url: str) -> Verifier:
    if kind == "review":
        return ReviewQueueVerifier()
    if kind == "http":
        return HttpVerifier(url)
    raise ValueError(f"IMSERVER_IDENTITY_VERIFIER must be 'review' or 'http', not {kind!r}")
