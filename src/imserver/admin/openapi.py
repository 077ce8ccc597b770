"""What the OpenAPI says about the API as a whole: each tag's description.

Routes describe themselves (docstrings, response models, the error statuses of
``schemas.ERRORS``); this names the groups /docs shows them in.
"""

from __future__ import annotations

OPENAPI_TAGS = [
    {"name": "admin", "description": "The operators' API under /admin/v1: sign in, then send the token as a bearer."},
    {"name": "operators", "description": "Operator accounts, roles and passwords (admin)."},
    {"name": "security", "description": "An operator's own TOTP second factor: enrol, then enable with a code."},
    {"name": "user records", "description": "Finding users and reading one user's dossier (reviewer, moderator, compliance)."},
    {"name": "content", "description": "Reading users' messages and posts; every read is audited (moderator, compliance)."},
    {"name": "reports", "description": "Public reports: filed by users, worked by moderators."},
    {"name": "sanctions", "description": "Sanctions and appeals: the ladder, confirmation of closures, appeal decisions."},
    {"name": "public accounts", "description": "Public accounts: applications, filing, news approvals, posts."},
    {"name": "regulator", "description": "The regulator's records of sanctions: export and delivery state (compliance)."},
    {"name": "staffing", "description": "Queues against the scale of the service: the staffing report (compliance, admin)."},
    {"name": "terms", "description": "Content-filter term lists (admin)."},
    {"name": "agreements", "description": "Service agreement versions: publish, read, acceptance counts."},
    {"name": "users", "description": "Users' own accounts: register, sign in, profile, the agreement."},
    {"name": "identity", "description": "Users' real-name submissions."},
    {"name": "chat", "description": "Groups and conversation history (messages themselves travel over /ws)."},
    {"name": "staffing", "description": "Queues against the scale of the service: intake, handling and waiting times (Art. 5)."},
    {"name": "provider", "description": "The provider's qualifications (Art. 4)."},
    {"name": "ops", "description": "Health and metrics for operations."},
    {
        "name": "records",
        "description": "The record chain, signed checkpoints, the sign-in and network log, retention, legal holds "
        "and account deletions (compliance; some also admin).",
    },
]
