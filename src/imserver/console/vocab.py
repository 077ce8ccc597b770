"""Words for the stored codes a page shows (statuses, categories, kinds, roles), translated
where they are shown with the ``word`` filter; a code not listed here is shown as it is."""

from __future__ import annotations

from .i18n import N_

WORDS: dict[str, str] = {
    # roles
    "reviewer": N_("reviewer"),
    "moderator": N_("moderator"),
    "compliance": N_("compliance"),
    "admin": N_("admin"),
    # report statuses, categories and target kinds
    "open": N_("open"),
    "in_review": N_("in review"),
    "actioned": N_("actioned"),
    "dismissed": N_("dismissed"),
    "unlawful": N_("unlawful"),
    "harmful": N_("harmful"),
    "rumour": N_("rumour"),
    "fraud": N_("fraud"),
    "pornography": N_("pornography"),
    "other": N_("other"),
    "message": N_("message"),
    "post": N_("post"),
    "account": N_("account"),
    "user": N_("user"),
    # message, user, account and identity states
    "delivered": N_("delivered"),
    "held": N_("held"),
    "rejected": N_("rejected"),
    "active": N_("active"),
    "closed": N_("closed"),
    "pending": N_("pending"),
    "verified": N_("verified"),
    "unverified": N_("unverified"),
    "approved": N_("approved"),
    "published": N_("published"),
    "taken_down": N_("taken down"),
    # sanction stages
    "awaiting_confirmation": N_("awaiting confirmation"),
    "in_effect": N_("in effect"),
    "ended": N_("ended"),
    # public-account categories
    "individual": N_("individual"),
    "enterprise": N_("enterprise"),
    "government": N_("government"),
    "public_institution": N_("public institution"),
    "peoples_organization": N_("people's organization"),
    "news_unit": N_("news unit"),
    "news_service_licensee": N_("news service licensee"),
    # term actions
    "deny": N_("deny"),
    "hold": N_("hold"),
}
