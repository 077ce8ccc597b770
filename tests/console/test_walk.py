"""An operator's day through the console, in real headless Chromium, on SQLite and PostgreSQL.

Users act through the public API (register, submit an identity, apply for a
public account, send and report a message, appeal); operators act only through
the console's pages, each signed in with their own browser context. Each step
checks what the page confirmed and what the service now holds.
"""

from __future__ import annotations

import csv
import io
import os
import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.sync_api import expect

from imserver.client import Client
from imserver.domain.enums import Role

from ..helpers import operator, register
from ..identity_helpers import submit
from .console_helpers import NARROW, Desk, queue_size

CREDIT_CODE = "91110000600037341L"  # a valid unified social credit code
# Set to a directory to write the screenshots shown in docs/console.md.
SHOTS = os.environ.get("IMSERVER_CONSOLE_SCREENSHOTS")


def shoot(desk: Desk, name: str) -> None:
    """With IMSERVER_CONSOLE_SCREENSHOTS set: the page as it is (English), then in Chinese."""
    if not SHOTS:
        return
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    desk.page.screenshot(path=str(Path(SHOTS) / f"{name}-en.png"), full_page=True)
    host = desk.page.url.split("/")[2].split(":")[0]
    desk.context.add_cookies([{"name": "imserver_console_lang", "value": "zh_CN", "domain": host, "path": "/console"}])
    desk.page.reload()
    desk.page.screenshot(path=str(Path(SHOTS) / f"{name}-zh.png"), full_page=True)
    desk.context.clear_cookies(name="imserver_console_lang")
    desk.page.reload()


async def staff(client, svc) -> dict[str, dict]:
    names = {
        "reviewer": Role.REVIEWER,
        "moderator": Role.MODERATOR,
        "compliance-a": Role.COMPLIANCE,
        "compliance-b": Role.COMPLIANCE,
    }
    return {name: await operator(client, svc, role, handle=name) for name, role in names.items()}


