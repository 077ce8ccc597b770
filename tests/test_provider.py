"""The provider's qualifications (Art. 4): shown at GET /api/v1/provider, and public
accounts refuse to work without a valid news information service licence (with the
reason on /metrics). SQLite and PostgreSQL; time is a FrozenClock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from imserver.domain.clock import FrozenClock
from imserver.store.tables import posts, public_accounts

from .helpers import register
from .test_public_accounts import apply, approved, post

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
EXPIRES = NOW + timedelta(hours=1)  # within every token's lifetime


@pytest.fixture
def clock():
    return FrozenClock(NOW)


@pytest.fixture
def settings(settings):
    settings.provider_news_licence_expires_at = EXPIRES
    settings.rate_posts_burst = 100_000
    return settings


def gauge(text: str, name: str) -> float:
    return next(float(line.split()[1]) for line in text.splitlines() if line.startswith(name + " "))


async def count(db, table) -> int:
    async with db.transaction() as conn:
        return (await conn.execute(select(func.count()).select_from(table))).scalar_one()


async def test_the_profile_is_public(http, settings):
    r = await http.get("/api/v1/provider")
    assert r.status_code == 200
    assert r.json() == {
        "operator_name": settings.provider_operator_name,
        "icp_licence": settings.provider_icp_licence,
        "news_information_service_licence": {
            "number": settings.provider_news_licence,
            "expires_at": EXPIRES.isoformat(),
            "valid": True,
        },
        "public_accounts_enabled": True,
    }


async def test_an_expired_licence_stops_public_accounts(http, db, clock):
    owner, account = await approved(http)
    assert (await post(http, owner, account["id"])).status_code == 201
    metrics = (await http.get("/metrics")).text
    assert gauge(metrics, "imserver_provider_news_qualified") == 1
    assert gauge(metrics, "imserver_provider_news_licence_expires_in_seconds") == pytest.approx(3600)

    clock.advance(hours=1)  # the licence expires
    applicant = await register(http, verified=True)
    accounts_before, posts_before = await count(db, public_accounts), await count(db, posts)
    r = await apply(http, applicant)
    assert (r.status_code, r.json()["code"]) == (403, "news_service_unqualified")
    r = await post(http, owner, account["id"])
    assert (r.status_code, r.json()["code"]) == (403, "news_service_unqualified")
    assert "expired" in r.json()["detail"]
    assert (await count(db, public_accounts), await count(db, posts)) == (accounts_before, posts_before)
    metrics = (await http.get("/metrics")).text
    assert gauge(metrics, "imserver_provider_news_qualified") == 0
    assert gauge(metrics, "imserver_provider_news_licence_expires_in_seconds") <= 0
    profile = (await http.get("/api/v1/provider")).json()
    assert profile["public_accounts_enabled"] is False and profile["news_information_service_licence"]["valid"] is False
    # Reading what exists still works.
    r = await http.get(f"/api/v1/public-accounts/{account['id']}/posts", headers=owner["headers"])
    assert r.status_code == 200 and len(r.json()["items"]) == 1


async def test_no_licence_configured_means_no_public_accounts(http, app):
    app.state.services.public_accounts.provider = type(app.state.services.public_accounts.provider)(
        "Example", "ICP", "", None
    )
    applicant = await register(http, verified=True)
    r = await apply(http, applicant)
    assert (r.status_code, r.json()["code"]) == (403, "news_service_unqualified")
    assert "no Internet news information service licence" in r.json()["detail"]
