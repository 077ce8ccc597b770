"""A property test over the OpenAPI: no generated request makes the server answer 5xx.

schemathesis generates requests for every operation from the schema the app
publishes, valid ones and deliberately invalid ones (wrong types, values out
of range, missing fields), and sends them to a real server on each database,
each operation as every caller it admits (the role x route matrix's table):
a user, and the operator roles that may call it, admin included, so
role-protected handlers run, not only their 403. The one check is ``not_a_server_error``.
Logout operations are left out: they would end the session the run uses.

The budget is small (``EXAMPLES`` per operation, caller and mode) to keep
the suite fast; a deeper local run raises it with IMSERVER_FUZZ_EXAMPLES.
"""

from __future__ import annotations

import asyncio
import os
import time

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from imserver.domain.enums import Role

from ..helpers import operator, register
from .test_role_matrix import ANYONE, expected

# Examples per operation, caller and generation mode. With 6, each database gets ~1,530 requests
# (the workbench's operations included) and both run in ~31 s on a shared 2-core machine (measured).
EXAMPLES = int(os.environ.get("IMSERVER_FUZZ_EXAMPLES", "6"))
SKIPPED = {("POST", "/api/v1/logout"), ("POST", "/admin/v1/logout"), ("POST", "/api/v1/me/deletion")}


def fuzz(spec: dict, base_url: str, callers: dict[str, dict]) -> tuple[int, list[str]]:
    """Run every operation for every caller it concerns; (requests sent, failures)."""
    schema = schemathesis.openapi.from_dict(spec)
    session = requests.Session()
    sent = 0
    failures: list[str] = []
    for result in schema.get_all_operations():
        op = result.ok()
        if (op.method.upper(), op.path) in SKIPPED:
            continue
        admitted = expected(op.method.upper(), op.path)
        for name, caller in callers.items():
            # Only callers the route admits: a refused role's 403 exercises nothing
            # (the role x route matrix checks refusals). Public routes: as the user.
            if name not in admitted or (admitted == ANYONE and name != "user"):
                continue
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

                @settings(
                    max_examples=EXAMPLES,
                    deadline=None,
                    database=None,
                    derandomize=True,
                    suppress_health_check=list(HealthCheck),
                    phases=[Phase.generate],
                )
                @given(case=op.as_strategy(generation_mode=mode))
                def run(case) -> None:
                    nonlocal sent
                    response = case.call(base_url=base_url, session=session, headers=caller["headers"], timeout=30)
                    sent += 1
                    try:
                        case.validate_response(response, checks=[not_a_server_error])
                    except Exception as exc:  # noqa: BLE001 - collected, reported together
                        failures.append(f"{name} {op.method.upper()} {op.path}: {response.status_code} {exc}"[:2000])

                try:
                    run()
                except Unsatisfiable:
                    pass  # nothing in this operation can be made invalid (no parameters, no body)
    return sent, failures


async def test_no_generated_request_gets_a_server_error(client, server):
    http = client
    callers = {"user": await register(http)}
    for role in Role:
        callers[role.value] = await operator(http, server.services, role)
    spec = (await http.get("/openapi.json")).json()
    started = time.monotonic()
    sent, failures = await asyncio.to_thread(fuzz, spec, server.base_url, callers)
    elapsed = time.monotonic() - started
    print(f"schemathesis: {sent} requests in {elapsed:.1f}s")
    assert sent > 300  # every operation was reached, not a handful
    assert not failures, "\n".join(failures)
