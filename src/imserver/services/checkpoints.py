"""Signed checkpoints: the chain heads, signed with Ed25519 and sent to the regulator.

As Certificate Transparency's signed tree heads: every
``checkpoint_interval_minutes`` (and on demand) the node seals what is pending,
reads the head of the record chain and of the audit chain, signs both with the
checkpoint key (:mod:`imserver.store.signing_key`), stores the checkpoint (a
record itself) and puts it in the regulator outbox, so a copy lives outside the
database.

``imserver audit verify --checkpoints`` checks every checkpoint's signature
against the trusted public key, then walks both chains with the latest
checkpoint's heads as anchors: since each hash commits to every entry before
it, an intact walk through the anchors proves that nothing up to the
checkpoint was truncated or rewritten, without anyone keeping a head by hand.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..domain.clock import Clock
from ..store import audit as audit_store
from ..store import chain as chain_store
from ..store import checkpoints as store
from ..store import outbox as outbox_store
from ..store import signing_key
from ..store.audit import GENESIS, Anchor
from ..store.db import Database
from .audit import AuditLog, ChainReport
from .periodic import Periodic
from .purged import Ranges, purged_ids
from .records import Records, RecordsReport

SCHEMA = "imserver.regulator.checkpoint/1"
RECORD_KIND = "checkpoint"
CHECKED_MAX = 1000  # checkpoints whose signatures and anchors one verification checks (newest first)
STEP_SECONDS = 60.0  # how often a node looks whether a checkpoint is due


def statement(cp: dict) -> bytes:
    """The signed bytes: the heads, the time and the node, as canonical JSON."""
    body = {
        "at": cp["at"].astimezone(UTC).isoformat(timespec="microseconds"),
        "node": cp["node"],
        "chain_seq": cp["chain_seq"],
        "chain_hash": cp["chain_hash"],
        "audit_id": cp["audit_id"],
        "audit_hash": cp["audit_hash"],
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def view(cp: dict) -> dict:
    return {
        "id": cp["id"],
        "at": cp["at"].astimezone(UTC).isoformat(timespec="microseconds"),
        "node": cp["node"],
        "chain_head": f"{cp['chain_seq']}:{cp['chain_hash']}",
        "audit_head": f"{cp['audit_id']}:{cp['audit_hash']}",
        "public_key": cp["public_key"],
        "signature": cp["signature"],
    }


@dataclass
class CheckpointReport:
    public_key: str
    checked: int = 0  # checkpoints whose signature and anchors were checked
    latest: dict | None = None
    problems: list[str] = field(default_factory=list)
    records: RecordsReport | None = None
    audit: ChainReport | None = None

    @property
    def ok(self) -> bool:
        return not self.problems and (self.records is None or self.records.ok) and (self.audit is None or self.audit.ok)


class Checkpoints:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        records: Records,
        key: Callable[[], Ed25519PrivateKey],
        *,
        node: str,
        interval_minutes: float,
        after_record: Callable[[], None] = lambda: None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.records = records
        self._key = key
        self.node = node[:128]
        self.interval = timedelta(minutes=interval_minutes)
        self.after_record = after_record  # wakes the regulator deliverer
        self._loop = Periodic("checkpointer", STEP_SECONDS, self.take_if_due) if interval_minutes > 0 else None
        self._started_at = clock.now()

    def start(self) -> None:
        if self._loop is not None:
            self._started_at = self.clock.now()
            self._loop.start()

    async def stop(self) -> None:
        if self._loop is not None:
            await self._loop.stop()

    async def take_if_due(self) -> dict | None:
        """A checkpoint when the last one (from any node; none: this node's start) is older than the interval."""
        async with self.db.read() as conn:
            last = await store.latest(conn, limit=1)
        since = last[0]["at"] if last else self._started_at
        if since > self.clock.now() - self.interval:
            return None
        return await self.take()

    async def take(self) -> dict:
        """Seal what is pending, sign both heads, store the checkpoint and queue it for the regulator."""
        await self.records.seal_pending()
        key = self._key()
        now = self.clock.now()
        async with self.db.transaction() as conn:
            chain_head = await chain_store.head(conn) or (0, GENESIS)
            audit_head = await audit_store.head(conn) or (0, GENESIS)
            cp = {
                "at": now,
                "node": self.node,
                "chain_seq": chain_head[0],
                "chain_hash": chain_head[1],
                "audit_id": audit_head[0],
                "audit_hash": audit_head[1],
                "public_key": signing_key.public_hex(key),
            }
            cp["signature"] = key.sign(statement(cp)).hex()
            cp["id"] = await store.add(conn, **cp)
            body = {"schema": SCHEMA, "record_kind": RECORD_KIND, "recorded_at": now.isoformat(), "checkpoint": view(cp)}
            body["idempotency_key"] = f"checkpoint-{cp['id']}"
            await outbox_store.insert_record(
                conn,
                record_kind=RECORD_KIND,
                sanction_id=None,  # not about a sanction
                payload=json.dumps(body, sort_keys=True, separators=(",", ":")),
                idempotency_key=body["idempotency_key"],
                now=now,
            )
        self.after_record()
        return view(cp)

    async def latest(self, limit: int = 100) -> list[dict]:
        async with self.db.read() as conn:
            return [view(cp) for cp in await store.latest(conn, limit=limit)]

    async def verify(self, public_key_hex: str, *, seal: bool = True) -> CheckpointReport:
        """Every recent checkpoint's signature and anchors; then both chains walked through the latest."""
        report = CheckpointReport(public_key=public_key_hex)
        trusted = signing_key.verifier(public_key_hex)
        purged_audit = (await purged_ids(self.db)).get("audit_log", Ranges())
        async with self.db.read() as conn:
            rows = await store.latest(conn, limit=CHECKED_MAX)
            for cp in rows:
                report.checked += 1
                try:
                    if cp["public_key"] != public_key_hex:
                        raise InvalidSignature
                    trusted.verify(bytes.fromhex(cp["signature"]), statement(cp))
                except (InvalidSignature, ValueError):
                    report.problems.append(f"checkpoint {cp['id']}: not signed by the trusted key {public_key_hex}")
                    continue
                if cp["chain_seq"] and await store.chain_hash_at(conn, cp["chain_seq"]) != cp["chain_hash"]:
                    report.problems.append(
                        f"checkpoint {cp['id']}: record chain entry {cp['chain_seq']} is gone or rewritten"
                    )
                if (
                    cp["audit_id"]
                    and cp["audit_id"] not in purged_audit  # an audit head the retention purge removed
                    and await store.audit_hash_at(conn, cp["audit_id"]) != cp["audit_hash"]
                ):
                    report.problems.append(f"checkpoint {cp['id']}: audit row {cp['audit_id']} is gone or rewritten")
        if not rows:
            report.problems.append("no checkpoint to verify against")
            return report
        last = rows[0]
        report.latest = view(last)
        chain_anchor = Anchor(last["chain_seq"], last["chain_hash"]) if last["chain_seq"] else None
        audit_anchor = Anchor(last["audit_id"], last["audit_hash"]) if last["audit_id"] else None
        report.records = await self.records.verify(seal=seal, anchor=chain_anchor)
        report.audit = await AuditLog(self.db, self.clock).verify(anchor=audit_anchor)
        return report
