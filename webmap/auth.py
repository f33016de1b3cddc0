"""Sign-in, API keys, and the gate every request passes: who is asking, and may they.

A request is authenticated either by an API key (``Authorization: Bearer gm_…``, ``X-API-Key``, or for
Open311 the specification's ``api_key`` parameter) or by a browser session (Flask-Login; the cookie holds a
random token whose hash ``gis.users`` keeps, so logout and disabling end it at once). Then
:data:`ENDPOINTS` — one table for the whole app — names the permission each endpoint needs
(:mod:`gis.access` says which roles have it); an endpoint missing from it is refused, so a new one cannot
be forgotten open. Scoped data is filtered by the principal's scope in the queries (``g.principal.scope``).

Sessions' writes carry a CSRF token (Flask-WTF): pages put it in a ``<meta>`` tag and send it as
``X-CSRFToken``; forms as a field. Requests with a key carry no cookies and need none. Keys are rate
limited per key (Flask-Limiter). Logins, failed logins, key use, refusals and every write are audited.
"""
import logging
import threading
import time
from contextlib import contextmanager
from urllib.parse import urlsplit

import psycopg2
from flask import (Blueprint, current_app, g, jsonify, redirect, render_template, request, session,
                   url_for)
from flask_babel import gettext as _
from flask_limiter import Limiter
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError, CSRFProtect

from gis import access, api_keys, users
from gis.access import ACT, ACTIVATE, AUDIT, PLAN, READ, REPORT, STATS, VIEW
from gis.errors import Forbidden, GridMapError, Unauthorized
from webmap import get_db
from webmap.api import int_arg

bp = Blueprint("auth", __name__)
log = logging.getLogger(__name__)

