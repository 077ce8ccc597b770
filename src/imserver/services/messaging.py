"""Chat use cases: send, sync, receipts, typing, groups, history.

Send is the hot path (:meth:`Messaging.submit`), one use case from the frame's
fields to a future of its :class:`~.events.SendResult`:

1. the policy pipeline decides (:class:`~.policy_gate.PolicyGate`: a pure
   evaluation of cached snapshots); a deny is recorded in a batch off the path;
2. a denied send that may be a retry of one stored before the refusal applied
   is looked up, and its first result returned instead of the refusal;
3. the recipients come from in-memory caches (dropped on every node when a
   membership or user fact changes);
4. the group-commit writer (:mod:`~.writer`) stores it, held or not, in the
   next batch; after the batch commits, its deliveries run through the
   after-commit effects (:mod:`~.unit_of_work`), in commit order, and the
   sender's future resolves.

Membership changes (create, invite, leave, removal) run in a unit of work whose
commit drops the group's cached membership on every node.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from ..domain.clock import Clock
from ..domain.enums import ConversationKind, UserStatus
from ..domain.errors import BadRequest, Code, Conflict, Forbidden, NotFound, PolicyDenied
from ..domain.policy_types import Outgoing, OutgoingKind
from ..store import accounts as account_store
from ..store import audit
from ..store import conversations as conv_store
from ..store import messages as msg_store
from ..store.db import Database
from ..store.messages import NewMessage, Stored
from .cache import Bounded
from .events import InboxEvent, MessageView, SendResult, UserEvent
from .policy_gate import PolicyGate
from .unit_of_work import AfterCommit, Deliver, Invalidate, Notify, Scope, UnitOfWork
from .writer import MessageWriter, Queued

HISTORY_PAGE_MAX = 200  # REST history page bound
SYNC_PAGE_MAX = 1000  # one replay query's bound; the gateway pages through more
# Cached entries per node before a cache is cleared and refilled on demand
# (coarse bounds: a user's facts ~150 B, a group's members up to 500 ids ~4 KB).
MAX_CACHED_USERS = 200_000
MAX_CACHED_GROUPS = 20_000
MAX_CACHED_DIRECT = 200_000

# Refusals a retry of a stored send can meet only briefly: the sender retries
# after `retry_after` and then gets its first ack. Not worth a database lookup
# on every refused frame of a flood.
TRANSIENT_REFUSALS = frozenset({Code.RATE_LIMITED})


@dataclass(slots=True)
class _UserFacts:
    nickname: str
    active: bool


class Messaging:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        policy: PolicyGate,
        uow: UnitOfWork,
        group_cap: int,
        max_batch: int,
        max_wait: float,
        lanes: int = 1,
        observe_batch: Callable[[int], None] | None = None,
        observe_commit: Callable[[list[float], float], None] | None = None,
        unsafe_ack_before_commit: bool = False,  # test-only: see config.Settings
        unsafe_commit_delay: float = 0.05,
        groups_per_user: int | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.policy = policy
        self.uow = uow
        self.effects: AfterCommit = uow.after_commit
        self.group_cap = group_cap
        self.groups_per_user = groups_per_user  # groups one user may create; None: no cap
        self.writer = MessageWriter(
            db,
            max_batch=max_batch,
            max_wait=max_wait,
            lanes=lanes,
            on_commit=self._committed,
            observe_batch=observe_batch,
            observe_commit=observe_commit,
            unsafe_ack_before_commit=unsafe_ack_before_commit,
            unsafe_commit_delay=unsafe_commit_delay,
        )
        # Caches on the hot path; dropped by invalidate() when the facts change.
        self._users: Bounded[int, _UserFacts] = Bounded(MAX_CACHED_USERS)
        self._members: Bounded[int, tuple[str, tuple[int, ...]]] = Bounded(MAX_CACHED_GROUPS)  # conv -> (kind, members)
        self._direct: Bounded[tuple[int, int], int] = Bounded(MAX_CACHED_DIRECT)  # (lo, hi) -> id (never changes)

    async def start(self) -> None:
        await self.writer.start()

    async def stop(self) -> None:
        await self.writer.stop()

    # -- caches ----------------------------------------------------------------

    def invalidate(self, effect: Invalidate) -> None:
        """Registered with AfterCommit: drop what the effect says changed, here."""
        if effect.scope is Scope.CONVERSATION:
            self._members.pop(effect.id, None)
        elif effect.scope is Scope.USER:
            self._users.pop(effect.id, None)
        elif effect.scope is Scope.EVERYONE:
            self._users.clear()

    async def _user(self, user_id: int) -> _UserFacts | None:
        facts = self._users.get(user_id)
        if facts is None:
            async with self.db.transaction() as conn:
                row = await account_store.get_user(conn, user_id)
            if row is None:
                return None
            facts = _UserFacts(row["nickname"], row["status"] == UserStatus.ACTIVE)
            self._users.put(user_id, facts)
        return facts

    async def _conversation(self, conversation_id: int) -> tuple[str, tuple[int, ...]] | None:
        entry = self._members.get(conversation_id)
        if entry is None:
            async with self.db.transaction() as conn:
                conv = await conv_store.get(conn, conversation_id)
                if conv is None:
                    return None
                members = await conv_store.active_member_ids(conn, conversation_id)
            entry = (conv["kind"], tuple(members))
            self._members.put(conversation_id, entry)
        return entry

    async def _direct_conversation(self, a: int, b: int) -> int:
        key = (min(a, b), max(a, b))
        conv_id = self._direct.get(key)
        if conv_id is None:
            async with self.db.transaction() as conn:
                conv_id = await conv_store.get_or_create_direct(conn, a, b, self.clock.now())
            self._direct.put(key, conv_id)
        return conv_id

    # -- send --------------------------------------------------------------------

    async def resolve_recipients(self, sender_id: int, to_kind: str, to_id: int) -> tuple[int, tuple[int, ...]]:
        """(conversation id, members) for a send, or an error with a stable code."""
        if to_kind == "user":
            peer = await self._user(to_id)
            if peer is None or not peer.active:
                raise NotFound("no such recipient", Code.UNKNOWN_RECIPIENT)
            conv_id = await self._direct_conversation(sender_id, to_id)
            return conv_id, tuple(sorted({sender_id, to_id}))
        conv = await self._conversation(to_id)
        if conv is None or conv[0] != ConversationKind.GROUP:
            raise NotFound("no such group", Code.UNKNOWN_RECIPIENT)
        if sender_id not in conv[1]:
            raise Forbidden("only members may send to a group", Code.NOT_A_MEMBER)
        return to_id, conv[1]

    async def submit(
        self, *, sender_id: int, client_msg_id: str, to_kind: str, to_id: int, body: str, origin: int = 0
    ) -> asyncio.Future[SendResult]:
        """The send use case up to the writer's queue; the future resolves after the commit.

        A refused send raises (PolicyDenied with the reason code, NotFound or
        Forbidden for the recipient), recorded and with nothing stored; a held
        one is stored as held and delivered to nobody. ``origin`` (the sending
        connection, opaque here) comes back with the sender's own delivery.
        """
        kind = OutgoingKind.MESSAGE_GROUP if to_kind == "group" else OutgoingKind.MESSAGE_DIRECT
        outgoing = Outgoing(kind, sender_id, body)
        try:
            verdict = await self.policy.check(outgoing)
        except PolicyDenied as denied:
            # A retry of a send stored before the refusal applied (say, before a
            # sanction) gets its first result back, not the refusal.
            stored = None if denied.code in TRANSIENT_REFUSALS else await self.find_sent(sender_id, client_msg_id)
            if stored is None:
                raise
            done = asyncio.get_running_loop().create_future()
            done.set_result(SendResult.of(stored))
            return done
        sender = await self._user(sender_id)
        if sender is None or not sender.active:
            raise Forbidden("the account is closed", Code.ACCOUNT_CLOSED)
        conv_id, members = await self.resolve_recipients(sender_id, to_kind, to_id)
        held = verdict.held
        message = NewMessage(
            sender_id=sender_id,
            client_msg_id=client_msg_id,
            conversation_id=conv_id,
            recipients=members,
            body=body,
            created_at=self.clock.now(),
            status=msg_store.HELD if held else msg_store.DELIVERED,
        )
        group = to_kind == "group"
        return self.writer.enqueue(
            message,
            origin=origin,
            decision=verdict.decision if held else None,
            nickname=sender.nickname,
            kind=ConversationKind.GROUP if group else ConversationKind.DIRECT,
        )

    async def find_sent(self, sender_id: int, client_msg_id: str) -> Stored | None:
        """The stored message of an earlier send with this client_msg_id, if any."""
        async with self.db.transaction() as conn:
            return await msg_store.find_sent(conn, sender_id, client_msg_id)

    def _committed(self, batch: list[Queued], results: list[Stored]) -> None:
        """The writer's batch committed: deliver its entries in seq order, record its holds."""
        events: list[InboxEvent] = []
        for item, r in zip(batch, results, strict=True):
            if r.duplicate:
                continue
            m = item.message
            if item.decision is not None:  # held: recorded against the stored message
                self.policy.decisions.add(
                    Outgoing(OutgoingKind.MESSAGE_GROUP if item.kind == ConversationKind.GROUP
                             else OutgoingKind.MESSAGE_DIRECT, m.sender_id, m.body),
                    item.decision,
                    message_id=r.message_id,
                )
            if not r.seqs:
                continue
            view = MessageView(
                message_id=r.message_id,
                conversation_id=r.conversation_id,
                conversation_kind=item.kind,
                sender_id=m.sender_id,
                sender_nickname=item.nickname,
                body=m.body,
                client_msg_id=m.client_msg_id,
                sent_at=m.created_at.isoformat(),
            )
            sender, origin = m.sender_id, item.origin
            events.extend(InboxEvent(u, seq, view, origin if u == sender else 0) for u, seq in r.seqs.items())
        if events:
            self.effects.deliver(events)  # synchronous: in commit order, before the acks

    # -- read side ---------------------------------------------------------------

    async def cursors(self, user_id: int) -> tuple[int, int]:
        async with self.db.read() as conn:
            return await msg_store.counters(conn, user_id)

    async def inbox_after(self, user_id: int, after: int, limit: int) -> list[InboxEvent]:
        limit = max(1, min(limit, SYNC_PAGE_MAX))
        async with self.db.read() as conn:
            rows = await msg_store.inbox_after(conn, user_id, after, limit)
        return [
            InboxEvent(
                user_id,
                r["seq"],
                MessageView(
                    message_id=r["message_id"],
                    conversation_id=r["conversation_id"],
                    conversation_kind=r["conversation_kind"],
                    sender_id=r["sender_id"],
                    sender_nickname=r["sender_nickname"],
                    body=r["body"],
                    client_msg_id=r["client_msg_id"],
                    sent_at=r["created_at"].isoformat(),
                ),
            )
            for r in rows
        ]

    async def received(self, user_id: int, seq: int) -> int:
        async with self.db.transaction() as conn:
            return await msg_store.mark_received(conn, user_id, seq)

    async def read(self, user_id: int, conversation_id: int, message_id: int) -> None:
        """Record a read mark and tell the other members' live devices."""
        conv = await self._conversation(conversation_id)
        if conv is None or user_id not in conv[1]:
            raise Forbidden("not a member of this conversation", Code.NOT_A_MEMBER)
        async with self.db.transaction() as conn:
            msg = await msg_store.get_message(conn, message_id)
            if msg is None or msg["conversation_id"] != conversation_id:
                raise NotFound("no such message in this conversation")
            await msg_store.set_read_mark(conn, conversation_id, user_id, message_id, self.clock.now())
        self.effects.notify(
            UserEvent(
                tuple(u for u in conv[1] if u != user_id),
                "receipt",
                {"conversation_id": conversation_id, "user_id": user_id, "message_id": message_id},
            )
        )

    async def typing(self, user_id: int, conversation_id: int) -> None:
        conv = await self._conversation(conversation_id)
        if conv is None or user_id not in conv[1]:
            raise Forbidden("not a member of this conversation", Code.NOT_A_MEMBER)
        self.effects.notify(
            UserEvent(
                tuple(u for u in conv[1] if u != user_id),
                "typing",
                {"conversation_id": conversation_id, "user_id": user_id},
            )
        )

    async def history(self, user_id: int, conversation_id: int, before: int | None, limit: int) -> list[dict]:
        limit = max(1, min(limit, HISTORY_PAGE_MAX))
        async with self.db.transaction() as conn:
            if not await conv_store.is_member(conn, conversation_id, user_id):
                raise Forbidden("not a member of this conversation", Code.NOT_A_MEMBER)
            rows = await msg_store.history(conn, conversation_id, before, limit)
        return [
            {
                "message_id": r["message_id"],
                "from": {"id": r["sender_id"], "nickname": r["sender_nickname"]},
                "body": r["body"],
                "client_msg_id": r["client_msg_id"],
                "sent_at": r["created_at"].isoformat(),
            }
            for r in rows
        ]

    # -- held messages (content_review) ----------------------------------------------

    async def held(self, *, after: int = 0, limit: int = 50) -> list[dict]:
        async with self.db.transaction() as conn:
            rows = await msg_store.held_messages(conn, after=after, limit=max(1, min(limit, HISTORY_PAGE_MAX)))
        return [
            {
                "message_id": r["message_id"],
                "conversation_id": r["conversation_id"],
                "sender_id": r["sender_id"],
                "body": r["body"],
                "sent_at": r["created_at"].isoformat(),
                "reason": r["reason"],
                "check": r["check_name"],
                "detail": r["detail"],
            }
            for r in rows
        ]

    async def review_held(self, message_id: int, *, release: bool, operator_id: int, note: str) -> dict:
        """A moderator releases (delivers now) or rejects a held message; both are recorded."""
        now = self.clock.now()
        to_status = msg_store.DELIVERED if release else msg_store.REJECTED
        async with self.uow() as tx:
            conn = tx.conn
            msg = await msg_store.get_message(conn, message_id)
            if msg is None:
                raise NotFound("no such message")
            if not await msg_store.set_status(conn, message_id, from_status=msg_store.HELD, to_status=to_status):
                raise Conflict(f"the message is {msg['status']}, not held")
            seqs: dict[int, int] = {}
            if release:
                members = await conv_store.active_member_ids(conn, msg["conversation_id"])
                [seqs] = await msg_store.append_to_inboxes(conn, [(message_id, tuple(members))])
                conv = await conv_store.get(conn, msg["conversation_id"])
                sender = await account_store.get_user(conn, msg["sender_id"])
                view = MessageView(
                    message_id=message_id,
                    conversation_id=msg["conversation_id"],
                    conversation_kind=conv["kind"],
                    sender_id=msg["sender_id"],
                    sender_nickname=sender["nickname"],
                    body=msg["body"],
                    client_msg_id=msg["client_msg_id"],
                    sent_at=msg["created_at"].isoformat(),
                )
                tx.add(Deliver([InboxEvent(u, seq, view) for u, seq in seqs.items()]))
            await msg_store.record_review(
                conn, message_id, review="released" if release else "rejected", operator_id=operator_id, at=now
            )
            await audit.append(
                conn,
                at=now,
                actor_kind="operator",
                actor_id=operator_id,
                action="message.release" if release else "message.reject",
                subject=f"message:{message_id}",
                detail={"note": note, "sender_id": msg["sender_id"]},
            )
        return {"message_id": message_id, "status": to_status, "delivered_to": sorted(seqs)}

    # -- groups ------------------------------------------------------------------

    async def create_group(self, owner: int, name: str, members: list[int]) -> int:
        name = name.strip()
        if not 1 <= len(name) <= 128:
            raise BadRequest("a group name is 1-128 characters")
        wanted = sorted(set(members) | {owner})
        if len(wanted) > self.group_cap:
            raise Conflict(f"a group has at most {self.group_cap} members", Code.GROUP_FULL)
        async with self.uow() as tx:
            if self.groups_per_user is not None:
                if await conv_store.count_groups_created_by(tx.conn, owner) >= self.groups_per_user:
                    raise Conflict(f"a user may create at most {self.groups_per_user} groups", Code.GROUP_LIMIT)
            found = await account_store.get_users(tx.conn, wanted)
            if any(u not in found or found[u]["status"] != UserStatus.ACTIVE for u in wanted):
                raise NotFound("no such user among the members", Code.UNKNOWN_RECIPIENT)
            group_id = await conv_store.create_group(
                tx.conn, owner=owner, name=name, members=wanted, now=self.clock.now()
            )
            tx.add(Invalidate(Scope.CONVERSATION, group_id))
        return group_id

    async def invite(self, actor: int, group_id: int, user_ids: list[int]) -> list[int]:
        async with self.uow() as tx:
            conn = tx.conn
            conv = await conv_store.get(conn, group_id)
            if conv is None or conv["kind"] != ConversationKind.GROUP:
                raise NotFound("no such group")
            if not await conv_store.is_member(conn, group_id, actor):
                raise Forbidden("only members may invite", Code.NOT_A_MEMBER)
            found = await account_store.get_users(conn, user_ids)
            if any(u not in found or found[u]["status"] != UserStatus.ACTIVE for u in user_ids):
                raise NotFound("no such user among the invitees", Code.UNKNOWN_RECIPIENT)
            current = await conv_store.count_active(conn, group_id)
            newcomers = [u for u in set(user_ids) if not await conv_store.is_member(conn, group_id, u)]
            if current + len(newcomers) > self.group_cap:
                raise Conflict(f"a group has at most {self.group_cap} members", Code.GROUP_FULL)
            added = await conv_store.add_members(conn, group_id, user_ids, self.clock.now())
            tx.add(Invalidate(Scope.CONVERSATION, group_id))
        return added

    async def leave(self, user_id: int, group_id: int) -> None:
        async with self.uow() as tx:
            await self._group(tx.conn, group_id)
            if not await conv_store.deactivate_member(tx.conn, group_id, user_id):
                raise Forbidden("not a member of this group", Code.NOT_A_MEMBER)
            tx.add(Invalidate(Scope.CONVERSATION, group_id))

    async def remove_member(self, actor: int, group_id: int, user_id: int) -> None:
        """The group's owner removes a member; from the next send on, nothing more reaches them."""
        async with self.uow() as tx:
            conv = await self._group(tx.conn, group_id)
            if conv["created_by"] != actor:
                raise Forbidden("only the group's owner removes members", Code.FORBIDDEN)
            if user_id == actor:
                raise BadRequest("the owner leaves rather than removing themselves")
            if not await conv_store.deactivate_member(tx.conn, group_id, user_id):
                raise NotFound("no such member of this group", Code.NOT_A_MEMBER)
            tx.add(Invalidate(Scope.CONVERSATION, group_id))

    @staticmethod
    async def _group(conn, group_id: int):
        conv = await conv_store.get(conn, group_id)
        if conv is None or conv["kind"] != ConversationKind.GROUP:
            raise NotFound("no such group")
        return conv

    async def members(self, user_id: int, group_id: int) -> list[dict]:
        async with self.db.transaction() as conn:
            conv = await conv_store.get(conn, group_id)
            if conv is None or conv["kind"] != ConversationKind.GROUP:
                raise NotFound("no such group")
            if not await conv_store.is_member(conn, group_id, user_id):
                raise Forbidden("not a member of this group", Code.NOT_A_MEMBER)
            rows = await conv_store.members(conn, group_id)
        return [{"id": r["user_id"], "nickname": r["nickname"], "role": r["role"]} for r in rows]

    async def conversations(self, user_id: int, *, after: int = 0, limit: int = 100) -> list[dict]:
        """One page of the user's conversations, by id after `after`."""
        async with self.db.transaction() as conn:
            rows = await conv_store.user_conversations(conn, user_id, after=after, limit=limit)
        return [{"id": r["id"], "kind": r["kind"], "name": r["name"]} for r in rows]
