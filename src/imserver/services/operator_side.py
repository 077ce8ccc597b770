"""Wiring of the operator side of issue 4 into the service container.

Sanctions, reports, term lists and the regulator outbox call back into the
container (``after_policy_change`` reaches every node; the fan-out reaches live
sockets), so they are built from the finished ``Services`` rather than beside
it. ``wire`` runs when the container is built (the CLI uses these services
without starting anything); ``start``/``stop`` own their background loops (the
expiry sweeper and the webhook deliverer) and the /metrics refresher.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from .regulator import Regulator
from .reports import Reports
from .sanctions import Sanctions
from .terms import Terms

if TYPE_CHECKING:
    from .container import Services

log = logging.getLogger("imserver.operator_side")


def wire(services: Services) -> None:
    from .container import TERMS_CHANGED

    s = services
    s.regulator = Regulator(s.db, s.clock, s.settings)
    s.sanctions = Sanctions(
        s.db,
        s.clock,
        regulator=s.regulator,
        after_change=s.after_policy_change,
        # The fan-out is chosen by the composition root after building: look it up per event.
        emit=lambda event: s.messaging.fanout.user_event(event),
        appeal_window=timedelta(days=s.settings.appeal_window_days),
        strike_window=timedelta(days=s.settings.strike_window_days),
        sweep_interval=s.settings.sanction_sweep_interval_seconds,
    )
    s.reports = Reports(
        s.db,
        s.clock,
        emit=lambda event: s.messaging.fanout.user_event(event),
        rate_limit=s.settings.report_rate_limit,
        rate_window=timedelta(seconds=s.settings.report_rate_window_seconds),
    )
    s.terms = Terms(s.db, s.clock, changed=lambda: s.after_policy_change(user_id=TERMS_CHANGED))


async def start(services: Services) -> None:
    services.sanctions.start()
    await services.regulator.start()
    metrics = services.metrics
    if metrics is not None and hasattr(metrics, "refreshers"):

        async def refresh_reports() -> None:
            count, age = await services.reports.unresolved_stats()
            metrics.reports_open.set(count)
            metrics.reports_oldest_open_age.set(age)

        metrics.refreshers.append(refresh_reports)

        async def refresh_provider() -> None:
            profile, now = services.public_accounts.provider, services.clock.now()
            metrics.news_qualified.set(1 if profile.news_qualified(now) else 0)
            expires = profile.news_licence_expires_at
            metrics.news_licence_expires_in.set((expires - now).total_seconds() if expires else 0)

        metrics.refreshers.append(refresh_provider)

        async def refresh_queues() -> None:
            for name, q in (await services.staffing.queues_now()).items():
                metrics.queue_open.labels(queue=name).set(q["open"])
                metrics.queue_oldest_age.labels(queue=name).set(q["oldest_open_age_seconds"])
                metrics.queue_overdue.labels(queue=name).set(1 if q["overdue"] else 0)

        metrics.refreshers.append(refresh_queues)


async def stop(services: Services) -> None:
    await services.sanctions.stop()
    await services.regulator.stop()
