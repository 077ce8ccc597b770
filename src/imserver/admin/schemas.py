"""Response models of the admin API: the OpenAPI contract operators and tools code against.

Every admin route declares one of these as its response model, so ``/docs``
shows the real shape and FastAPI checks each response against it. Errors share
one schema (:class:`ErrorOut`, ``{code, detail, ...}``) and one set of
documented statuses (:data:`ERRORS`). Models of views whose producers add
fields over time (a sanction's, a public account's) allow extra fields: the
listed ones are the contract, the rest is informative.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from ..domain.enums import RealNameStatus, Role, UserStatus
from ..domain.errors import Code

T = TypeVar("T")
REF = "#/components/schemas/{model}"  # where FastAPI puts models; for schemas written into `responses` by hand


class Out(BaseModel):
    """A response: the listed fields. A field the producer adds is left out until it is listed
    here; a listed field the producer stops giving fails the response (and the contract test)."""


class OpenOut(BaseModel):
    """A response whose producer may add informative fields beyond the listed ones."""

    model_config = ConfigDict(extra="allow")


class ErrorOut(OpenOut):
    """Every error: a stable code to match on, text for people, sometimes more fields (e.g. ``cap``)."""

    code: Code
    detail: str


def _error(description: str) -> dict:
    return {"model": ErrorOut, "description": description}


# The statuses every protected admin route may answer besides its success.
ERRORS: dict[int | str, dict[str, Any]] = {
    401: _error("no bearer token, or an invalid, expired or revoked one (`unauthenticated`)"),
    403: _error("the operator lacks the role (`forbidden`) or must change a reset password (`password_change_required`)"),
    404: _error("the thing named in the path does not exist (`*_not_found`)"),
    409: _error("the request clashes with stored state (`*_state`, `last_admin`, ...)"),
    422: _error("bad input: a body or parameter (`malformed`), a cursor (`invalid_cursor`, `cursor_mismatch`), "
                "a page size (`page_too_large`), a filter (`invalid_filter`) or a role (`unknown_role`)"),
    408: _error("the request's headers or body stopped arriving (`request_timeout`)"),
    413: _error("the request body is over the route's cap (`body_too_large`)"),
    429: _error("too many attempts: wait `retry_after` seconds (`signin_throttled`, `rate_limited`)"),
    500: _error("our fault (`internal`), or a stored record that fails its integrity check (`identity_unreadable`)"),
    503: _error("a dependency (the database) is unavailable: try again (`unavailable`)"),
}


class Page(Out, Generic[T]):
    """One page of a list: the items, how many match the filters in all, and the cursor of the next page."""

    items: list[T]
    total: int = Field(description="rows matching the filters, over every page")
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")


class Person(Out):
    """A user as operators name them."""

    id: int
    handle: str
    nickname: str


# -- sanctions and appeals --------------------------------------------------------------


class SanctionEventOut(Out):
    kind: str
    operator_id: int | None
    note: str | None
    at: str


class SanctionAppealRef(OpenOut):
    id: int
    text: str
    filed_at: str


class SanctionOut(OpenOut):
    id: int
    subject: dict[str, Any]
    kind: str
    reason: str
    evidence: dict[str, list[int]]
    imposed_by: int
    needs_confirmation: bool
    confirmed_by: int | None
    starts_at: str | None
    ends_at: str | None
    created_at: str | None
    status: str
    ended_by: str | None
    ended_at: str | None
    overruled: bool
    events: list[SanctionEventOut]
    appeal: SanctionAppealRef | None


class SanctionDetailOut(SanctionOut):
    regulator_records: list[dict[str, Any]]
    evidence_content: list[ContentOut] = Field(description="the messages, posts and reported targets the evidence names")


class AppealOut(Out):
    appeal_id: int
    user_id: int
    text: str
    filed_at: str
    status: str
    decided_by: int | None
    decided_at: str | None
    note: str | None
    sanction: SanctionOut


# -- content ------------------------------------------------------------------------------


class AccountRef(Out):
    id: int
    name: str


class ContentOut(Out):
    """A message, a post or an account as embedded in another view; ``missing`` when it is gone."""

    kind: str
    id: int
    missing: bool = False
    body: str | None = None
    title: str | None = None
    post_kind: str | None = None
    author: Person | None = None
    conversation_id: int | None = None
    account: AccountRef | None = None
    sent_at: str | None = None
    posted_at: str | None = None
    status: str | None = None
    held: bool | None = None
    taken_down: bool | None = None
    taken_down_at: str | None = None
    takedown_reason: str | None = None


class ConversationRef(Out):
    id: int
    kind: str
    name: str | None


class MessageOut(Out):
    kind: str
    id: int
    body: str
    author: Person
    conversation_id: int
    sent_at: str
    status: str = Field(description="delivered, held or rejected")
    held: bool
    conversation: ConversationRef | None = None
    context: list[MessageOut] | None = None


class PostOut(Out):
    kind: str
    id: int
    title: str
    body: str
    post_kind: str
    author: Person
    account: AccountRef
    posted_at: str
    taken_down: bool
    taken_down_at: str | None
    takedown_reason: str | None


# -- reports --------------------------------------------------------------------------------


class TargetRef(Out):
    kind: str
    id: int


class JoinedReportOut(Out):
    """A later report on the same target, joined to the open queue item."""

    id: int
    reporter_id: int
    category: str
    text: str
    created_at: str


class ReportOut(Out):
    id: int
    reporter_id: int
    report_count: int  # this report and those that joined it
    reporters: list[int]  # everyone who reported the target; each is told the outcome
    joined: list[JoinedReportOut]
    sanction_overturned: bool  # the sanction it led to was overturned on appeal
    target: TargetRef
    category: str
    text: str
    status: str
    assignee_id: int | None
    sanction_id: int | None
    resolution_note: str | None
    created_at: str
    resolved_at: str | None
    time_to_resolution_seconds: float | None
    age_seconds: float | None


class ReportDetailOut(ReportOut):
    target_content: ContentOut


class IdentityOut(Out):
    identity_id: int
    user_id: int
    status: RealNameStatus
    submitted_at: str
    reviewed_at: str | None
    reviewer_id: int | None
    review_note: str | None
    masked: bool
    legal_name: str | None
    id_number: str | None
    phone: str | None
    unreadable: bool | None = None


# -- queues ---------------------------------------------------------------------------------


class IdentityQueueItem(IdentityOut):
    """A queued submission, masked, with the submitter's names."""

    handle: str
    nickname: str