# Endpoints anyone may reach: the sign-in page, health, the service catalogue and the API's description.
PUBLIC = frozenset({
    "static", "vendor.asset", "pages.health", "auth.login", "openapi.openapi",
    "open311.discovery", "open311.services", "open311.service_definition",
})
# The permission each other endpoint needs; what is inside the scope is for the query to say.
ENDPOINTS = {
    "auth.logout": None, "auth.me": None,          # any signed-in user or key
    "pages.index": VIEW, "map_page.live_map": VIEW, "map_page.classes": VIEW, "map_page.cell": VIEW,
    "api.grids": VIEW, "api.versions": VIEW, "tiles.cell_tile": VIEW, "live.events": VIEW,
    "reports.index": READ, "reports.show": READ, "reports.create": REPORT,
    "open311.list_requests": READ, "open311.show_request": READ, "open311.show_token": READ,
    "open311.create_request": REPORT,
    "cases.show": READ, "cases.worklist": READ, "case_pages.case": READ, "case_pages.worklist": READ,
    "cases.act": ACT,
    "stats.stats": STATS, "case_pages.rankings": STATS,
    "planner.planner": PLAN, "planner.new_draft": PLAN, "planner.cells": PLAN, "planner.save_cell": PLAN,
    "planner.create_cell": PLAN, "planner.delete_cell": PLAN, "planner.split_cell": PLAN, "planner.merge": PLAN,
    "planner.move_vertex": PLAN, "planner.edits": PLAN, "api.problems": PLAN, "api.check_cell": PLAN,
    "versions.diff": PLAN, "versions.diff_page": PLAN,
    "activation.impact": ACTIVATE, "activation.activate": ACTIVATE,   # the whole city changes
    "auth.audit": AUDIT,
}
# Writes that are not audited line by line: reports come in at up to a thousand a second and are their own
# record (and key use is audited once a minute per key).
UNAUDITED_WRITES = frozenset({"reports.create", "open311.create_request", "auth.login", "auth.logout"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
KEY_USE_AUDIT_S = 60.0

csrf = CSRFProtect()


def _key_limit():
    return f"{g.get('key_per_minute') or 1_000_000}/minute"  # exempt_when is asked after this


def _not_rate_limited():
    return g.get("principal") is None or g.principal.via != "key" or g.get("key_per_minute") is None


def _limited_name():
    principal = g.get("principal")
    return principal.name if principal is not None else request.remote_addr


_key_use_lock = threading.Lock()


class SessionUser(UserMixin):
    """What Flask-Login keeps for a session: its token (the cookie's id) and the user behind it."""

    def __init__(self, token, principal):
        self.token, self.principal = token, principal

    def get_id(self):
        return self.token


def _load_session(token):
    with get_db().cursor() as cur:
        principal = users.session_principal(cur, token, lifetime=current_app.config["SESSION_LIFETIME"],
                                            idle=current_app.config["SESSION_IDLE"])
    return SessionUser(token, principal) if principal else None


def init_app(app, settings):
    app.config["SECRET_KEY"] = app.config.get("SECRET_KEY") or settings.secret_key
    if not app.config.get("SECRET_KEY"):
        raise RuntimeError("no secret key for sessions: set GRIDMAP_SECRET_KEY, or run `make setup`, "
                           "which writes .gridmap/secret_key")
    app.config.setdefault("SESSION_LIFETIME", users.SESSION_LIFETIME)
    app.config.setdefault("SESSION_IDLE", users.SESSION_IDLE)
    app.config.update(
        PERMANENT_SESSION_LIFETIME=app.config["SESSION_LIFETIME"],
        SESSION_COOKIE_NAME="gridmap_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        REMEMBER_COOKIE_DURATION=0,
        WTF_CSRF_CHECK_DEFAULT=False,   # checked in authorize(), for sessions only
        WTF_CSRF_TIME_LIMIT=None,       # the token lives as long as the session
    )
    csrf.init_app(app)
    login_manager = LoginManager(app)
    login_manager.user_loader(_load_session)
    login_manager.session_protection = "basic"
    app.before_request(authorize)       # before the limiter's check, which needs the principal
    # per key and process (memory): with gunicorn's two workers a key gets up to twice its rate
    Limiter(key_func=_limited_name, app=app, storage_uri="memory://", headers_enabled=True,
            application_limits=[_key_limit], application_limits_exempt_when=_not_rate_limited)
    app.after_request(_audit_write)
    app.register_blueprint(bp)
    app.jinja_env.globals["principal"] = lambda: g.get("principal")
    app.jinja_env.globals["role_name"] = lambda role: access.ROLE_NAMES_ZH.get(role, role)


def authorize():
    """Before every request: find the principal, check CSRF for sessions, and the endpoint's permission."""
    endpoint = request.endpoint
    if endpoint is None:
        return None  # a 404 or 405 follows
    if endpoint in PUBLIC:
        if endpoint == "auth.login" and request.method == "POST":
            csrf.protect()
        return None
    if endpoint not in ENDPOINTS:
        raise Forbidden(f"endpoint {endpoint} has no entry in the table of permissions")
    principal = _key_principal()
    if principal is None and current_user.is_authenticated:
        principal = current_user.principal
        if request.method not in SAFE_METHODS:
            csrf.protect()
    if principal is None:
        return _unauthenticated()
    g.principal = principal
    permission = ENDPOINTS[endpoint]
    if permission is not None and not principal.can(permission):
        _audit_now("refused", status=403, permission=permission)
        principal.require(permission)
    return None


def _key_principal():
    key = _presented_key()
    if key is None:
        return None
    with get_db().cursor() as cur:
        found = api_keys.principal(cur, key)
    if found is None:
        _audit_now("refused", status=401, actor="", via="anonymous", reason="unknown or revoked API key")
        raise Unauthorized("the API key is unknown or revoked")
    principal, g.key_per_minute = found
    _count_key_use(principal.name)
    return principal


def _presented_key():
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    if request.headers.get("X-API-Key"):
        return request.headers["X-API-Key"].strip()
    if request.blueprint == "open311":  # the specification's way: a parameter of the form or the query
        return request.values.get("api_key") or None
    return None


def _count_key_use(name):
    """Audit a key's use once a minute per process, with the number of requests since the last line."""
    now = time.monotonic()
    seen = current_app.extensions.setdefault("gridmap_key_use", {})  # key name → (audited at, uses since)
    with _key_use_lock:
        since, uses = seen.get(name, (None, 0))
        due = since is None or now - since >= KEY_USE_AUDIT_S
        seen[name] = (now, 0) if due else (since, uses + 1)
    if due:
        with _best_effort(f"the use of key {name}") as cur:
            users.audit(cur, name, "key", "key_used", address=request.remote_addr, path=request.path,
                        uses_before=uses)
            api_keys.mark_used(cur, name)


def _unauthenticated():
    if _wants_json():
        _audit_now("refused", status=401, actor="", via="anonymous")
        raise Unauthorized("sign in, or send an API key (Authorization: Bearer gm_…)")
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def _wants_json():
    return request.path.startswith(("/api/", "/tiles/", "/open311/")) or request.method not in SAFE_METHODS


def _audit_now(action, *, status, actor=None, via=None, **detail):
    """One line of the audit log in a transaction of its own (so that it stays when the request fails)."""
    principal = g.get("principal")
    with _best_effort(f"the audit line {action}") as cur:
        users.audit(cur, actor if actor is not None else (principal.name if principal else ""),
                    via or (principal.via if principal else "anonymous"), action, status=status,
                    address=request.remote_addr, path=request.path, method=request.method, **detail)


@contextmanager
def _best_effort(what):
    """A cursor for an audit write that must never fail the request: with the database down or read-only
    (a replica) the request goes on, and the log says what was not written."""
    try:
        with get_db().cursor() as cur:
            yield cur
    except (GridMapError, psycopg2.Error) as exc:
        log.warning("could not write %s: %s", what, exc)


def _audit_write(response):
    """After every write by a principal (but the report intake): one line of the audit log."""
    principal = g.get("principal")
    if (principal is not None and request.method not in SAFE_METHODS
            and request.endpoint not in UNAUDITED_WRITES):
        _audit_now(f"{request.method} {request.url_rule.rule if request.url_rule else request.path}",
                   status=response.status_code, args=dict(request.view_args or {}))
    return response


@bp.errorhandler(CSRFError)
def _csrf_error(exc):
    return jsonify({"error": "CSRFError", "message": exc.description}), 400


# --- pages and endpoints ---------------------------------------------------------------------------------

@bp.route("/login", methods=["GET", "POST"])
def login():
    """The sign-in form; on success, back to ``next`` (a path of this site only)."""
    target = _safe_next(request.values.get("next"))
    error = None
    if request.method == "POST":
        name, password = request.form.get("name", "").strip(), request.form.get("password", "")
        with get_db().cursor() as cur:
            principal = users.authenticate(cur, name, password)
            if principal is None:
                users.audit(cur, name[:64], "anonymous", "login_failed", address=request.remote_addr)
                error = _("Wrong user name or password.")
            else:
                token = users.start_session(cur, principal.name, request.remote_addr)
                users.audit(cur, principal.name, "session", "login", address=request.remote_addr)
        if error is None:
            session.clear()  # a fresh session: nothing carried over from before signing in
            session.permanent = True
            login_user(SessionUser(token, principal))
            return redirect(target)
    status = 401 if error else 200
    return render_template("login.html", error=error, next=target), status


@bp.post("/logout")
def logout():
    if current_user.is_authenticated:
        with get_db().cursor() as cur:
            users.end_session(cur, current_user.token)
            users.audit(cur, g.principal.name, "session", "logout", address=request.remote_addr)
    logout_user()
    session.clear()
    if _wants_json() and request.accept_mimetypes.best == "application/json":
        return jsonify({"signed_out": True})
    return redirect(url_for("auth.login"))


@bp.get("/api/v1/me")
def me():
    """Who is asking: name, role, scope, department and what the role may do."""
    p = g.principal
    return jsonify({"name": p.name, "display_name": p.display_name, "role": p.role, "via": p.via,
                    "scope": p.scope.code or access.CITY, "department": p.scope.department,
                    "permissions": sorted(perm for perm in access.PERMISSIONS if p.can(perm))})


@bp.get("/api/v1/audit")
def audit():
    """The newest lines of the audit log (``actor``, ``limit`` ≤ 1000), newest first: admins only."""
    with get_db().cursor() as cur:
        rows = users.audit_lines(cur, actor=request.args.get("actor") or None,
                                 limit=int_arg("limit", 1, 1000) or 100)
    return jsonify([{**r, "at": r["at"].isoformat()} for r in rows])


def _safe_next(target):
    """Only a path on this site: ``//evil.example`` or ``https://…`` would send the user elsewhere."""
    if not target:
        return url_for("pages.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return url_for("pages.index")
    return target
