"""Security headers on every response, among them a Content-Security-Policy under which the pages still work
offline: scripts only from the app itself (the front-end libraries are served from npm's files under
/vendor), requests only to the app, images also from the configured base map's hosts.

Styles allow 'unsafe-inline': Leaflet and its plugins style their elements through style attributes.

Requests that no query could take are refused with a 400 before any view runs: a NUL character (PostgreSQL's text
cannot hold it) in the path, the query string, a header, a cookie or a form, and JSON with a NUL in a string or
nested deeper than the parser can go.
"""
from urllib.parse import urlsplit

from flask import request
from flask.json.provider import DefaultJSONProvider

from gis.errors import BadInput

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def content_security_policy(basemap):
    tile_hosts = sorted({f"{urlsplit(layer['url']).scheme}://{_host(layer)}" for layer in basemap["layers"]})
    return "; ".join([
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src " + " ".join(["'self'", "data:", "blob:", *tile_hosts]),
        "connect-src 'self'",
        "font-src 'self' data:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


def _host(layer):
    """The tile host, with a ``{s}`` subdomain as a wildcard (CSP allows ``*.`` only at the left)."""
    host = urlsplit(layer["url"]).netloc
    return "*." + host.split(".", 1)[1] if "{s}" in host.split(".", 1)[0] else host


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, but a body nested too deeply or holding a NUL is a :class:`BadInput` (which ``get_json``,
    even with ``silent=True``, passes on) rather than a RecursionError or a failing query: a 500."""

    def loads(self, s, **kwargs):
        try:
            value = super().loads(s, **kwargs)
        except RecursionError:
            raise BadInput("the JSON is nested too deeply") from None
        escaped = b"\\u0000" if isinstance(s, (bytes, bytearray)) else "\\u0000"
        if escaped in s and _holds_nul(value):  # (raw NUL is not valid JSON: only the escape can make one)
            raise BadInput("the JSON holds a NUL character (\\u0000), which no text field may contain")
        return value


def _holds_nul(value):
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def refuse_nul():
    """Before every view (and before the sign-in check, which looks keys and sessions up): no NUL anywhere."""
    parts = [request.path, *(x for pair in request.args.items(multi=True) for x in pair),
             *request.headers.values(), *request.cookies.values()]
    if request.mimetype in FORM_TYPES:
        parts += [x for pair in request.form.items(multi=True) for x in pair]
    if any("\x00" in part for part in parts):
        raise BadInput("the request holds a NUL character (0x00), which no name, code or text may contain")


def init_app(app):
    policy = content_security_policy(app.config["BASEMAP"])
    app.json = JSONProvider(app)
    app.before_request(refuse_nul)

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("Content-Security-Policy", policy)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response