async def test_an_operators_day(server, client, ui):
    svc = server.services
    ops = await staff(client, svc)
    # -- what the users did overnight ------------------------------------------------
    newcomer = await register(client)
    assert (await submit(client, newcomer)).status_code == 201
    publisher = await register(client, verified=True)
    r = await client.post(
        "/api/v1/public-accounts",
        json={
            "name": "Harbour Bakery",
            "description": "bread daily",
            "category": "enterprise",
            "operator_name": "Harbour Bakery Ltd.",
            "credit_code": CREDIT_CODE,
        },
        headers=publisher["headers"],
    )
    assert r.status_code == 201, r.text
    account_id = r.json()["id"]
    offender = await register(client, nickname="Pill Seller", verified=True)
    reporter = await register(client, verified=True)
    to_close = await register(client, verified=True)
    sender = await Client.connect(server.ws_url, offender["token"])
    try:
        ack = await sender.send("cheap pills, message me", to_user=reporter["id"])
    finally:
        await sender.close()
    r = await client.post(
        "/api/v1/reports",
        json={"target_kind": "message", "target_id": ack.message_id, "category": "fraud", "text": "selling fakes"},
        headers=reporter["headers"],
    )
    assert r.status_code == 201, r.text
    report_id = r.json()["id"]
    pending = await client.get("/admin/v1/identity/pending", headers=ops["reviewer"]["headers"])
    identity_id = pending.json()["items"][0]["identity_id"]
    live = await Client.connect(server.ws_url, to_close["token"])  # the user who will be closed is online
    base = server.base_url

    # -- 1. the reviewer: an identity, then a public account --------------------------------
    reviewer = await ui(lambda b: Desk(b, base).sign_in("reviewer"))

    def review_identity(_):
        assert queue_size(reviewer, "identity") == 1 and queue_size(reviewer, "public_accounts") == 1
        reviewer.nav("Identity review")
        row = reviewer.page.locator(f"#identity-{identity_id}")
        expect(row).to_contain_text("*")  # masked, never the plain ID number
        row.get_by_label("Reason").fill("documents match")
        row.get_by_role("button", name="Approve").click()
        expect(reviewer.page.locator(".flash.ok")).to_contain_text(
            f"Identity {identity_id} of user {newcomer['id']} approved."
        )

    await ui(review_identity)
    me = (await client.get("/api/v1/me", headers=newcomer["headers"])).json()
    assert me["real_name_status"] == "verified"

    def review_account(_):
        reviewer.nav("Public accounts")
        card = reviewer.page.locator(f"#account-{account_id}")
        card.get_by_label("Reason").fill("credit code checked")
        card.get_by_role("button", name="Approve and file").click()
        expect(reviewer.page.locator(".flash.ok")).to_contain_text("“Harbour Bakery” approved and filed as")
        return reviewer.page.locator(".flash.ok").inner_text()

    confirmed = await ui(review_account)
    reference = re.search(r"filed as (\S+?)\.?$", confirmed.strip()).group(1)
    filings = [f for f in await svc.public_accounts.filings() if f["account_id"] == account_id]
    assert [(f["reference"], f["account_status"]) for f in filings] == [(reference, "approved")]

    # -- 2. the moderator: a report, its content inline, resolved with a warning -------------
    moderator = await ui(lambda b: Desk(b, base).sign_in("moderator"))

    def resolve_report(_):
        assert queue_size(moderator, "reports") == 1
        moderator.nav("Reports")
        moderator.page.get_by_role("link", name=f"Report {report_id}").click()
        expect(moderator.page.locator("#reported-body")).to_have_text("cheap pills, message me")
        expect(moderator.page.locator("#author-nickname")).to_have_text("Pill Seller")
        moderator.page.get_by_role("button", name="Assign to me").click()
        expect(moderator.page.locator(".flash.ok")).to_contain_text(f"Report {report_id} is assigned to you.")
        shoot(moderator, "report")
        # The form offers only the kinds a moderator imposes.
        options = moderator.page.locator("#sanction option").all_inner_texts()
        assert options[1:] == ["Warning", "Restrict publication"], options
        moderator.page.get_by_label("Sanction on the author").select_option("warning")
        moderator.page.get_by_label(re.compile("^Reason")).fill("selling counterfeit medicine")
        moderator.page.get_by_role("button", name="Resolve").click()
        expect(moderator.page.locator(".flash.ok")).to_contain_text(
            f"Report {report_id} resolved: sanction"
        )

    await ui(resolve_report)
    warnings = (await client.get("/api/v1/sanctions", headers=offender["headers"])).json()
    assert [(s["kind"], s["status"]) for s in warnings] == [("warning", "in_effect")]
    warning_id = warnings[0]["id"]
    report = await svc.reports.get(report_id)
    assert (report["status"], report["sanction_id"]) == ("actioned", warning_id)
    r = await client.post(
        f"/api/v1/sanctions/{warning_id}/appeal", json={"text": "it was a joke"}, headers=offender["headers"]
    )
    assert r.status_code == 201, r.text

    # -- 3. two compliance operators close an account; the user's socket drops --------------
    first = await ui(lambda b: Desk(b, base).sign_in("compliance-a"))

    def propose_closure(_):
        first.nav("Sanctions")
        form = first.page.locator("form[method='post'][action='/console/sanctions']")
        options = form.locator("#kind option").all_inner_texts()
        assert options == ["Suspend updates", "Close account"], options
        form.get_by_label("User id").fill(str(to_close["id"]))
        form.get_by_label("Kind").select_option("close_account")
        form.get_by_label(re.compile("^Reason")).fill("fraud ring, second offence")
        form.get_by_role("button", name="Impose").click()
        expect(first.page.locator(".flash.ok")).to_contain_text("takes effect when a second operator confirms it")
        # The proposer is offered the confirmation too, and refused by the service with its code.
        first.page.get_by_role("button", name="Confirm closure").click()
        expect(first.page.locator(".flash.error")).to_contain_text("same_operator")

    await ui(propose_closure)
    assert (await live.ping()).type == "pong"  # not closed yet
    second = await ui(lambda b: Desk(b, base).sign_in("compliance-b"))

    def confirm_closure(_):
        assert queue_size(second, "closures_awaiting_confirmation") == 1
        shoot(second, "dashboard")
        second.nav("Sanctions")
        second.page.get_by_role("button", name="Confirm closure").click()
        expect(second.page.locator(".flash.ok")).to_contain_text(f"user {to_close['id']} is closed")

    await ui(confirm_closure)
    assert await live.wait_closed() == 4003  # the closed user's live socket is dropped
    assert (await client.get("/api/v1/me", headers=to_close["headers"])).status_code == 401

    # -- 4. an appeal, decided by a compliance operator who did not impose the warning -------
    def decide_appeal(_):
        first.nav("Appeals")
        card = first.page.locator("article", has_text="it was a joke")
        card.get_by_label("Note to the record").fill("the message offered pills for sale")
        card.get_by_role("button", name="Uphold the sanction").click()
        expect(first.page.locator(".flash.ok")).to_contain_text("the sanction stands")

    await ui(decide_appeal)
    [appealed] = (await client.get("/api/v1/sanctions", headers=offender["headers"])).json()
    assert appealed["appeal"]["decision"] == "upheld"

    # -- 5. the day's sanction records, downloaded as CSV ------------------------------------
    today = datetime.now(ZoneInfo(svc.settings.console_time_zone)).strftime("%Y-%m-%d")

    def export(_):
        first.nav("Exports")
        first.page.get_by_label("From").fill(today)
        first.page.get_by_label("To (inclusive)").fill(today)
        with first.page.expect_download() as info:
            first.page.locator("form[action='/console/exports/sanctions']").get_by_role("button").click()
        download = info.value
        return download.suggested_filename, Path(download.path()).read_text()

    filename, body = await ui(export)
    assert filename.startswith("sanctions-") and filename.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(body)))
    kinds = sorted(row["record_kind"] for row in rows)
    assert kinds == sorted(["sanction_imposed", "sanction_imposed", "sanction_confirmed"]), kinds

    # -- the same console on a narrow window, and nothing the CSP had to block ---------------
    def narrow(browser):
        desk = Desk(browser, base, viewport=NARROW).sign_in("compliance-b")
        expect(desk.page.get_by_role("link", name="Sanctions")).to_be_visible()
        shoot(desk, "dashboard-narrow")
        assert desk.page.evaluate("window.htmx && htmx.version") == "2.0.11"  # the vendored file, loaded
        desk.page.keyboard.press("Tab")  # the keyboard's first stop skips to the content
        first_stop = desk.page.evaluate("document.activeElement.textContent")
        assert first_stop == "Skip to content", first_stop
        wide = desk.page.evaluate("document.documentElement.scrollWidth")
        desk.close()
        return wide, desk.console_errors

    width, narrow_errors = await ui(narrow)
    assert width <= NARROW["width"], "the page scrolls sideways on a narrow window"
    for desk in (reviewer, moderator, first, second):
        assert desk.console_errors == [] and narrow_errors == [], desk.console_errors or narrow_errors
        await ui(lambda _: desk.close())
    await live.close()
