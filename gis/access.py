"""Who may see and do what: the table of roles, and the scope every query of scoped data obeys.

Each user and each API key has one role and one scope. The role says which kinds of thing it may do
(:data:`ROLES`, the one table of permissions; the README shows it). The scope says where: the whole city,
or one node of the grid tree — a district, street, community or unit grid, named by its code, which stays
the same across grid versions — and for a department's handlers also a department, whose event subclasses
are all they see (条块结合: the 块 is the territory, the 条 the department).

Every query of scoped data takes a :class:`Scope` and asks it for its SQL, so that lists, maps, tiles, the
live feed, exports, statistics and case actions obey one rule:

* an incident is in scope when the cell it was routed to at the scope's level carries the scope's code (in
  whichever version it was routed against) and, for a department, when its subclass is the department's;
* a cell of a version is in scope when it is the scope's cell or lies under it in that version's tree (by
  ``parent_id``, not by code: a development zone's street units lie in an ordinary district).

Things outside the scope are answered as if they did not exist (404), so that ids cannot be probed; a
permission the role lacks is a 403 that names it.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

from psycopg2 import sql
from psycopg2.extensions import AsIs, register_adapter

from gis.errors import BadInput, Forbidden, NotFound

# --- permissions -----------------------------------------------------------------------------------------

VIEW = "view"          # maps, grids, tiles, cell cards, the live feed, versions
READ = "read"          # incidents and cases, worklists
REPORT = "report"      # submit reports (inside the scope)
ACT = "act"            # act on cases, as a unit inside the scope (or as the department)
STATS = "stats"        # evaluation and rankings
PLAN = "plan"          # drafts: edit cells inside the scope, check, diff, impact preview
ACTIVATE = "activate"  # make a draft the active version (the whole city: a city scope only)
AUDIT = "audit"        # read the audit log

PERMISSIONS = (VIEW, READ, REPORT, ACT, STATS, PLAN, ACTIVATE, AUDIT)
CITY_ONLY = frozenset({ACTIVATE, AUDIT})

# The one table of who may do what. Users have the first six roles; API keys may have any, and field
# devices' keys are `device` (report only), Open311 clients' `open311` (report and read back requests).
ROLES = {
    "admin":       frozenset(PERMISSIONS),
    "planner":     frozenset({VIEW, READ, STATS, PLAN, ACTIVATE}),
    "dispatcher":  frozenset({VIEW, READ, REPORT, ACT, STATS}),
    "handler":     frozenset({VIEW, READ, ACT, STATS}),
    "grid_worker": frozenset({VIEW, READ, REPORT, ACT}),
    "viewer":      frozenset({VIEW, READ, STATS}),
    "device":      frozenset({REPORT}),
    "open311":     frozenset({REPORT, READ}),
}
USER_ROLES = ("admin", "planner", "dispatcher", "handler", "grid_worker", "viewer")
ROLE_NAMES_ZH = {"admin": "系统管理员", "planner": "网格规划员", "dispatcher": "指挥中心调度员",
                 "handler": "职能部门处置人员", "grid_worker": "网格员", "viewer": "查看人员",
                 "device": "采集终端", "open311": "Open311 客户端"}

LEVEL_COLUMNS = ("district_id", "street_id", "community_id", "grid_id")
CODE_LEVELS = {6: 0, 9: 1, 12: 2, 15: 3}
CITY = "city"  # how the CLI and the README name the whole city's scope


@dataclass(frozen=True)
class Scope:
    """Where a user or key may see and act: a grid code (None: the whole city) and, for handlers, a
    department code."""

    code: str | None = None
    department: str | None = None

    def __post_init__(self):
        if self.code is not None and not (self.code.isascii() and self.code.isdigit()
                                          and len(self.code) in CODE_LEVELS):
            raise BadInput(f"a scope is '{CITY}' or a grid code of 6, 9, 12 or 15 digits; got {self.code!r}")
        if self.department is not None and not (self.department.isascii() and self.department.isalnum()
                                                and self.department[:1].isalpha() and self.department.isupper()
                                                and len(self.department) <= 16):
            raise BadInput(f"a department is a code of capital letters and digits, e.g. CGJ; got {self.department!r}")

    @classmethod
    def parse(cls, text, department=None):
        """``'city'`` (or empty) or a grid code → a Scope."""
        text = (text or "").strip()
        return cls(None if text in ("", CITY) else text, department or None)

    @property
    def level(self):
        """The scope's grid level (0 district … 3 unit grid); None for the whole city."""
        return None if self.code is None else CODE_LEVELS[len(self.code)]

    @property
    def is_city(self):
        return self.code is None

    @property
    def unrestricted(self):
        """The whole city and every department: nothing to filter."""
        return self.code is None and self.department is None

    def __str__(self):
        text = self.code or CITY
        return f"{text} ({self.department})" if self.department else text

    # --- incidents --------------------------------------------------------------------------------------

    def incident_filter(self, cur, alias="i"):
        """A SQL condition on incident ``alias`` that holds for the incidents in scope (``true`` for the
        whole city), as a :class:`psycopg2.sql.Composable` with its values quoted in.

        The scope's cells (one per version that has its code) and the department's subclasses are looked up
        first and written in as constant lists: the planner counts those right, where a subquery of them was
        guessed at a row or two (and a district's live feed was joined by nested loops: 7.2 s)."""
        parts = []
        if self.code is not None:
            cur.execute("select id from grid_cell where code = %s and level = %s", (self.code, self.level))
            ids = [_first(r) for r in cur.fetchall()]
            parts.append(sql.SQL("{col} = any({ids}::bigint[])").format(
                col=sql.Identifier(alias, LEVEL_COLUMNS[self.level]), ids=sql.Literal(ids)))
        if self.department is not None:
            cur.execute("select code from event_subclass where department_code = %s", (self.department,))
            codes = [_first(r) for r in cur.fetchall()]
            parts.append(sql.SQL("{col} = any({codes}::text[])").format(
                col=sql.Identifier(alias, "category"), codes=sql.Literal(codes)))
        return sql.SQL(" and ").join(parts) if parts else sql.SQL("true")

    def incident_filter_text(self, cur, alias="i"):
        """:meth:`incident_filter` as text to put into a query that also has %-parameters."""
        return self.incident_filter(cur, alias).as_string(cur).replace("%", "%%")

    # --- cells ------------------------------------------------------------------------------------------

    def cell_ids(self, cur, version_id):
        """The ids of the version's cells in scope, or None for the whole city (no restriction).

        An empty list when the scope's code is not in that version (its territory is then nowhere)."""
        return None if self.code is None else subtree_ids(cur, version_id, self.code)

    def cell_codes(self, cur, version_id):
        """The codes of the version's cells in scope, as a set; None for the whole city."""
        if self.code is None:
            return None
        cur.execute("select code from grid_cell where id = any(%s)", (self.cell_ids(cur, version_id),))
        return {_first(r) for r in cur.fetchall()}

    def require_cell(self, cur, version_id, code):
        """NotFound unless the version's cell ``code`` is in scope (also when it does not exist)."""
        if self.code is None:
            return
        cur.execute(_IN_SCOPE_SQL, {"version": version_id, "code": self.code, "cell": code})
        if not _first(cur.fetchone()):
            raise NotFound(f"grid version {version_id} has no cell with code {code!r} in your scope ({self})")

    def require_point(self, cur, lon, lat, margin_m=0.0):
        """Forbidden unless the point (WGS84) lies in the scope's cell of the active version, or within
        ``margin_m`` of it (reports just outside every cell snap to the nearest one)."""
        if self.code is None:
            return
        cur.execute("""select exists (
                           select 1 from grid_cell c join grid_version v on v.id = c.version_id
                            where v.status = 'active' and c.code = %(code)s
                              and (ST_Intersects(c.geom, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326))
                                   or ST_DWithin(c.geom::geography,
                                                 ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography,
                                                 %(margin)s))) as inside""",
                    {"code": self.code, "lon": lon, "lat": lat, "margin": margin_m})
        if not _first(cur.fetchone()):
            raise Forbidden(f"the report's location ({lon:.6f}, {lat:.6f}) lies outside your scope ({self})")

    def unit_allowed(self, cur, kind, code, version_id):
        """May someone of this scope act as unit ``kind:code`` (a case's holder)?

        A department's handlers act only as their department; the whole city acts as any unit; a scope
        inside the city acts as its own cell or a cell under it (in the active version)."""
        if self.department is not None:
            return kind == "department" and code == self.department
        if self.code is None:
            return True
        if kind in ("city", "department") or version_id is None:
            return False
        cur.execute(_IN_SCOPE_SQL, {"version": version_id, "code": self.code, "cell": code})
        return bool(_first(cur.fetchone()))

    def default_unit(self):
        """The unit a user of this scope acts as when the request names none."""
        if self.department is not None:
            return f"department:{self.department}"
        if self.code is None:
            return "city"
        return f"{('district', 'street', 'community', 'grid')[self.level]}:{self.code}"