class ApplicationOut(OpenOut):
    id: int
    name: str
    category: str
    status: str
    owner_id: int
    review_status: str
    manual_review: bool
    review_flags: list[str]
    created_at: str


class HeldOut(Out):
    message_id: int
    conversation_id: int
    sender_id: int
    sender: Person
    body: str
    sent_at: str
    reason: str | None
    check: str | None
    detail: str | None


class AuditEntryOut(Out):
    id: int
    at: str
    actor_kind: str
    actor_id: int | None
    actor_handle: str | None = Field(description="the operator's handle when an operator acted")
    action: str
    subject: str | None
    detail: dict[str, Any]
    prev_hash: str
    hash: str


# -- users ------------------------------------------------------------------------------------


class UserSummaryOut(Out):
    id: int
    handle: str
    nickname: str
    status: UserStatus
    real_name_status: RealNameStatus
    created_at: str


class AcceptanceOut(Out):
    version: int
    accepted_at: str
    client_ip: str | None


class ReportsBlock(Out):
    items: list[ReportOut]
    total: int


class DossierAppealOut(Out):
    appeal_id: int
    sanction_id: int
    text: str
    filed_at: str
    status: str
    decided_at: str | None


class OwnedAccountOut(Out):
    id: int
    name: str
    category: str
    status: str


class SignInOut(Out):
    at: str
    event: str = Field(description="signin, or signin_failed (detail: why)")
    ip: str | None = Field(description="the client's address, X-Forwarded-For believed only from trusted proxies")
    user_agent: str | None
    node: str
    detail: str | None = Field(description="account_closed: an appeal-only token; on a failure, its code")


class DossierOut(UserSummaryOut):
    agreement_version: int | None
    agreement_acceptances: list[AcceptanceOut]
    sanctions: list[SanctionOut]
    strikes: int
    strike_window_days: int
    reports_by: ReportsBlock
    reports_against: ReportsBlock
    appeals: list[DossierAppealOut]
    public_accounts: list[OwnedAccountOut]
    recent_sign_ins: list[SignInOut] = Field(description="the latest sign-ins and failed sign-ins, newest first")


# -- operators ----------------------------------------------------------------------------------


