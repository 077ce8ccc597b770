"""Markup in user content is shown as text and never runs, in a real browser."""

from __future__ import annotations

from playwright.sync_api import expect

from imserver.client import Client
from imserver.domain.enums import Role

from ..helpers import operator, register
from .console_helpers import Desk

NICKNAME = "<img src=x onerror=alert(1)>"  # within the 32-character nickname limit
BODY = '<script>alert("body")</script><b onmouseover=alert(2)>bold</b><img src=x onerror=alert(3)>'


async def test_markup_in_a_nickname_and_a_message_is_text(server, client, ui):
    await operator(client, server.services, Role.MODERATOR, handle="escaping-mod")
    author = await register(client, nickname=NICKNAME, verified=True)
    reader = await register(client, verified=True)
    sender = await Client.connect(server.ws_url, author["token"])
    try:
        ack = await sender.send(BODY, to_user=reader["id"])
    finally:
        await sender.close()
    r = await client.post(
        "/api/v1/reports",
        json={"target_kind": "message", "target_id": ack.message_id, "category": "harmful", "text": BODY},
        headers=reader["headers"],
    )
    assert r.status_code == 201, r.text
    report_id = r.json()["id"]

    def look(browser):
        desk = Desk(browser, server.base_url).sign_in("escaping-mod")
        desk.page.goto(f"/console/reports/{report_id}")
        page = desk.page
        expect(page.locator("#author-nickname")).to_have_text(NICKNAME)
        expect(page.locator("#reported-body")).to_have_text(BODY)
        found = {
            "script": page.locator("main script").count(),
            "img": page.locator("main img").count(),
            "b": page.locator("main b").count(),
        }
        page.locator("#reported-body").hover()
        html = page.locator("#reported-body").inner_html()
        desk.close()
        return found, html, desk.dialogs

    found, html, dialogs = await ui(look)
    assert found == {"script": 0, "img": 0, "b": 0}  # no element was made from the user's markup
    assert html.startswith("&lt;script&gt;")
    assert dialogs == []  # nothing ran