CITY_SCOPE = Scope()

_SCOPE_CELLS_SQL = """
with recursive under as (
    select c.id from grid_cell c where c.version_id = %(version)s and c.code = %(code)s
    union all
    select k.id from grid_cell k join under u on k.parent_id = u.id
)
select id from under
"""
# is cell `cell` the scope's cell or under it? Walks up from the cell: at most three steps.
_IN_SCOPE_SQL = """
with recursive up as (
    select c.id, c.code, c.parent_id from grid_cell c where c.version_id = %(version)s and c.code = %(cell)s
    union all
    select p.id, p.code, p.parent_id from grid_cell p join up on p.id = up.parent_id
)
select exists (select 1 from up where code = %(code)s) as inside
"""

_cell_cache, _cache_lock = {}, threading.Lock()


class IdList(list):
    """Cell ids that psycopg2 sends as one array value, ``'{1,2,3}'::bigint[]``, rather than as
    ``ARRAY[1, 2, 3]``: a district's 2,598 ids as constants to parse and plan took a tile from 0.9 to 12 ms,
    as one value 1.6 ms (bench/bench_tiles.py)."""


def _one_array_value(ids):
    return AsIs("'{%s}'::bigint[]" % ",".join(str(int(i)) for i in ids))


register_adapter(IdList, _one_array_value)


