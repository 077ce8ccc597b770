"""Browser steps of the console tests: plain sync functions run on the browser's thread."""

from __future__ import annotations

import re

import httpx

from imserver.domain.enums import Role

from ..helpers import PASSWORD

WIDE = {"width": 1280, "height": 900}  # the console's target desk screen
NARROW = {"width": 420, "height": 860}  # a phone-sized window


class Desk:
    """One operator's browser context and page, and what the page reported."""

    def __init__(self, browser, base_url: str, *, lang: str = "en-US", viewport: dict = WIDE) -> None:
        self.context = browser.new_context(base_url=base_url, locale=lang, viewport=viewport, accept_downloads=True)
        self.page = self.context.new_page()
        self.console_errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def sign_in(self, handle: str) -> Desk:
        page = self.page
        page.goto("/console/")
        page.get_by_label(re.compile("Handle|账号名")).fill(handle)
        page.get_by_label(re.compile("Password|密码")).fill(PASSWORD)
        page.get_by_role("button", name=re.compile("Sign in|登录")).click()
        page.wait_for_url("**/console/")
        return self

    def nav(self, name: str) -> None:
        """Follow a navigation link and wait until its page is shown (htmx swaps the body in place)."""
        from playwright.sync_api import expect

        self.page.get_by_role("navigation").get_by_role("link", name=name, exact=True).click()
        expect(self.page.locator('nav a[aria-current="page"]')).to_have_text(name)
        assert self.unlabelled() == [], f"fields without a label on {name}"

    def unlabelled(self) -> list[str]:
        """Ids (or names) of the visible form fields on the page that no label names."""
        return self.page.evaluate(
            """[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                .filter(e => e.labels.length === 0 && !e.getAttribute('aria-label'))
                .map(e => e.id || e.name)"""
        )

    def confirmation(self) -> str:
        from playwright.sync_api import expect

        ok = self.page.locator(".flash.ok")
        expect(ok).to_be_visible()
        return ok.inner_text()

    def error(self) -> str:
        from playwright.sync_api import expect

        box = self.page.locator(".flash.error")
        expect(box).to_be_visible()
        return box.inner_text()

    def close(self) -> None:
        self.context.close()


def queue_size(desk: Desk, queue: str) -> int:
    return int(desk.page.locator(f'td[data-queue="{queue}"]').inner_text())


# -- the console over HTTP, without a browser ---------------------------------------------

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(page: httpx.Response) -> str:
    return CSRF.search(page.text).group(1)


async def console_client(app, *, base_url: str = "http://testserver") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


async def sign_in(c: httpx.AsyncClient, handle: str, password: str = PASSWORD) -> httpx.Response:
    form = await c.get("/console/sign-in")
    return await c.post("/console/sign-in", data={"csrf": csrf_of(form), "handle": handle, "password": password})


async def make_operator(app, role: Role, handle: str) -> int:
    svc = app.state.services
    return await svc.accounts.create_operator(handle=handle, password=PASSWORD, role=role, created_by=None)
