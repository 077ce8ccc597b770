"""The provider's own qualifications (Art. 4), and whether public accounts may run.

Art. 4: "Instant messaging tool service providers shall obtain corresponding
qualifications ... Instant communication tool service providers engaging in public
information service activities shall obtain Internet news information service
qualifications." The profile comes from configuration; public accounts (the
public information services of Art. 2 and 7) are off unless the news
information service licence is configured and valid now. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class ProviderProfile:
    operator_name: str
    icp_licence: str  # ICP licence (value-added telecommunications business operating licence) number
    news_licence: str  # Internet news information service licence number
    news_licence_expires_at: datetime | None  # None: no validity given, which is not valid

    def news_qualified(self, now: datetime) -> bool:
        """Whether the news information service qualification is configured and not expired."""
        expires = self.news_licence_expires_at
        return bool(self.news_licence.strip()) and expires is not None and now < expires

    def why_not(self, now: datetime) -> str | None:
        """Why public accounts are off (None: they are on)."""
        if not self.news_licence.strip():
            return "no Internet news information service licence is configured"
        if self.news_licence_expires_at is None:
            return "the news information service licence has no validity configured"
        if now >= self.news_licence_expires_at:
            return f"the news information service licence expired at {self.news_licence_expires_at.isoformat()}"
        return None

    def view(self, now: datetime) -> dict:
        expires = self.news_licence_expires_at
        return {
            "operator_name": self.operator_name,
            "icp_licence": self.icp_licence,
            "news_information_service_licence": {
                "number": self.news_licence or None,
                "expires_at": expires.isoformat() if expires else None,
                "valid": self.news_qualified(now),
            },
            "public_accounts_enabled": self.news_qualified(now),
        }
