"""Content-filter term lists through the admin API (`admin` role), on both backends."""

from __future__ import annotations

from imserver.domain.enums import Role
from imserver.services.unit_of_work import Invalidate, Scope

from .helpers import operator
from .operator_helpers import audit_rows


async def test_term_crud_is_audited_and_reloads_the_filter(http, app):
    svc = app.state.services
    admin = await operator(http, svc, Role.ADMIN)
    mod = await operator(http, svc, Role.MODERATOR)
    changes: list[Scope] = []
    svc.effects.on_invalidate(lambda effect: changes.append(effect.scope))
    term = {"list_name": "fraud", "term": "ｆａｋｅ ｐｉｌｌｓ", "action": "deny"}
    assert (await http.post("/admin/v1/terms", json=term, headers=mod["headers"])).status_code == 403
    r = await http.post("/admin/v1/terms", json=term, headers=admin["headers"])
    assert r.status_code == 201, r.text
    created = r.json()
    assert (created["term"], created["action"], created["created_by"]) == (term["term"], "deny", admin["id"])
    assert changes == [Scope.TERMS]
    r = await http.post("/admin/v1/terms", json=term, headers=admin["headers"])
    assert r.status_code == 409 and r.json()["code"] == "term_exists"
    for bad in ({**term, "action": "ban"}, {**term, "term": "  "}, {**term, "list_name": "Bad List"}):
        r = await http.post("/admin/v1/terms", json=bad, headers=admin["headers"])
        assert r.status_code == 422 and r.json()["code"] == "invalid_term", bad
    r = await http.post(
        "/admin/v1/terms/bulk",
        json={
            "list_name": "fraud",
            "action": "hold",
            "terms": ["wire transfer", "gift card", "wire transfer", term["term"]],
        },
        headers=admin["headers"],
    )
    assert r.status_code == 200 and r.json() == {"list_name": "fraud", "given": 4, "added": 2}
    r = await http.patch(f"/admin/v1/terms/{created['id']}", json={"action": "hold"}, headers=admin["headers"])
    assert r.status_code == 200 and r.json()["action"] == "hold"
    listed = (await http.get("/admin/v1/terms?list_name=fraud", headers=admin["headers"])).json()["items"]
    assert [(t["term"], t["action"]) for t in listed] == [
        (term["term"], "hold"),
        ("wire transfer", "hold"),
        ("gift card", "hold"),
    ]
    assert (await http.delete(f"/admin/v1/terms/{created['id']}", headers=admin["headers"])).status_code == 204
    r = await http.delete(f"/admin/v1/terms/{created['id']}", headers=admin["headers"])
    assert r.status_code == 404 and r.json()["code"] == "term_not_found"
    assert (await http.get("/admin/v1/terms", headers=admin["headers"])).json()["total"] > 0
    assert changes == [Scope.TERMS] * 4
    actions = [r["action"] for r in await audit_rows(svc) if r["action"].startswith("terms.")]
    assert actions == ["terms.add", "terms.add_many", "terms.set_action", "terms.remove"]
