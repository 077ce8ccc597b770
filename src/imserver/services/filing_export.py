"""The register of filed public accounts, rendered for the regulator (Art. 7 ¶1:
the provider "files [them] in a categorized manner with the controlling
department for Internet information and content").

Three renderings of the same records (``PublicAccounts.filings``), all grouped
by province (Art. 3: each goes to its province's department; GB/T 2260 order,
accounts without one last) and by category within a province (categories in
the order of :class:`AccountCategory`, records in filing order within one):

* ``json``: ``{"generated_at", "count", "categories": {category: [record, ...]},
  "provinces": {code: {"department", "name", "count", "categories": {...}}}}``
  with every category present, empty ones too;
* ``jsonl``: one record per line, province by province, category by category;
* ``csv``: a header row of :data:`COLUMNS`, then the records in the same order.

``imserver export filings`` and ``GET /admin/v1/public-accounts/filings`` give
the same bytes for the same records. Pure: no I/O.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import datetime

from ..domain.errors import BadRequest
from ..domain.policy_types import AccountCategory
from ..policy import provinces

FORMATS = ("json", "jsonl", "csv")
COLUMNS = (
    "province",
    "department",
    "category",
    "reference",
    "revision",
    "filing_status",
    "filed_at",
    "filed_by",
    "superseded_at",
    "account_id",
    "account_name",
    "account_status",
    "operator_name",
    "credit_code",
    "licence_number",
)
MEDIA_TYPES = {"json": "application/json", "jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}
_ORDER = {c.value: i for i, c in enumerate(AccountCategory)}


@dataclass(frozen=True, slots=True)
class Export:
    body: str
    count: int
    media_type: str


def grouped(records: list[dict]) -> dict[str, list[dict]]:
    """Every category, in enum order, with its records in filing order."""
    groups: dict[str, list[dict]] = {c.value: [] for c in AccountCategory}
    for record in sorted(
        records, key=lambda r: (_ORDER.get(r["category"], len(_ORDER)), r["filed_at"], r["reference"])
    ):
        groups.setdefault(record["category"], []).append(record)
    return groups


def by_province(records: list[dict]) -> dict[str, dict]:
    """Province code (``"unknown"`` last) -> its department, name, count and records by category."""
    codes = sorted({r.get("province") or "unknown" for r in records}, key=lambda c: (c == "unknown", c))
    out = {}
    for code in codes:
        mine = [r for r in records if (r.get("province") or "unknown") == code]
        out[code] = {
            "department": provinces.department(code),
            "name": provinces.name(code),
            "count": len(mine),
            "categories": grouped(mine),
        }
    return out


def render(records: list[dict], fmt: str, *, now: datetime) -> Export:
    if fmt not in FORMATS:
        raise BadRequest(f"format is one of {', '.join(FORMATS)}")
    groups = grouped(records)
    regions = by_province(records)
    ordered = [r for region in regions.values() for group in region["categories"].values() for r in group]
    if fmt == "json":
        body = json.dumps(
            {"generated_at": now.isoformat(), "count": len(ordered), "categories": groups, "provinces": regions},
            ensure_ascii=False,
            indent=2,
        )
    elif fmt == "jsonl":
        body = "".join(json.dumps({k: r.get(k) for k in COLUMNS}, ensure_ascii=False) + "\n" for r in ordered)
    else:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for r in ordered:
            writer.writerow(["" if r.get(k) is None else r.get(k) for k in COLUMNS])
        body = out.getvalue()
    return Export(body, len(ordered), MEDIA_TYPES[fmt])
