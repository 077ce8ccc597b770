"""Bench accounts and groups, made through imserver's public HTTP APIs only.

A user who sends must be able to pass the policy pipeline: registered with the
current agreement version (``GET /api/v1/agreement``, ``POST
/api/v1/register``), logged in, identity submitted (``POST /api/v1/identity``
with a valid resident ID number) and approved by a reviewer operator (``GET
/admin/v1/identity/pending``, ``POST /admin/v1/identity/{id}/review``). Users
who only receive (idle and resume clients) skip the identity steps: receiving
needs no verified real name, and skipping them keeps a 10,000-user setup short.

Everything runs :data:`CONCURRENCY` requests at a time. The server's argon2 cost
dominates registration and login; a server the bench starts itself lowers it
(see :mod:`.targets`), one reached by ``--url`` keeps its own.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections.abc import Awaitable, Callable, Iterable
from datetime import date, timedelta

import httpx

from .peer import Account
from .progress import Progress

# Requests in flight during setup: enough to keep a 2-core server busy without
# queueing thousands of argon2 hashes behind each other.
CONCURRENCY = 32
PASSWORD = "bench-password-1234"  # only ever used against bench servers
# GB 11643-1999 weights and check characters (ISO 7064 MOD 11-2), as
# tests/identity_helpers.py computes them: valid numbers, made up.
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK = "10X98765432"
REGION = "110105"  # Beijing, Chaoyang district
BIRTH_FROM = date(1950, 1, 1)
BIRTH_DAYS = 365 * 50  # birth dates spread over 50 years: numbers rarely repeat
REVIEW_PAGE = 100  # the admin API's page limit for the pending queue
# A valid unified social credit code (GB 32100), the one the test suite uses.
CREDIT_CODE = "91110000600037341L"
HTTP_TIMEOUT = 120.0  # a queued argon2 hash on a busy server can take a while


class SetupError(RuntimeError):
    """The server refused a setup step; the message says which and why."""


def id_number(rng: random.Random) -> str:
    """A random resident ID number with a valid check digit."""
    birth = BIRTH_FROM + timedelta(days=rng.randrange(BIRTH_DAYS))
    body = f"{REGION}{birth:%Y%m%d}{rng.randrange(1000):03d}"
    return body + CHECK[sum(int(d) * w for d, w in zip(body, WEIGHTS, strict=True)) % 11]


async def bounded(n: int, make: Callable[[int], Awaitable], concurrency: int = CONCURRENCY) -> list:
    """Run ``make(i)`` for i in range(n), ``concurrency`` at a time; results in order."""
    results: list = [None] * n
    next_index = iter(range(n))

    async def lane() -> None:
        for i in next_index:
            results[i] = await make(i)

    async with asyncio.TaskGroup() as tg:
        for _ in range(min(concurrency, n)):
            tg.create_task(lane())
    return results


def _check(r: httpx.Response, what: str, ok: Iterable[int] = (200, 201)) -> dict:
    if r.status_code not in ok:
        raise SetupError(f"{what}: HTTP {r.status_code} {r.text[:200]}")
    return r.json() if r.content else {}


class Provisioner:
    """Makes users and groups on one imserver."""

    def __init__(
        self,
        base_url: str,
        *,
        operator: tuple[str, str] | None,
        moderator: tuple[str, str] | None = None,
        progress: bool | None = None,
    ) -> None:
        self.progress = progress
        self.http = httpx.AsyncClient(
            base_url=base_url,
            timeout=HTTP_TIMEOUT,
            # Idle connections are dropped here before uvicorn drops them (its
            # keep-alive timeout is 5 s): a request sent on a connection the
            # server is closing at that moment fails with ReadError, which
            # made a scenario that starts after a pause fail now and then.
            limits=httpx.Limits(
                max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY, keepalive_expiry=1.0
            ),
        )
        self.operator = operator
        self.moderator = moderator  # (handle, password) of a moderator: soak's warnings
        self.run_id = secrets.token_hex(3)  # handles of this run never clash with an earlier run's
        self._seq = 0
        self._rng = random.Random()
        self._reviewer: dict | None = None
        self._moderator: dict | None = None

    async def close(self) -> None:
        await self.http.aclose()

    async def users(self, n: int, *, verified: bool) -> list[Account]:
        """``n`` new users, logged in; with ``verified``, real name approved too."""
        agreement = _check(await self.http.get("/api/v1/agreement"), "GET /api/v1/agreement")["version"]
        first = self._seq
        self._seq += n

        bar = Progress("setup users", n, unit="", enabled=self.progress)
        done = 0

        async def one(i: int) -> Account:
            nonlocal done
            handle = f"b{self.run_id}-{first + i}"
            body = {"handle": handle, "password": PASSWORD, "nickname": f"Bench {first + i}", "agreement_version": agreement}
            _check(await self.http.post("/api/v1/register", json=body), "register")
            login = _check(await self.http.post("/api/v1/login", json={"handle": handle, "password": PASSWORD}), "login")
            account = Account(login["user_id"], login["token"])
            if verified:
                identity = {"legal_name": "张三", "id_number": id_number(self._rng), "phone": f"138{self._rng.randrange(10**8):08d}"}
                r = await self.http.post("/api/v1/identity", json=identity, headers=_bearer(account.token))
                _check(r, "submit identity")
            done += 1
            bar.update(done, "registered" + (" and submitted identity" if verified else ""))
            return account

        try:
            accounts = await bounded(n, one)
        finally:
            bar.close()
        if verified:
            await self._approve(accounts)
        return accounts

    async def group(self, owner: Account, members: list[Account], name: str) -> int:
        r = await self.http.post(
            "/api/v1/groups",
            json={"name": name, "members": [m.id for m in members if m.id != owner.id]},
            headers=_bearer(owner.token),
        )
        return _check(r, "create group")["id"]

    async def public_account(self, owner: Account, followers: list[Account], name: str) -> int:
        """An approved ``enterprise`` public account of ``owner`` (verified), followed by ``followers``."""
        application = {
            "name": name,
            "description": "imserver bench fan-out",
            "category": "enterprise",
            "operator_name": "Bench Ltd.",
            "credit_code": CREDIT_CODE,
        }
        r = await self.http.post("/api/v1/public-accounts", json=application, headers=_bearer(owner.token))
        account_id = _check(r, "apply for a public account")["id"]
        r = await self.http.post(
            f"/admin/v1/public-accounts/{account_id}/review",
            json={"decision": "approve", "reason": "bench"},
            headers=await self._reviewer_headers(),
        )
        _check(r, "approve the public account")
        bar = Progress("setup follows", len(followers), unit="", enabled=self.progress)

        async def follow(i: int) -> None:
            r = await self.http.put(f"/api/v1/public-accounts/{account_id}/follow", headers=_bearer(followers[i].token))
            _check(r, "follow", ok=(200, 201, 204))
            bar.update(i + 1, "followed")

        try:
            await bounded(len(followers), follow)
        finally:
            bar.close()
        return account_id

    async def post(self, owner: Account, account_id: int, title: str, body: str) -> dict:
        """One ``ordinary`` post; the 201's body (``post_id``, ``position``...)."""
        r = await self.http.post(
            f"/api/v1/public-accounts/{account_id}/posts",
            json={"kind": "ordinary", "title": title, "body": body},
            headers=_bearer(owner.token),
        )
        return _check(r, "post", ok=(201,))

    async def warn(self, user_id: int, reason: str) -> dict:
        """A ``warning`` sanction on a user, as the moderator (its notice goes to the user)."""
        if self._moderator is None:
            if self.moderator is None:
                raise SetupError("a warning needs a moderator operator (the bench makes one on a server it starts)")
            self._moderator = await self._login(*self.moderator)
        body = {"subject_kind": "user", "subject_id": user_id, "kind": "warning", "reason": reason}
        return _check(await self.http.post("/admin/v1/sanctions", json=body, headers=self._moderator), "warning", ok=(201,))

    async def _login(self, handle: str, password: str) -> dict:
        r = await self.http.post("/admin/v1/login", json={"handle": handle, "password": password})
        return _bearer(_check(r, "operator login")["token"])

    async def _approve(self, accounts: list[Account]) -> None:
        """Approve the pending identities of these users as the reviewer operator."""
        headers = await self._reviewer_headers()
        wanted = {a.id for a in accounts}
        found: dict[int, int] = {}  # user id -> identity id
        params: dict = {"limit": REVIEW_PAGE}
        while True:
            r = await self.http.get("/admin/v1/identity/pending", params=params, headers=headers)
            page = _check(r, "list pending identities")
            found.update({i["user_id"]: i["identity_id"] for i in page["items"] if i["user_id"] in wanted})
            if not page["next_cursor"]:
                break
            params = {"limit": REVIEW_PAGE, "cursor": page["next_cursor"]}
        ids = list(found.values())

        async def review(i: int) -> None:
            r = await self.http.post(
                f"/admin/v1/identity/{ids[i]}/review", json={"decision": "approve", "note": "bench"}, headers=headers
            )
            _check(r, "approve identity")

        await bounded(len(ids), review)
        # Users not in the queue were decided by an automatic verifier: they must be verified.
        others = [a for a in accounts if a.id not in found]

        async def status(i: int) -> str:
            r = await self.http.get("/api/v1/identity", headers=_bearer(others[i].token))
            return _check(r, "identity status")["status"]

        refused = [s for s in await bounded(len(others), status) if s != "verified"]
        if refused:
            raise SetupError(f"{len(refused)} bench users are not verified (status {refused[0]!r})")

    async def _reviewer_headers(self) -> dict:
        if self._reviewer is None:
            if self.operator is None:
                raise SetupError(
                    "senders need an approved identity: give reviewer credentials "
                    "(--operator-handle, and the password in IMSERVER_OPERATOR_PASSWORD or --operator-password)"
                )
            self._reviewer = await self._login(*self.operator)
        return self._reviewer


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}
