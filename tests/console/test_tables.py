"""Tables sort by a column in the browser, from the keyboard too, with the CSP in force."""

from __future__ import annotations

from playwright.sync_api import expect

from imserver.domain.enums import Role

from ..helpers import operator
from .console_helpers import Desk


async def test_audit_rows_sort_by_a_column(server, client, ui):
    await operator(client, server.services, Role.COMPLIANCE, handle="sorting-auditor")
    await operator(client, server.services, Role.ADMIN, handle="another-operator")  # more rows to sort

    def sort(browser):
        desk = Desk(browser, server.base_url).sign_in("sorting-auditor")
        desk.nav("Audit log")
        ids = desk.page.locator("table.sortable tbody tr td:first-child")
        newest_first = [int(x) for x in ids.all_inner_texts()]
        header = desk.page.locator("table.sortable thead th").first.locator("button.sort")
        header.focus()
        desk.page.keyboard.press("Enter")
        expect(desk.page.locator("th[aria-sort]")).to_have_attribute("aria-sort", "ascending")
        ascending = [int(x) for x in ids.all_inner_texts()]
        header.click()
        expect(desk.page.locator("th[aria-sort]")).to_have_attribute("aria-sort", "descending")
        descending = [int(x) for x in ids.all_inner_texts()]
        desk.close()
        return newest_first, ascending, descending, desk.console_errors

    newest_first, ascending, descending, errors = await ui(sort)
    assert len(newest_first) >= 4 and newest_first == sorted(newest_first, reverse=True)
    assert ascending == sorted(newest_first) and descending == newest_first
    assert errors == []