def subtree_ids(cur, version_id, code):
    """The ids of cell ``code`` of a version and of every cell under it (by ``parent_id``); [] if none.

    A constant list the planner can count, where a recursive query inside a bigger one is guessed at one row
    (and a district's 3,965 unit grids were then counted by nested loops: 765 ms → 112 ms with the list)."""
    # Active and retired versions never change: their lists are kept, by database, version (with its status
    # and creation time: a database made anew reuses version ids) and code.
    cur.execute("select status, created_at from grid_version where id = %s", (version_id,))
    version = cur.fetchone()
    frozen = version is not None and _first(version) != "draft"
    key = (cur.connection.dsn, version_id, tuple(version.values()) if isinstance(version, dict) else version, code)
    if frozen:
        with _cache_lock:
            cached = _cell_cache.get(key)
        if cached is not None:
            return cached
    cur.execute(_SCOPE_CELLS_SQL, {"version": version_id, "code": code})
    ids = IdList(_first(r) for r in cur.fetchall())
    if frozen:
        with _cache_lock:
            if len(_cell_cache) > 1000:
                _cell_cache.clear()
            _cell_cache[key] = ids
    return ids


def _first(row):
    return row[0] if isinstance(row, tuple) else next(iter(row.values()))


# --- who is asking ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Principal:
    """A signed-in user or an API key's holder."""

    name: str
    role: str
    scope: Scope = CITY_SCOPE
    via: str = "session"   # session or key
    display_name: str = ""

    def __post_init__(self):
        if self.role not in ROLES:
            raise BadInput(f"role must be one of {', '.join(ROLES)}; got {self.role!r}")

    def can(self, permission):
        return permission in ROLES[self.role] and (permission not in CITY_ONLY or self.scope.unrestricted)

    def require(self, permission):
        """Forbidden (403) unless the role has ``permission`` (and, for city-wide ones, the scope is the city)."""
        if permission not in ROLES[self.role]:
            raise Forbidden(f"{self.name} ({self.role}) may not {DESCRIPTIONS[permission]}")
        if permission in CITY_ONLY and not self.scope.unrestricted:
            raise Forbidden(f"only a city-wide {self.role} may {DESCRIPTIONS[permission]}; "
                            f"{self.name}'s scope is {self.scope}")


DESCRIPTIONS = {
    VIEW: "view maps and grids", READ: "read incidents and cases", REPORT: "submit reports",
    ACT: "act on cases", STATS: "read statistics", PLAN: "edit grid drafts",
    ACTIVATE: "activate a grid version", AUDIT: "read the audit log",
}


def check_role(role, *, for_key=False):
    roles = ROLES if for_key else USER_ROLES
    if role not in roles:
        raise BadInput(f"role must be one of {', '.join(roles)}; got {role!r}")
    return role


def check_scope_exists(cur, scope):
    """BadInput unless the scope's code is a cell of the active version and its department a department."""
    if scope.code is not None:
        cur.execute("""select 1 from grid_cell c join grid_version v on v.id = c.version_id
                        where v.status = 'active' and c.code = %s""", (scope.code,))
        if cur.fetchone() is None:
            raise BadInput(f"scope {scope.code}: no such cell in the active grid version")
    if scope.department is not None:
        cur.execute("select 1 from event_subclass where department_code = %s limit 1", (scope.department,))
        if cur.fetchone() is None:
            raise BadInput(f"department {scope.department}: no event subclass is handled by it")