class OperatorOut(Out):
    id: int
    handle: str
    roles: list[Role]
    created_at: str
    disabled: bool
    disabled_at: str | None
    must_change_password: bool
    awaiting_confirmation: bool = Field(description="granted admin or compliance; cannot sign in until a second admin confirms")
    pending_roles: list[Role] | None = Field(description="a change of roles awaiting a second admin (null: none)")


class WhoAmIOut(Out):
    id: int
    operator_id: int = Field(description="same as id (kept for older clients)")
    handle: str
    roles: list[Role]
    must_change_password: bool


class LoginOut(Out):
    token: str
    token_type: str
    operator_id: int
    role: Role | None = Field(description="one of roles (the first by name), for single-role clients")
    roles: list[Role]
    must_change_password: bool


class StaffingOut(OpenOut):
    """The staffing report: the period, active users and operators, and one entry per queue."""

    since: str
    until: str
    active_users: int
    active_operators: int
    active_users_per_operator: float | None
    queue_age_warning_seconds: float
    queues: dict[str, dict[str, Any]] = Field(description="per queue: items in and resolved, operators, times to act, open and overdue")


class TotpEnrollOut(Out):
    secret: str = Field(description="base32; shown once, never again")
    otpauth_uri: str = Field(description="the same secret as an otpauth:// URI for an authenticator's QR code")


class TotpEnabledOut(Out):
    enabled: bool


SanctionDetailOut.model_rebuild()
MessageOut.model_rebuild()


# -- agreements ------------------------------------------------------------------------------


class PublishedOut(Out):
    version: int


class AgreementVersionOut(Out):
    version: int
    published_at: str
    published_by: int | None
    accepted_by: int = Field(description="users who accepted this version (each counted once)")
    users_on_version: int = Field(description="users whose latest accepted version this is")


class AgreementTextOut(AgreementVersionOut):
    text: str


# -- the rest of the admin API: decisions and small answers ---------------------------------


class TermOut(Out):
    id: int
    list_name: str
    term: str
    action: str
    created_by: int
    created_at: str


class BulkTermsOut(Out):
    list_name: str
    given: int
    added: int


class HeldReviewOut(Out):
    message_id: int
    status: str
    delivered_to: list[int]


class IdentityReviewOut(Out):
    identity_id: int
    user_id: int
    status: RealNameStatus


class SubjectRef(Out):
    kind: str
    id: int


class SubjectHistoryOut(Out):
    subject: SubjectRef
    sanctions: list[SanctionOut]
    strikes: int
    strike_window_days: int
    in_effect: list[str]


class AppealDecisionOut(Out):
    appeal_id: int
    sanction_id: int
    # upheld | overturned; null when overturning a closure was proposed and awaits a second operator
    decision: str | None
    sanction: SanctionOut


class OutboxOut(Out):
    undelivered: int
    unexported: int  # records no export has delivered yet
    webhook: bool


class QueueStaffingOut(OpenOut):
    """One operator queue over the period, and its state now."""

    entered: int
    resolved: int
    active_operators: int
    handled_per_active_operator: float | None
    first_action_seconds: dict[str, Any] | None
    resolution_seconds: dict[str, Any] | None


class StaffingOut(Out):
    since: str
    until: str
    active_users: int
    active_operators: int
    active_users_per_operator: float | None
    queue_age_warning_seconds: float
    queues: dict[str, QueueStaffingOut]


class ChainHead(Out):
    id: int
    hash: str


class ChainBreakOut(Out):
    row_id: int
    kind: str
    reason: str


class AuditVerifyOut(Out):
    ok: bool
    checked: int
    head: ChainHead | None
    anchor: str | None
    break_: ChainBreakOut | None = Field(alias="break")

    model_config = ConfigDict(populate_by_name=True)


class ChangeOut(OpenOut):
    change_id: int
    account_id: int
    requested_by: int
    status: str
    manual_review: bool
    review_flags: list[str]
    created_at: str


class NewsApprovalOut(OpenOut):
    approval_id: int
    account_id: int
    reference: str
    scope: str
    expires_at: str
    in_force: bool


class PublicAccountAdminOut(ApplicationOut):
    news_approvals: list[NewsApprovalOut]
    filing: dict[str, Any] | None
    follower_count: int


class TakedownOut(Out):
    post_id: int
    account_id: int
    taken_down_at: str


class FilingRegisterOut(Out):
    """The filing register as JSON (``format=json``); jsonl and csv carry the same records."""

    generated_at: str
    count: int
    categories: dict[str, list[dict[str, Any]]]
