"""Security headers on every response, among them a Content-Security-Policy under which the pages still work
offline: scripts only from the app itself (the front-end libraries are served from npm's files under
/vendor), requests only to the app, images also from the configured base map's hosts.

Styles allow 'unsafe-inline': Leaflet and its plugins style their elements through style attributes.
"""
from urllib.parse import urlsplit


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


def init_app(app):
    policy = content_security_policy(app.config["BASEMAP"])

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("Content-Security-Policy", policy)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response
