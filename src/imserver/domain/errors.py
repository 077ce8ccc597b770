"""Stable error and reason codes, and the exception tree that carries them.

Every error a client or operator can see has a code from :class:`Code`: a stable
string that programs match on. Human text travels beside it in ``detail`` and may
change freely. The policy pipeline's reason codes live in the same enum, so a
rejected ``send`` and a rejected REST call speak one vocabulary.

Exception tree::

    ImserverError            (code, detail, status)
    ├── BadRequest           400 / 422: the caller sent something wrong
    ├── Unauthenticated      401: no credentials, or bad ones
    ├── Forbidden            403: credentials fine, role or state forbids it
    ├── NotFound             404
    ├── Conflict             409: the request clashes with stored state
    ├── PolicyDenied         403: the compliance pipeline said no
    ├── TooManyRequests      429: over a per-user limit (retry_after says when)
    └── Unavailable          503: our fault, a dependency (database, broker) is down

Lower layers translate their own exceptions at the boundary with
``raise Unavailable(...) from exc``; nothing below ``api``/``gateway`` knows HTTP.
"""

from __future__ import annotations

from enum import StrEnum


class Code(StrEnum):
    # -- request shape ---------------------------------------------------
    MALFORMED = "malformed"  # body or frame could not be decoded / validated
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    # -- authentication and roles -----------------------------------------
    UNAUTHENTICATED = "unauthenticated"
    INVALID_CREDENTIALS = "invalid_credentials"
    FORBIDDEN = "forbidden"
    # -- accounts ------------------------------------------------------------
    REGISTRATION_REFUSED = "registration_refused"  # deliberately vague: no enumeration
    WEAK_PASSWORD = "weak_password"
    INVALID_HANDLE = "invalid_handle"
    # -- identity (Art. 6) ---------------------------------------------------
    INVALID_ID_NUMBER = "invalid_id_number"
    INVALID_PHONE = "invalid_phone"
    INVALID_LEGAL_NAME = "invalid_legal_name"
    IDENTITY_LIMIT = "identity_limit"  # this identity already backs too many accounts
    IDENTITY_STATE = "identity_state"  # e.g. submitting while already verified
    # -- identity encryption (store/keyring.py, services/identity.py) ----------------
    IDENTITY_UNREADABLE = "identity_unreadable"  # 500: record fails authentication or its key is missing
    # -- agreement (Art. 6) ---------------------------------------------------
    AGREEMENT_VERSION_MISMATCH = "agreement_version_mismatch"
    NO_AGREEMENT = "no_agreement"
    # -- agreement publication (foundation: agreement and audit) -------------------
    AGREEMENT_BASELINES_MISSING = "agreement_baselines_missing"  # text omits one of the seven baselines
    # -- messaging ----------------------------------------------------------------
    NOT_A_MEMBER = "not_a_member"
    GROUP_FULL = "group_full"
    UNKNOWN_RECIPIENT = "unknown_recipient"
    CONFLICT = "conflict"
    # -- policy reason codes (the pipeline's checks, policy/checks.py) --------------
    ACCOUNT_CLOSED = "account_closed"
    REAL_NAME_UNVERIFIED = "real_name_unverified"
    AGREEMENT_NOT_ACCEPTED = "agreement_not_accepted"
    PUBLICATION_RESTRICTED = "publication_restricted"
    UPDATES_SUSPENDED = "updates_suspended"
    PUBLIC_ACCOUNT_UNVERIFIED = "public_account_unverified"
    NEWS_NOT_PERMITTED = "news_not_permitted"
    NEWS_REPRINT_ONLY = "news_reprint_only"
    CONTENT_BLOCKED = "content_blocked"
    CONTENT_REVIEW = "content_review"
    RATE_LIMITED = "rate_limited"
    # -- wire protocol (gateway/protocol.py) ------------------------------------------
    BAD_JSON = "bad_json"  # the text frame is not strict JSON
    BINARY_FRAME = "binary_frame"  # frames are JSON text; a binary frame is refused
    UNKNOWN_TYPE = "unknown_type"  # "type" names no frame of this protocol version
    UNKNOWN_FIELD = "unknown_field"  # a field this frame type does not define
    INVALID_FIELD = "invalid_field"  # missing, wrong type or out of range
    FIELD_TOO_LARGE = "field_too_large"  # a string field over its length limit
    OUT_OF_ORDER = "out_of_order"  # a valid frame at the wrong time (e.g. a second auth)
    # -- sanctions, appeals, reports, term lists, regulator (operator side) ----------
    UNKNOWN_SANCTION_KIND = "unknown_sanction_kind"  # kind is not one of the ladder's four
    UNSUPPORTED_SUBJECT = "unsupported_subject"  # subject kind not (yet) sanctionable, e.g. public_account
    SUBJECT_NOT_FOUND = "subject_not_found"  # the sanctioned user / account does not exist
    INVALID_PERIOD = "invalid_period"  # an end before its start, or a duration where none applies
    EVIDENCE_NOT_FOUND = "evidence_not_found"  # a referenced message, post or report does not exist
    SANCTION_NOT_FOUND = "sanction_not_found"
    SANCTION_STATE = "sanction_state"  # e.g. lifting an ended sanction, confirming a confirmed one
    SAME_OPERATOR = "same_operator"  # the second operator must differ from the first
    APPEAL_EXISTS = "appeal_exists"  # one appeal per sanction
    APPEAL_WINDOW_CLOSED = "appeal_window_closed"
    APPEAL_NOT_FOUND = "appeal_not_found"
    APPEAL_DECIDED = "appeal_decided"
    REPORT_TARGET_NOT_FOUND = "report_target_not_found"  # also: a message the reporter cannot see
    REPORT_NOT_FOUND = "report_not_found"
    REPORT_STATE = "report_state"  # a transition the report's status does not allow
    TERM_EXISTS = "term_exists"
    TERM_NOT_FOUND = "term_not_found"
    INVALID_TERM = "invalid_term"
    # -- public accounts (Art. 7) -------------------------------------------------------
    PUBLIC_ACCOUNT_NOT_FOUND = "public_account_not_found"
    PUBLIC_ACCOUNT_CLOSED = "public_account_closed"  # e.g. following a closed account
    PUBLIC_ACCOUNT_STATE = "public_account_state"  # e.g. reviewing an application already decided
    NOT_ACCOUNT_OWNER = "not_account_owner"
    UNKNOWN_CATEGORY = "unknown_category"
    INVALID_ACCOUNT_NAME = "invalid_account_name"
    ACCOUNT_NAME_TAKEN = "account_name_taken"
    INVALID_OPERATOR = "invalid_operator"  # operator entity missing (organisations) or too long
    INVALID_CREDIT_CODE = "invalid_credit_code"  # unified social credit code missing or failing GB 32100
    INVALID_LICENCE = "invalid_licence"  # news licence number or expiry missing, malformed or past
    REVIEW_FLAGS_UNACKNOWLEDGED = "review_flags_unacknowledged"  # approving a flagged item needs acknowledge_flags
    CHANGE_PENDING = "change_pending"  # a change to this account already awaits re-review
    CHANGE_NOT_FOUND = "change_not_found"
    INVALID_NEWS_APPROVAL = "invalid_news_approval"  # scope not publish|reprint, or expiry not in the future
    NEWS_APPROVAL_NOT_FOUND = "news_approval_not_found"
    INVALID_POST = "invalid_post"  # empty title/body, or a source on a post that is not a reprint
    REPRINT_SOURCE_MISSING = "reprint_source_missing"  # a reprint needs source name, URL, author and title
    POST_NOT_FOUND = "post_not_found"  # also: a post already taken down
    # -- operator console ----------------------------------------------------------
    SIGNIN_THROTTLED = "signin_throttled"  # too many wrong passwords: wait before trying again
    CSRF_FAILED = "csrf_failed"  # a console form without its anti-forgery token (or a stale one)
    SESSION_EXPIRED = "session_expired"  # the console session ended, or a WebSocket's token expired (notice, then 4003)
    # -- the operator workbench: lists, users, content, operators ---------------------
    INVALID_CURSOR = "invalid_cursor"  # a cursor that does not decode (truncated, edited, made up)
    CURSOR_MISMATCH = "cursor_mismatch"  # a cursor issued by another list, or for another sort order
    PAGE_TOO_LARGE = "page_too_large"  # limit over the list's cap
    INVALID_FILTER = "invalid_filter"  # a filter combination or range that cannot hold (from after to)
    USER_NOT_FOUND = "user_not_found"
    MESSAGE_NOT_FOUND = "message_not_found"
    OPERATOR_NOT_FOUND = "operator_not_found"
    OPERATOR_EXISTS = "operator_exists"  # the handle is taken by another operator
    UNKNOWN_ROLE = "unknown_role"  # a role name that is not one of the four
    LAST_ADMIN = "last_admin"  # disabling or demoting the last enabled admin
    SELF_DISABLE = "self_disable"  # an operator cannot disable themselves
    OPERATOR_STATE = "operator_state"  # e.g. disabling a disabled operator
    PASSWORD_CHANGE_REQUIRED = "password_change_required"  # a reset password must be changed first
    AGREEMENT_NOT_FOUND = "agreement_not_found"
    # -- due process ------------------------------------------------------------------
    APPEAL_ONLY_TOKEN = "appeal_only_token"  # a closed account's token used beyond its sanctions and appeals
    EVIDENCE_NOT_OF_SUBJECT = "evidence_not_of_subject"  # cited evidence belongs to someone else
    SELF_REPORT = "self_report"  # reporting one's own message, post or account
    REPORT_RATE_LIMITED = "report_rate_limited"  # too many reports from one user in the window
    REPORT_EXISTS = "report_exists"  # the reporter's own report on this target is still open
    NEWS_SERVICE_UNQUALIFIED = "news_service_unqualified"  # the provider's news licence is missing or expired
    INVALID_PROVINCE = "invalid_province"  # no province (individuals declare one) or not one of the 31
    # -- records: retention, legal holds, account deletion --------------------------
    RETENTION_BELOW_MINIMUM = "retention_below_minimum"  # a purge would cut under the legal minimum
    UNKNOWN_RECORD_KIND = "unknown_record_kind"  # not a kind the retention table names
    HOLD_REASON_REQUIRED = "hold_reason_required"  # placing or releasing a legal hold needs a reason
    HOLD_SUBJECT_NOT_FOUND = "hold_subject_not_found"  # no such user, conversation or public account
    HOLD_NOT_FOUND = "hold_not_found"
    HOLD_RELEASED = "hold_released"  # the hold was released already
    DELETION_REQUESTED = "deletion_requested"  # the account is being deleted: sign-in refused
    # -- hardening: sessions, second factor, separation of duties ----------------------------
    SECOND_FACTOR_REQUIRED = "second_factor_required"  # a TOTP code is needed (or enrolment, for the role)
    SECOND_FACTOR_STATE = "second_factor_state"  # e.g. enrolling when already enrolled
    GRANT_FORBIDDEN = "grant_forbidden"  # this operator may not grant that role
    OPERATOR_PENDING = "operator_pending"  # a privileged grant awaits a second admin's confirmation
    GRANT_STATE = "grant_state"  # confirming an operator who is not pending
    GROUP_LIMIT = "group_limit"  # the user already created the most groups allowed
    BODY_TOO_LARGE = "body_too_large"  # 413: a request body over its route's cap
    REQUEST_TIMEOUT = "request_timeout"  # 408: headers or body did not arrive in time
    # -- ours ----------------------------------------------------------------------
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


