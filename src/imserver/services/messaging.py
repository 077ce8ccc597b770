"""Chat use cases: send, sync, receipts, typing, groups, history.

Send is the hot path: membership and user facts come from in-memory caches
(dropped when they change), the policy decision is a pure function, and the
write goes through the group-commit writer. Fan-out happens after the commit,
from the writer's commit callback, in commit order.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ..domain.clock import Clock
from ..domain.enums import ConversationKind, UserStatus
from ..domain.errors import BadRequest, Code, Conflict, Forbidden, NotFound
from ..store import accounts as account_store
from ..store import audit
from ..store import conversations as conv_store
from ..store import messages as msg_store
from ..store.db import Database
from ..store.messages import NewMessage, Stored
from ..store.writer import MessageWriter
from .events import Fanout, InboxEvent, MessageView, NoFanout, UserEvent

HISTORY_PAGE_MAX = 200  # REST history page bound
SYNC_PAGE_MAX = 1000  # one replay query's bound; the gateway pages through more


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
        group_cap: int,
        max_batch: int,
        max_wait: float,
        unsafe_ack_before_commit: bool = False,  # test-only: see config.Settings
        unsafe_commit_delay: float = 0.05,
        groups_per_user: int | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.group_cap = group_cap
        self.groups_per_user = groups_per_user  # groups one user may create; None: no cap
        self.fanout: Fanout = NoFanout()
        self.writer = MessageWriter(
            db,
            max_batch=max_batch,
            max_wait=max_wait,
            on_commit=self._committed,
            unsafe_ack_before_commit=unsafe_ack_before_commit,
            unsafe_commit_delay=unsafe_commit_delay,
        )
        # Caches on the hot path; dropped by invalidate_* when the facts change.
        self._users: dict[int, _UserFacts] = {}
        self._members: dict[int, tuple[str, tuple[int, ...]]] = {}  # conv -> (kind, active members)
        self._direct: dict[tuple[int, int], int] = {}  # (lo, hi) -> conversation id (never changes)
        self._kinds: dict[int, str] = {}  # conversation id -> kind (never changes)
        self._pending_nicknames: dict[int, str] = {}

    async def start(self) -> None:
        await self.writer.start()

    async def stop(self) -> None:
        await self.writer.stop()

    # -- caches ----------------------------------------------------------------

    def invalidate_user(self, user_id: int) -> None:
        if user_id == 0:
            self._users.clear()
        else:
            self._users.pop(user_id, None)

    def invalidate_conversation(self, conversation_id: int) -> None:
        self._members.pop(conversation_id, None)

    async def _user(self, user_id: int) -> _UserFacts | None:
        facts = self._users.get(user_id)
        if facts is None:
            async with self.db.transaction() as conn:
                row = await account_store.get_user(conn, user_id)
            if row is None:
                return None
            facts = _UserFacts(row["nickname"], row["status"] == UserStatus.ACTIVE)
            self._users[user_id] = facts
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
            self._members[conversation_id] = entry
            self._kinds[conversation_id] = conv["kind"]
        return entry

    async def _direct_conversation(self, a: int, b: int) -> int:
        key = (min(a, b), max(a, b))
        conv_id = self._direct.get(key)
        if conv_id is None:
            async with self.db.transaction() as conn:
                conv_id = await conv_store.get_or_create_direct(conn, a, b, self.clock.now())
            self._direct[key] = conv_id
            self._kinds[conv_id] = ConversationKind.DIRECT
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

    async def send(
        self, *, sender_id: int, client_msg_id: str, to_kind: str, to_id: int, body: str, held: bool = False
    ) -> Stored:
        """Store a message durably and fan it out; returns after the commit."""
        future = await self.enqueue(
            sender_id=sender_id, client_msg_id=client_msg_id, to_kind=to_kind, to_id=to_id, body=body, held=held,
        )
        return await asyncio.shield(future)

    async def enqueue(
        self,
        *,
        sender_id: int,
        client_msg_id: str,
        to_kind: str,
        to_id: int,
        body: str,
        held: bool = False,
        origin: int = 0,
    ) -> asyncio.Future[Stored]:
        """Resolve the recipients and queue the message for the next group commit.

        Errors about the send itself (unknown recipient, not a member) raise here;
        the returned future resolves after the commit, or with Unavailable.
        """
        sender = await self._user(sender_id)
        if sender is None or not sender.active:
            raise Forbidden("the account is closed", Code.ACCOUNT_CLOSED)
        conv_id, members = await self.resolve_recipients(sender_id, to_kind, to_id)
        message = NewMessage(
            sender_id=sender_id,
            client_msg_id=client_msg_id,
            conversation_id=conv_id,
            recipients=members,
            body=body,
            created_at=self.clock.now(),
            status=msg_store.HELD if held else msg_store.DELIVERED,
            origin=origin,
        )
        self._pending_nicknames[sender_id] = sender.nickname
        return self.writer.enqueue(message)

    async def find_sent(self, sender_id: int, client_msg_id: str) -> Stored | None:
        """The stored message of an earlier send with this client_msg_id, if any."""
        async with self.db.transaction() as conn:
            return await msg_store.find_sent(conn, sender_id, client_msg_id)

    def _committed(self, batch: list[NewMessage], results: list[Stored]) -> None:
        """Writer callback, right after a batch commits: hand the entries to fan-out, in seq order."""
        events: list[InboxEvent] = []
        for m, r in zip(batch, results, strict=True):
            if r.duplicate or not r.seqs:
                continue
            view = MessageView(
                message_id=r.message_id,
                conversation_id=r.conversation_id,
                conversation_kind=self._kinds.get(m.conversation_id, ConversationKind.DIRECT),
                sender_id=m.sender_id,
                sender_nickname=self._nickname(m.sender_id),
                body=m.body,
                client_msg_id=m.client_msg_id,
                sent_at=m.created_at.isoformat(),
            )
            events.extend(
                InboxEvent(u, seq, view, m.origin if u == m.sender_id else 0) for u, seq in r.seqs.items()
            )
        if events:
            self.fanout.inbox(events)

    def _nickname(self, user_id: int) -> str:
        facts = self._users.get(user_id)
        return facts.nickname if facts else self._pending_nicknames.get(user_id, "")

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
        self.fanout.user_event(
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
        self.fanout.user_event(
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
        async with self.db.transaction() as conn:
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
        if release:
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
            self.fanout.inbox([InboxEvent(u, seq, view) for u, seq in seqs.items()])
        return {"message_id": message_id, "status": to_status, "delivered_to": sorted(seqs)}

    # -- groups ------------------------------------------------------------------

    async def create_group(self, owner: int, name: str, members: list[int]) -> int:
        name = name.strip()
        if not 1 <= len(name) <= 128:
            raise BadRequest("a group name is 1-128 characters")
        wanted = sorted(set(members) | {owner})
        if len(wanted) > self.group_cap:
            raise Conflict(f"a group has at most {self.group_cap} members", Code.GROUP_FULL)
        async with self.db.transaction() as conn:
            if self.groups_per_user is not None:
                if await conv_store.count_groups_created_by(conn, owner) >= self.groups_per_user:
                    raise Conflict(f"a user may create at most {self.groups_per_user} groups", Code.GROUP_LIMIT)
            found = await account_store.get_users(conn, wanted)
            if any(u not in found or found[u]["status"] != UserStatus.ACTIVE for u in wanted):
                raise NotFound("no such user among the members", Code.UNKNOWN_RECIPIENT)
            return await conv_store.create_group(conn, owner=owner, name=name, members=wanted, now=self.clock.now())

    async def invite(self, actor: int, group_id: int, user_ids: list[int]) -> list[int]:
        async with self.db.transaction() as conn:
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
        self.invalidate_conversation(group_id)
        return added

    async def leave(self, user_id: int, group_id: int) -> None:
        async with self.db.transaction() as conn:
            conv = await conv_store.get(conn, group_id)
            if conv is None or conv["kind"] != ConversationKind.GROUP:
                raise NotFound("no such group")
            if not await conv_store.deactivate_member(conn, group_id, user_id):
                raise Forbidden("not a member of this group", Code.NOT_A_MEMBER)
        self.invalidate_conversation(group_id)

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
