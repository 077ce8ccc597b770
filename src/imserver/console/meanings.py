"""What each error code means, in words an operator reads (translated on the page).

The console shows an error as its stable code, this meaning, and the service's
own detail. A code missing here falls back to a generic meaning; a test checks
that every code of the ``Code`` enum has one.
"""

from __future__ import annotations

from ..domain.errors import Code
from .i18n import N_

MEANINGS: dict[Code, str] = {
    Code.MALFORMED: N_("The form has a missing or invalid field."),
    Code.NOT_FOUND: N_("There is no such item."),
    Code.METHOD_NOT_ALLOWED: N_("This action is not available here."),
    Code.UNAUTHENTICATED: N_("You are not signed in."),
    Code.INVALID_CREDENTIALS: N_("Wrong handle or password."),
    Code.FORBIDDEN: N_("Your role does not allow this action."),
    Code.REGISTRATION_REFUSED: N_("The registration was refused."),
    Code.WEAK_PASSWORD: N_("The password is too weak."),
    Code.INVALID_HANDLE: N_("The handle is not valid."),
    Code.INVALID_ID_NUMBER: N_("The ID number is not valid."),
    Code.INVALID_PHONE: N_("The phone number is not valid."),
    Code.INVALID_LEGAL_NAME: N_("The legal name is not valid."),
    Code.IDENTITY_LIMIT: N_("This identity already backs the most accounts allowed."),
    Code.IDENTITY_STATE: N_("This identity submission is no longer pending."),
    Code.IDENTITY_UNREADABLE: N_("This identity record cannot be decrypted."),
    Code.AGREEMENT_VERSION_MISMATCH: N_("That is not the current agreement version."),
    Code.NO_AGREEMENT: N_("No agreement has been published."),
    Code.AGREEMENT_BASELINES_MISSING: N_("The agreement text must state all seven baselines."),
    Code.NOT_A_MEMBER: N_("The user is not a member of this conversation."),
    Code.GROUP_FULL: N_("The group is full."),
    Code.UNKNOWN_RECIPIENT: N_("There is no such recipient."),
    Code.CONFLICT: N_("This clashes with the current state; reload and try again."),
    Code.ACCOUNT_CLOSED: N_("The account is closed."),
    Code.REAL_NAME_UNVERIFIED: N_("The user's real name is not verified."),
    Code.AGREEMENT_NOT_ACCEPTED: N_("The user has not accepted the current agreement."),
    Code.PUBLICATION_RESTRICTED: N_("Publication is restricted by a sanction."),
    Code.UPDATES_SUSPENDED: N_("Updates are suspended by a sanction."),
    Code.PUBLIC_ACCOUNT_UNVERIFIED: N_("The public account is not approved."),
    Code.NEWS_NOT_PERMITTED: N_("The account has no news permission."),
    Code.NEWS_REPRINT_ONLY: N_("The account may only reprint news."),
    Code.CONTENT_BLOCKED: N_("The content contains a blocked term."),
    Code.CONTENT_REVIEW: N_("The content is held for review."),
    Code.RATE_LIMITED: N_("Too many requests; wait a moment."),
    Code.BAD_JSON: N_("The frame is not valid JSON."),
    Code.BINARY_FRAME: N_("Binary frames are not accepted."),
    Code.UNKNOWN_TYPE: N_("Unknown frame type."),
    Code.UNKNOWN_FIELD: N_("Unknown field."),
    Code.INVALID_FIELD: N_("A field is missing or invalid."),
    Code.FIELD_TOO_LARGE: N_("A field is too long."),
    Code.OUT_OF_ORDER: N_("The request came at the wrong time."),
    Code.UNKNOWN_SANCTION_KIND: N_("Unknown sanction kind."),
    Code.UNSUPPORTED_SUBJECT: N_("This kind of subject cannot be sanctioned."),
    Code.SUBJECT_NOT_FOUND: N_("The user or account to sanction does not exist."),
    Code.INVALID_PERIOD: N_("The period is not valid (an end before its start, or a duration where none applies)."),
    Code.EVIDENCE_NOT_FOUND: N_("Some of the evidence does not exist."),
    Code.SANCTION_NOT_FOUND: N_("There is no such sanction."),
    Code.SANCTION_STATE: N_("The sanction's state does not allow this (already confirmed or ended)."),
    Code.SAME_OPERATOR: N_("A second, different operator must do this."),
    Code.APPEAL_EXISTS: N_("This sanction has been appealed already."),
    Code.APPEAL_WINDOW_CLOSED: N_("The appeal window has closed."),
    Code.APPEAL_NOT_FOUND: N_("There is no such appeal."),
    Code.APPEAL_DECIDED: N_("This appeal was decided already."),
    Code.REPORT_TARGET_NOT_FOUND: N_("The reported content does not exist."),
    Code.REPORT_NOT_FOUND: N_("There is no such report."),
    Code.REPORT_STATE: N_("The report's status does not allow this (assign it first, or it is resolved)."),
    Code.TERM_EXISTS: N_("This term is in the list already."),
    Code.TERM_NOT_FOUND: N_("There is no such term."),
    Code.INVALID_TERM: N_("The term or its action is not valid."),
    Code.PUBLIC_ACCOUNT_NOT_FOUND: N_("There is no such public account."),
    Code.PUBLIC_ACCOUNT_CLOSED: N_("The public account is closed."),
    Code.PUBLIC_ACCOUNT_STATE: N_("The application is no longer pending."),
    Code.NOT_ACCOUNT_OWNER: N_("The user does not own this account."),
    Code.UNKNOWN_CATEGORY: N_("Unknown category."),
    Code.INVALID_ACCOUNT_NAME: N_("The account name is not valid."),
    Code.ACCOUNT_NAME_TAKEN: N_("Another account holds this name."),
    Code.INVALID_OPERATOR: N_("The operating entity is missing or not valid."),
    Code.INVALID_CREDIT_CODE: N_("The unified social credit code is not valid."),
    Code.INVALID_LICENCE: N_("The news licence is missing, malformed or expired."),
    Code.REVIEW_FLAGS_UNACKNOWLEDGED: N_("This application is flagged: tick the box to acknowledge its flags."),
    Code.CHANGE_PENDING: N_("A change to this account already awaits review."),
    Code.CHANGE_NOT_FOUND: N_("There is no such change."),
    Code.INVALID_NEWS_APPROVAL: N_("The news approval is not valid."),
    Code.NEWS_APPROVAL_NOT_FOUND: N_("There is no such news approval."),
    Code.INVALID_POST: N_("The post is not valid."),
    Code.REPRINT_SOURCE_MISSING: N_("A reprint needs its full source."),
    Code.POST_NOT_FOUND: N_("There is no such post."),
    Code.SIGNIN_THROTTLED: N_("Too many wrong passwords: wait a few minutes before trying again."),
    Code.CSRF_FAILED: N_("The form was stale or forged; nothing was changed. Reload the page and try again."),
    Code.SESSION_EXPIRED: N_("Your session ended; sign in again."),
    Code.UNAVAILABLE: N_("The service is unavailable; try again shortly."),
    Code.INTERNAL: N_("An internal error occurred."),
}
FALLBACK = N_("The request was refused.")


def meaning(code: str) -> str:
    """The untranslated meaning of `code` (a message id)."""
    try:
        return MEANINGS.get(Code(code), FALLBACK)
    except ValueError:
        return FALLBACK
