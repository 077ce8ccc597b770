"""Jurisdiction (Art. 3): a filing names the provincial-level department it goes to, from
the credit code's region or an individual's declared province, and the register exports
grouped by province and category for a period. SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from imserver.domain.enums import Role
from imserver.policy import provinces

from .helpers import register
from .operator_helpers import jsonl
from .test_public_accounts import CREDIT_CODE, apply, approved, ops


def test_a_credit_code_names_its_province():
    assert provinces.of_credit_code(CREDIT_CODE) == "11"  # region 110000: Beijing
    assert provinces.department("11") == "北京市互联网信息办公室"
    assert provinces.department("65") == "新疆维吾尔自治区互联网信息办公室"
    assert provinces.of_credit_code("91990000600037341L") is None and provinces.department("99") is None


async def test_filings_name_their_department_and_export_by_province(http, app):
    compliance = (await ops(http))[Role.COMPLIANCE]
    _, beijing = await approved(http, "enterprise")
    _, guangdong = await approved(http, "individual", province="44")
    _, shanghai = await approved(http, "other")  # the helper declares 31
    r = await http.get(f"/admin/v1/public-accounts/{beijing['id']}", headers=compliance["headers"])
    assert r.status_code == 200
    filings = (
        await http.get("/admin/v1/public-accounts/filings", params={"format": "jsonl"}, headers=compliance["headers"])
    ).text
    rows = jsonl(filings)
    assert [(x["account_id"], x["province"], x["department"]) for x in rows] == [
        (beijing["id"], "11", "北京市互联网信息办公室"),
        (shanghai["id"], "31", "上海市互联网信息办公室"),
        (guangdong["id"], "44", "广东省互联网信息办公室"),
    ]
    body = (await http.get("/admin/v1/public-accounts/filings", headers=compliance["headers"])).json()
    assert list(body["provinces"]) == ["11", "31", "44"]
    assert body["provinces"]["44"]["department"] == "广东省互联网信息办公室"
    assert [r["account_id"] for r in body["provinces"]["44"]["categories"]["individual"]] == [guangdong["id"]]
    assert body["provinces"]["11"]["count"] == 1
    # A period: nothing was filed in the future; everything since yesterday.
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    r = await http.get(
        "/admin/v1/public-accounts/filings",
        params={"format": "jsonl", "since": tomorrow},
        headers=compliance["headers"],
    )
    assert r.text == ""
    r = await http.get(
        "/admin/v1/public-accounts/filings",
        params={"format": "jsonl", "since": (datetime.now(UTC) - timedelta(days=1)).date().isoformat()},
        headers=compliance["headers"],
    )
    assert len(jsonl(r.text)) == 3
    r = await http.get(
        "/admin/v1/public-accounts/filings",
        params={"since": tomorrow, "until": "2000-01-01"},
        headers=compliance["headers"],
    )
    assert (r.status_code, r.json()["code"]) == (422, "invalid_period")
    # The regulator's filing record names the department too.
    records = jsonl(
        (
            await http.get(
                "/admin/v1/regulator/sanctions", params={"since": "2000-01-01"}, headers=compliance["headers"]
            )
        ).text
    )
    filed = {
        x["filing"]["account_name"]: x["filing"]["department"] for x in records if x["record_kind"] == "filing_filed"
    }
    assert filed[guangdong["name"]] == "广东省互联网信息办公室"


async def test_a_province_is_required_and_must_agree(http, app):
    owner = await register(http, verified=True)
    cases = (
        ("individual", {"province": None}),  # an individual declares one
        ("individual", {"province": "99"}),  # not a provincial code
        ("individual", {"province": "81"}),  # Hong Kong is not under a mainland provincial office
        ("enterprise", {"province": "44"}),  # the credit code says Beijing
    )
    for category, over in cases:
        r = await apply(http, owner, category, **over)
        assert (r.status_code, r.json()["code"]) == (422, "invalid_province"), (category, over, r.text)
    r = await http.get("/api/v1/public-accounts/mine", headers=owner["headers"])
    assert r.json() == [] or r.json().get("items") == []
    r = await apply(http, owner, "enterprise", province="11")  # agreeing is fine
    assert r.status_code == 201, r.text
