"""API keys for field devices, Open311 clients and other systems: created once, shown once, kept as a hash.

Keys are 32 random bytes, so a plain SHA-256 is enough to keep them (no salt or slow hash is needed
for secrets that cannot be guessed); a revoked key stops working at once. Each key has a role and a
scope (:mod:`gis.access`), and may have a rate limit in requests per minute.
"""
import hashlib
import re
import secrets

from gis.access import Principal, Scope, check_role
from gis.errors import BadInput, Conflict, NotFound

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
DEFAULT_PER_MINUTE = 600


def _digest(key):
    return hashlib.sha256(key.encode()).hexdigest()


def create(cur, name, *, created_by, role="device", scope=Scope(), per_minute=DEFAULT_PER_MINUTE):
    """Create a key called ``name``; return the key itself, which is not stored anywhere.

    ``per_minute`` None: no rate limit (for trusted systems)."""
    if not _NAME.fullmatch(name or ""):
        raise BadInput("a key name is 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    check_role(role, for_key=True)
    if (role == "handler") != (scope.department is not None):
        raise BadInput("a handler's key needs a department, and only handlers' keys have one")
    if per_minute is not None and not (isinstance(per_minute, int) and per_minute > 0):
        raise BadInput("a rate limit is a whole number of requests per minute, at least 1")
    cur.execute("select 1 from api_key where name = %s", (name,))
    if cur.fetchone():
        raise Conflict(f"an API key called {name!r} exists already")
    key = "gm_" + secrets.token_urlsafe(32)
    cur.execute("""insert into api_key (name, key_sha256, created_by, role, scope_code, department, per_minute)
                   values (%s, %s, %s, %s, %s, %s, %s)""",
                (name, _digest(key), created_by, role, scope.code, scope.department, per_minute))
    return key


def revoke(cur, name):
    cur.execute("update api_key set revoked_at = now() where name = %s and revoked_at is null returning id", (name,))
    if cur.fetchone() is None:
        raise NotFound(f"no API key {name!r} in use")


def list_keys(cur):
    cur.execute("""select name, role, coalesce(scope_code, 'city') as scope, department, per_minute,
                          created_at, created_by, last_used_at, revoked_at
                     from api_key order by name""")
    return cur.fetchall()


def principal(cur, key):
    """``(Principal, per_minute)`` of the key's holder, or None if the key is unknown or revoked."""
    if not key:
        return None
    cur.execute("""select name, role, scope_code, department, per_minute from api_key
                    where key_sha256 = %s and revoked_at is null""", (_digest(key),))
    row = cur.fetchone()
    if row is None:
        return None
    return Principal(row["name"], row["role"], Scope(row["scope_code"], row["department"]), "key"), row["per_minute"]


def holder(cur, key):
    """The name of the key's holder, or None if the key is unknown or revoked."""
    found = principal(cur, key)
    return found[0].name if found else None


def mark_used(cur, name):
    cur.execute("update api_key set last_used_at = now() where name = %s", (name,))
