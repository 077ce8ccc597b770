"""Request plumbing shared by the console's views: who is signed in, forms with
their CSRF check, rendering in the operator's language, confirmations and errors.

Views raise the services' errors as they come; :class:`ConsoleRoute` turns them
into pages: a failed action goes back to the page it came from with the error's
code and meaning shown (nothing was changed: the service refused in its
transaction), a failed read shows an error page with the matching status.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from dataclasses import dataclass

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, select_autoescape

from ..api.deps import origin
from ..domain.enums import PrincipalKind
from ..domain.fields import text_fault
from ..domain.errors import BadRequest, Code, ImserverError, Unauthenticated
from ..domain.principals import Principal
from ..services.accounts import require_role
from ..services.container import Services
from ..services.worklists import PageArgs
from . import i18n, pages, security
from .meanings import meaning
from .security import Session, Signer
from .vocab import WORDS

FLASH_COOKIE = "imserver_console_flash"
FLASH_SECONDS = 60  # a confirmation not shown within a minute (the redirect was not followed) is dropped
MAX_FORM_BYTES = 256 * 1024  # the largest form is an agreement text (100 000 characters)
MAX_FORM_FIELDS = 200  # the largest form has a dozen fields; more is not a console form
CODE_PARAMS = frozenset({"kind", "action", "roles"})  # confirmation parameters that carry codes, not names
QUEUE_PAGE = 50  # items per queue page: a morning's work on one screen
PASSWORD_PAGE = "/console/password"  # where an operator whose password was reset is sent


class SignInRequired(Exception):
    """No valid console session: go to the sign-in page (with why, if it ended)."""

    def __init__(self, code: Code | None = None) -> None:
        super().__init__(code)
        self.code = code


class CsrfFailed(ImserverError):
    status = 403
    default_code = Code.CSRF_FAILED


@dataclass
class ConsoleState:
    signer: Signer
    envs: dict[str, Environment]
    idle_seconds: int


def _environment(lang: str, time_zone: str) -> Environment:
    env = Environment(
        loader=PackageLoader("imserver.console", "templates"),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    translations = i18n.translations(lang)
    env.install_gettext_translations(translations, newstyle=True)
    env.filters["word"] = lambda code: _word(translations, code)
    fmt = i18n.Formatter(lang, time_zone)
    env.filters["dt"] = fmt.datetime
    env.filters["age"] = fmt.age
    return env


def services(request: Request) -> Services:
    return request.app.state.services


def state(request: Request) -> ConsoleState:
    """Built on first use: the signing key comes from the key ring, which exists once the app started."""
    st = getattr(request.app.state, "console", None)
    if st is None:
        svc = services(request)
        settings = svc.settings
        key = security.session_key(
            settings.console_session_key, lambda: svc.identities.keyring.derive("console-session")
        )
        envs = {lang: _environment(lang, settings.console_time_zone) for lang in i18n.LANGUAGES}
        st = request.app.state.console = ConsoleState(Signer(key), envs, settings.console_idle_timeout_seconds)
    return st


def language(request: Request) -> str:
    return i18n.negotiate(request.headers.get("accept-language"), request.cookies.get(i18n.LANG_COOKIE))


# -- who is signed in ---------------------------------------------------------------


class PasswordChangeRequired(Exception):
    """The operator's password was reset: only the password change page answers until it is changed."""


async def signed_in(request: Request, page: str) -> Principal:
    """The operator behind the session cookie, holding one of `page`'s roles (as the
    admin API, a reset password must be changed before any page answers)."""
    me = await current_operator(request)
    if me.must_change_password:
        raise PasswordChangeRequired()
    require(me, pages.BY_NAME[page].roles)
    return me


def require(me: Principal, roles) -> None:
    """Forbidden (naming the roles) unless `me` holds one of `roles`."""
    require_role(me, *sorted(roles))


async def current_operator(request: Request) -> Principal:
    st, svc = state(request), services(request)
    session = st.signer.open(request.cookies.get(security.SESSION_COOKIE))
    if session is None:
        raise SignInRequired()
    now = int(svc.clock.now().timestamp())
    try:
        me = await svc.accounts.authenticate(session.token, PrincipalKind.OPERATOR)
    except Unauthenticated:
        raise SignInRequired(Code.SESSION_EXPIRED) from None
    if now - session.last_seen > st.idle_seconds:
        await svc.accounts.logout(me)  # the idle session's token stops working everywhere
        await svc.access_log.sign_out(me, origin(request), detail=Code.SESSION_EXPIRED.value)
        raise SignInRequired(Code.SESSION_EXPIRED)
    request.state.console_session = Session(session.token, now)
    request.state.me = me
    return me


