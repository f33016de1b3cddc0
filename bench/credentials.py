"""Who the benchmarks are to GridMap: every endpoint but /login, /health, the API's description and the Open311
catalogue needs an API key or a signed-in session (gis/access.py, webmap/auth.py). Each benchmark makes the
keys and users it needs in its own database, as an operator does (``gridmap key create``, ``gridmap user
add``): keys without a rate limit, so that the limiter never answers in place of the endpoint measured.
"""
import secrets

from gis import api_keys, users
from gis.access import CITY_SCOPE
from gis.settings import Settings

CREATED_BY = "bench"
_secret = None


def secret_key():
    """The key that signs session cookies: the configured one (GRIDMAP_SECRET_KEY or .gridmap/secret_key),
    else one made for this process (every app and gunicorn worker of the run gets the same)."""
    global _secret
    if _secret is None:
        _secret = Settings.from_env().secret_key or secrets.token_hex(32)
    return _secret


def _name(purpose):
    # several benchmarks share one database in a run: a random suffix keeps their names apart
    return f"bench-{purpose}-{secrets.token_hex(4)}"


def api_key(db, purpose, *, role, scope=CITY_SCOPE):
    """A new API key (``gm_…``) of ``role`` and ``scope`` without a rate limit; send it as
    ``Authorization: Bearer <key>``."""
    with db.cursor() as cur:
        return api_keys.create(cur, _name(purpose), created_by=CREATED_BY, role=role, scope=scope, per_minute=None)


def auth_header(key):
    return {"Authorization": f"Bearer {key}"}


def user(db, purpose, *, role, scope=CITY_SCOPE):
    """A new user of ``role`` and ``scope``: ``(name, password)`` to sign in with at /login."""
    name, password = _name(purpose), secrets.token_urlsafe(18)
    with db.cursor() as cur:
        users.add(cur, name, role=role, scope=scope, password=password, created_by=CREATED_BY,
                  display_name=f"benchmark ({purpose})")
    return name, password
