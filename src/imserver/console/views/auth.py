"""Sign-in, sign-out and the language switch."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from ...api.deps import client_ip, origin
from ...domain.errors import Code
from .. import i18n, security
from ..i18n import N_
from ..web import (
    ConsoleRoute,
    CsrfFailed,
    SignInRequired,
    current_operator,
    done,
    is_tls,
    read_form,
    redirect_with_flash,
    render,
    safe_next,
    services,
    state,
)

router = APIRouter(route_class=ConsoleRoute)


@router.get("/console/sign-in")
async def sign_in_page(request: Request, next: str = "/console/") -> Response:
    nonce = request.cookies.get(security.PRESESSION_COOKIE)
    if not nonce:
        nonce = request.state.new_nonce = security.new_nonce()
    response = render(request, "sign_in.html", next=safe_next(next))
    response.set_cookie(security.PRESESSION_COOKIE, nonce, **security.cookie_args(is_tls(request)))
    return response


@router.post("/console/sign-in")
async def sign_in(request: Request) -> Response:
    request.state.back = "/console/sign-in"
    form = await read_form(request)
    if not state(request).signer.csrf_ok(request.cookies.get(security.PRESESSION_COOKIE), form.get("csrf")):
        raise CsrfFailed("the sign-in form's anti-forgery token is missing or stale; reload the page")
    svc = services(request)
    handle = form.get("handle", "")
    # The one sign-in throttle (services/signin_guard.py), shared with the admin API and users.
    attempt = svc.accounts.operator_login(
        handle=handle,
        password=form.get("password", ""),
        client_ip=client_ip(request),
        totp=form.get("totp") or None,
    )
    token, _ = await svc.access_log.sign_in("operator", handle, origin(request), attempt)
    now = int(svc.clock.now().timestamp())
    request.state.console_session = security.Session(token, now)  # sealed into the cookie by ConsoleRoute
    response = RedirectResponse(safe_next(form.get("next")), status_code=303)
    security.clear_cookie(response, security.PRESESSION_COOKIE)
    return response


@router.post("/console/sign-out")
async def sign_out(request: Request) -> Response:
    try:
        me = await current_operator(request)
    except SignInRequired:
        return RedirectResponse("/console/sign-in", status_code=303)
    form = await read_form(request)
    if not state(request).signer.csrf_ok(request.state.console_session.token, form.get("csrf")):
        raise CsrfFailed("the form's anti-forgery token is missing or does not match this session")
    svc = services(request)
    await svc.accounts.logout(me)
    await svc.access_log.sign_out(me, origin(request))
    request.state.console_session = None
    response = done(request, "/console/sign-in", N_("You are signed out."))
    security.clear_cookie(response, security.SESSION_COOKIE)
    return response


@router.post("/console/language")
async def switch_language(request: Request) -> Response:
    form = await read_form(request)
    try:
        await current_operator(request)
        binding = request.state.console_session.token
    except SignInRequired:
        binding = request.cookies.get(security.PRESESSION_COOKIE)
    if not state(request).signer.csrf_ok(binding, form.get("csrf")):
        raise CsrfFailed("the form's anti-forgery token is missing or does not match this session")
    lang = form.get("lang", "")
    back = safe_next(form.get("back"))
    if lang not in i18n.LANGUAGES:
        return redirect_with_flash(
            request, back, {"kind": "error", "code": Code.MALFORMED.value, "detail": "unknown language"}
        )
    response = RedirectResponse(back, status_code=303)
    response.set_cookie(
        i18n.LANG_COOKIE, lang, max_age=365 * 24 * 3600, **security.cookie_args(is_tls(request))
    )
    return response