class ImserverError(Exception):
    """Base of every error that carries a stable code to the caller."""

    status = 500
    default_code = Code.INTERNAL

    def __init__(self, detail: str = "", code: Code | None = None, **extra: object) -> None:
        super().__init__(detail)
        self.code = code or self.default_code
        self.detail = detail or self.code.value.replace("_", " ")
        self.extra = extra

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code.value, "detail": self.detail, **self.extra}


class BadRequest(ImserverError):
    status = 422
    default_code = Code.MALFORMED


class Unauthenticated(ImserverError):
    status = 401
    default_code = Code.UNAUTHENTICATED


class Forbidden(ImserverError):
    status = 403
    default_code = Code.FORBIDDEN


class NotFound(ImserverError):
    status = 404
    default_code = Code.NOT_FOUND


class Conflict(ImserverError):
    status = 409
    default_code = Code.CONFLICT


class PolicyDenied(ImserverError):
    status = 403
    default_code = Code.FORBIDDEN


class TooManyRequests(ImserverError):
    status = 429
    default_code = Code.RATE_LIMITED


class Unavailable(ImserverError):
    status = 503
    default_code = Code.UNAVAILABLE


class Throttled(ImserverError):
    """429: too many attempts; ``retry_after`` says how many seconds to wait."""

    status = 429
    default_code = Code.RATE_LIMITED
