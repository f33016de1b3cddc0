"""Settings, read from the environment in one place.

=======================  ==========================================================  ================
variable                 meaning                                                     default
=======================  ==========================================================  ================
DATABASE_URL             PostgreSQL+PostGIS to use                                   the private cluster
GRIDMAP_STATE_DIR        where the private cluster, caches and the demo build live   ``<checkout>/.gridmap``
GRIDMAP_PG_PORT          port of the private cluster's socket                        54329
GRIDMAP_DB_NAME          database name in the private cluster                        gridmap
GRIDMAP_NODE_MODULES     npm packages whose files the web app serves                 ``<checkout>/node_modules``
GRIDMAP_USER             who is recorded as acting, for the CLI                      the login name
GRIDMAP_SNAP_M           a report outside every cell snaps to one this near (m)      30
GRIDMAP_DUPLICATE_M      same-subclass reports this near an open one are linked (m)  50
GRIDMAP_DUPLICATE_H      ... and reported within this many hours of it               24
GRIDMAP_WORKER_ROUTER    web workers route reports with their own index (0: in SQL)  1
GRIDMAP_ESCALATE_H       a case overdue by more hours than this is escalated (tick)  8
GRIDMAP_MAX_EXTENSION_H  extensions reach at most this far past a deadline (h)       40
GRIDMAP_BASEMAP          the live map's base map (see gis/basemaps.py)               none
GRIDMAP_BASEMAP_ATTR...  ... its credit line (GRIDMAP_BASEMAP_ATTRIBUTION)           ''
GRIDMAP_BASEMAP_SUBD...  ... the values of ``{s}`` (GRIDMAP_BASEMAP_SUBDOMAINS)      abc
GRIDMAP_SECRET_KEY       signs the session cookies (keep it secret; same in every    ``<state>/secret_key``
                         worker)                                                     (``make setup``)
GRIDMAP_SECURE_COOKIES   send cookies over HTTPS only (1 behind TLS)                 0
=======================  ==========================================================  ================
"""
import getpass
import os
from dataclasses import dataclass, field
from pathlib import Path

from gis import basemaps

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    database_url: str
    state_dir: Path
    node_modules: Path
    actor: str
    snap_m: float = 30.0
    duplicate_m: float = 50.0
    duplicate_hours: float = 24.0
    worker_router: bool = True
    escalate_after_h: float = 8.0   # hours of each case's time basis (working hours for most)
    max_extension_h: float = 40.0
    basemap: dict = field(default_factory=lambda: basemaps.parse("none"))
    secret_key: str = ""
    secure_cookies: bool = False

    @classmethod
    def from_env(cls, env=None):
        env = os.environ if env is None else env
        state_dir = Path(env.get("GRIDMAP_STATE_DIR") or PROJECT_ROOT / ".gridmap")
        port = env.get("GRIDMAP_PG_PORT", "54329")
        dbname = env.get("GRIDMAP_DB_NAME", "gridmap")
        private_cluster = f"postgresql://gridmap@/{dbname}?host={state_dir / 'run'}&port={port}"
        return cls(
            database_url=env.get("DATABASE_URL") or private_cluster,
            state_dir=state_dir,
            node_modules=Path(env.get("GRIDMAP_NODE_MODULES") or PROJECT_ROOT / "node_modules"),
            actor=env.get("GRIDMAP_USER") or _login_name(),
            snap_m=_non_negative(env, "GRIDMAP_SNAP_M", 30.0),
            duplicate_m=_non_negative(env, "GRIDMAP_DUPLICATE_M", 50.0),
            duplicate_hours=_non_negative(env, "GRIDMAP_DUPLICATE_H", 24.0),
            worker_router=_flag(env, "GRIDMAP_WORKER_ROUTER", True),
            escalate_after_h=_non_negative(env, "GRIDMAP_ESCALATE_H", 8.0),
            max_extension_h=_non_negative(env, "GRIDMAP_MAX_EXTENSION_H", 40.0),
            basemap=basemaps.parse(env.get("GRIDMAP_BASEMAP"), env.get("GRIDMAP_BASEMAP_ATTRIBUTION", ""),
                                   env.get("GRIDMAP_BASEMAP_SUBDOMAINS") or "abc"),
            secret_key=env.get("GRIDMAP_SECRET_KEY") or _read_secret(state_dir / "secret_key"),
            secure_cookies=_flag(env, "GRIDMAP_SECURE_COOKIES", False),
        )


def _read_secret(path):
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


def ensure_secret_key(state_dir):
    """Write ``<state>/secret_key`` (readable by its owner only) unless it exists; `make setup` calls this."""
    import secrets
    path = Path(state_dir) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
    return path


def _non_negative(env, name, default):
    text = env.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value < float("inf"):
        raise ValueError(f"{name} must be a number ≥ 0; got {text!r}")
    return value


def _flag(env, name, default):
    text = env.get(name, "").strip().lower()
    if not text:
        return default
    if text not in ("0", "1", "true", "false", "yes", "no", "on", "off"):
        raise ValueError(f"{name} must be 1 or 0; got {text!r}")
    return text in ("1", "true", "yes", "on")


def _login_name():
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. in a container with an arbitrary uid
        return "unknown"
