"""Every admin response a test receives, checked against the app's own OpenAPI.

The ``http`` and ``client`` fixtures install :func:`response_hook`: each
response to ``/admin/v1/...`` is matched to its operation and status in
``app.openapi()`` and its JSON body validated (jsonschema, draft 2020-12, the
dialect of OpenAPI 3.1) against the documented schema. A status the operation
does not document, or a body that does not fit, fails the test that received
it; :data:`SEEN` counts what was checked so a test can prove the hook ran.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import httpx
from jsonschema import Draft202012Validator

ADMIN_PREFIX = "/admin/v1/"
SEEN: Counter = Counter()  # (method, path template, status) -> responses checked this session


class ContractViolation(AssertionError):
    pass


@dataclass
class Contract:
    """The OpenAPI of one app, ready to match and validate responses."""

    spec: dict
    _routes: list[tuple[re.Pattern, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for template in self.spec["paths"]:
            pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", re.escape(template).replace(r"\{", "{").replace(r"\}", "}")) + "$"
            self._routes.append((re.compile(pattern), template))
        # Literal segments beat parameters: /sanctions/awaiting-confirmation before /sanctions/{id}.
        self._routes.sort(key=lambda item: item[1].count("{"))

    def template(self, method: str, path: str) -> str | None:
        for pattern, template in self._routes:
            if pattern.match(path) and method.lower() in self.spec["paths"][template]:
                return template
        return None

    def check(self, method: str, path: str, status: int, content_type: str, body: object) -> str:
        """Validate one response; returns the path template. ContractViolation if it does not fit."""
        template = self.template(method, path)
        if template is None:
            if status in (404, 405):  # no such route: the framework's own answer, in the error shape
                return "?"
            raise ContractViolation(f"{method} {path}: no operation in the OpenAPI")
        responses = self.spec["paths"][template][method.lower()]["responses"]
        documented = responses.get(str(status)) or responses.get("default")
        if documented is None:
            raise ContractViolation(f"{method} {template}: status {status} is not documented ({sorted(responses)})")
        if status == 204 or not content_type.startswith("application/json"):
            if status == 204 and body is not None:
                raise ContractViolation(f"{method} {template}: 204 with a body")
            return template
        schema = documented.get("content", {}).get("application/json", {}).get("schema")
        if schema is None:
            raise ContractViolation(f"{method} {template} {status}: JSON body but no schema documented")
        validator = Draft202012Validator({**schema, "components": self.spec.get("components", {})})
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        if errors:
            where = "; ".join(f"{list(e.absolute_path)}: {e.message[:200]}" for e in errors[:5])
            raise ContractViolation(f"{method} {template} {status}: body does not match the OpenAPI: {where}")
        return template


def response_hook(app):
    """An httpx response hook validating every admin response against `app`'s OpenAPI."""
    contract: Contract | None = None

    async def hook(response: httpx.Response) -> None:
        nonlocal contract
        path = response.request.url.path
        if not path.startswith(ADMIN_PREFIX):
            return
        if contract is None:
            contract = Contract(app.openapi())
        await response.aread()
        is_json = response.headers.get("content-type", "").startswith("application/json") and response.content
        body = response.json() if is_json else None
        template = contract.check(
            response.request.method, path, response.status_code, response.headers.get("content-type", ""), body
        )
        SEEN[(response.request.method, template, response.status_code)] += 1

    return hook