# -- forms -----------------------------------------------------------------------------


async def read_form(request: Request) -> dict[str, str]:
    """An url-encoded form, bounded in size; repeated fields keep the last value."""
    chunks, size = [], 0
    async for chunk in request.stream():  # read in pieces, so an oversized body is refused before it is all held
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            raise BadRequest("the form is too large")
        chunks.append(chunk)
    body = b"".join(chunks)
    try:
        pairs = urllib.parse.parse_qsl(
            body.decode(), keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_FORM_FIELDS
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest("the form could not be read") from exc
    for pair in pairs:
        for text in pair:
            fault = text_fault(text)
            if fault is not None:  # PostgreSQL would refuse it later, as a server error
                raise BadRequest(f"the form is invalid: {fault}", Code.INVALID_FIELD)
    return dict(pairs)


async def posted(request: Request, page: str | None, back: str) -> tuple[Principal, dict[str, str]]:
    """A signed-in operator's form, its CSRF token checked; errors return to `back`.
    With no `page`, any signed-in operator (one whose password was reset too)."""
    request.state.back = back
    me = await signed_in(request, page) if page else await current_operator(request)
    form = await read_form(request)
    if not state(request).signer.csrf_ok(request.state.console_session.token, form.get(security.CSRF_FIELD)):
        raise CsrfFailed("the form's anti-forgery token is missing or does not match this session")
    return me, form


def csrf_binding(request: Request) -> str | None:
    """What this request's forms are bound to: the session token, else the pre-session nonce."""
    session = getattr(request.state, "console_session", None)
    if session is not None:
        return session.token
    return request.cookies.get(security.PRESESSION_COOKIE) or getattr(request.state, "new_nonce", None)


def page_args(cursor: str, limit: int = QUEUE_PAGE) -> PageArgs:
    """A list page from the address's ``cursor`` (empty: the first page)."""
    return PageArgs(cursor=cursor or None, limit=limit)


def paged(request: Request, envelope: dict) -> dict:
    """A list envelope for a template: its items and total, and the address of the next
    page (this address with the envelope's opaque cursor in place of the old one)."""
    cursor = envelope["next_cursor"]
    next_href = None
    if cursor:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
        next_href = "?" + urllib.parse.urlencode([*params, ("cursor", cursor)])
    return {"items": envelope["items"], "total": envelope["total"], "next_href": next_href}


def field_int(form: dict[str, str], name: str, *, required: bool = True) -> int | None:
    value = form.get(name, "").strip()
    if not value:
        if required:
            raise BadRequest(f"{name} is required")
        return None
    if not value.isdigit() or len(value) > 18:
        raise BadRequest(f"{name} must be a whole number")
    return int(value)


# -- responses -----------------------------------------------------------------------------


def render(request: Request, template: str, *, status_code: int = 200, page: str | None = None, **context) -> HTMLResponse:
    st = state(request)
    lang = language(request)
    me = getattr(request.state, "me", None)
    binding = csrf_binding(request)
    tr = i18n.translations(lang)
    html = (
        st.envs[lang]
        .get_template(template)
        .render(
            me=me,
            nav=pages.visible(me) if me else [],
            page=page,
            lang=lang,
            languages=i18n.LANGUAGES,
            csrf=st.signer.csrf(binding) if binding else "",
            flash=_take_flash(request),
            meaning=lambda code: tr.gettext(meaning(code)),
            kind_title=lambda kind: _word(tr, kind),
            request_path=request.url.path,
            **context,
        )
    )
    response = HTMLResponse(html, status_code=status_code)
    if getattr(request.state, "flash_shown", False):
        security.clear_cookie(response, FLASH_COOKIE)
    return response


def done(request: Request, back: str, message: str, **params) -> RedirectResponse:
    """After an action: back to the page, which then confirms what was done (`message` % params)."""
    return redirect_with_flash(request, back, {"kind": "ok", "message": message, "params": params})


def redirect_with_flash(request: Request, to: str, flash: dict) -> RedirectResponse:
    response = RedirectResponse(to, status_code=303)
    st = state(request)
    raw = base64.urlsafe_b64encode(json.dumps(flash).encode()).decode()
    response.set_cookie(
        FLASH_COOKIE, st.signer.sign("flash", raw), **security.cookie_args(is_tls(request)), max_age=FLASH_SECONDS
    )
    return response


def _take_flash(request: Request) -> dict | None:
    raw = state(request).signer.unsign("flash", request.cookies.get(FLASH_COOKIE))
    if raw is None:
        return None
    request.state.flash_shown = True
    flash = json.loads(base64.urlsafe_b64decode(raw))
    tr = i18n.translations(language(request))
    if flash.get("message"):
        # Codes among the parameters are shown in the page's language; names and ids as they are.
        params = {k: _word(tr, v) if k in CODE_PARAMS else v for k, v in flash.get("params", {}).items()}
        flash["text"] = tr.gettext(flash["message"]) % params
    return flash


def _word(tr, value):
    """A code among the parameters of a confirmation (a sanction kind, an action), in the page's
    language; a list of codes (roles) as a comma-separated list of words."""
    if isinstance(value, list):
        return ", ".join(str(_word(tr, v)) for v in value)
    if isinstance(value, str):
        if value in pages.SANCTION_KIND_TITLES:
            return tr.gettext(pages.SANCTION_KIND_TITLES[value])
        if value in WORDS:
            return tr.gettext(WORDS[value])
    return value


def is_tls(request: Request) -> bool:
    return request.url.scheme == "https"


def _safe_back(request: Request) -> str:
    back = getattr(request.state, "back", None)
    if back:
        return back
    referer = urllib.parse.urlsplit(request.headers.get("referer", ""))
    if referer.netloc == request.url.netloc and referer.path.startswith("/console/"):
        return referer.path + (f"?{referer.query}" if referer.query else "")
    return "/console/"


def safe_next(value: str | None) -> str:
    """A post-sign-in destination inside the console, never another site."""
    if value and value.startswith("/console/") and "//" not in value and "\\" not in value:
        return value
    return "/console/"


class ConsoleRoute(APIRoute):
    """Console routes: errors become pages, every response gets the security headers,
    and a live session's cookie is re-sealed with this request's time (the idle clock)."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                response = await handler(request)
            except SignInRequired as exc:
                response = _to_sign_in(request, exc.code)
            except PasswordChangeRequired:
                response = redirect_with_flash(
                    request, PASSWORD_PAGE, {"kind": "error", "code": Code.PASSWORD_CHANGE_REQUIRED.value, "detail": ""}
                )
            except ImserverError as exc:
                response = _error_response(request, exc)
            except RequestValidationError:  # a query or path parameter of the wrong type
                response = _error_response(request, BadRequest("a parameter of the address is invalid"))
            for name, value in security.SECURITY_HEADERS.items():
                response.headers[name] = value
            session = getattr(request.state, "console_session", None)
            if session is not None:
                response.set_cookie(
                    security.SESSION_COOKIE, state(request).signer.seal(session), **security.cookie_args(is_tls(request))
                )
            return response

        return route


def _to_sign_in(request: Request, code: Code | None) -> Response:
    target = "/console/sign-in"
    if request.method == "GET" and request.url.path != "/console/sign-in":
        target += "?" + urllib.parse.urlencode({"next": request.url.path})
    if code is not None:
        response = redirect_with_flash(request, target, {"kind": "error", "code": code.value, "detail": ""})
    else:
        response = RedirectResponse(target, status_code=303)
    security.clear_cookie(response, security.SESSION_COOKIE)
    request.state.console_session = None
    if request.headers.get("hx-request"):
        response.headers["HX-Redirect"] = target  # htmx: load the sign-in page as a whole page
    return response


def _error_response(request: Request, exc: ImserverError) -> Response:
    error = {"kind": "error", "code": exc.code.value, "detail": exc.detail}
    if request.method == "POST" and not isinstance(exc, CsrfFailed):
        return redirect_with_flash(request, _safe_back(request), error)
    return render(request, "error.html", status_code=exc.status, error=error)
