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
    # -- policy reason codes (ARCHITECTURE.md, "The policy pipeline") --------------
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


class Unavailable(ImserverError):
    status = 503
    default_code = Code.UNAVAILABLE
