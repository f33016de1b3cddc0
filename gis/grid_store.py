"""The grid store: versions, cells and staff in PostGIS.

Every function takes a :class:`gis.db.Database` (or, for the steps of an import, an open cursor, so
that a whole import is one transaction) and does its spatial work in SQL.
"""
import csv
import datetime as dt
import json
import re

from psycopg2.extras import execute_values

from gis.errors import BadInput, Conflict, NotFound
from gis.incidents import CHINA_TIME

LEVELS = (0, 1, 2, 3)
CODE_LENGTH = {0: 6, 1: 9, 2: 12, 3: 15}
LEVEL_NAMES = {0: "district", 1: "street", 2: "community", 3: "unit grid"}
VERSION_COLUMNS = "id, status, note, source, created_by, created_at, activated_by, activated_at, retired_at"


def check_level(level):
    if level not in LEVELS:
        raise BadInput(f"level must be one of {', '.join(map(str, LEVELS))}; got {level!r}")
    return level


# --- versions -------------------------------------------------------------------------------------

def create_draft(cur, *, created_by, note="", source=None):
    """Insert a new draft version and return its row."""
    cur.execute(
        f"insert into grid_version (created_by, note, source) values (%s, %s, %s) returning {VERSION_COLUMNS}",
        (created_by, note, source),
    )
    return cur.fetchone()


def get_version(cur, version_id):
    cur.execute(f"select {VERSION_COLUMNS} from grid_version where id = %s", (version_id,))
    row = cur.fetchone()
    if row is None:
        raise NotFound(f"grid version {version_id} does not exist")
    return row


def active_version(cur):
    """The active version's row, or None when no version has been activated yet."""
    cur.execute(f"select {VERSION_COLUMNS} from grid_version where status = 'active'")
    return cur.fetchone()


def resolve_version(cur, version_id=None):
    """The given version, or the active one when none is given."""
    if version_id is not None:
        return get_version(cur, version_id)
    row = active_version(cur)
    if row is None:
        raise NotFound("no grid version is active yet; name one with --version or activate one")
    return row




def version_as_of(cur, when):
    """The version that was active at ``when``: activated at or before it, and not retired by then.

    Parameters
    ----------
    when : datetime.datetime or datetime.date
        Without a time zone (or a date: its midnight) it is China time.

    Raises
    ------
    NotFound
        When no version was active then (before the first activation), saying when the first one was.
    """
    if not isinstance(when, dt.datetime):
        when = dt.datetime.combine(when, dt.time())
    when = when if when.tzinfo else when.replace(tzinfo=CHINA_TIME)
    # activation retires the previous version at the very same now(), so the periods meet without overlap;
    # the order only decides between periods someone made overlap by hand
    cur.execute(
        f"""select {VERSION_COLUMNS} from grid_version
             where activated_at <= %(when)s and %(when)s < coalesce(retired_at, 'infinity')
             order by activated_at desc, id desc limit 1""",
        {"when": when},
    )
    row = cur.fetchone()
    if row is None:
        cur.execute("select min(activated_at) as first from grid_version")
        first = cur.fetchone()["first"]
        message = f"no grid version was active at {when.astimezone(CHINA_TIME).isoformat(' ', 'seconds')}"
        if first is None:
            message += "; none has been activated yet"
        elif when < first:
            message += f"; the first was activated at {first.astimezone(CHINA_TIME).isoformat(' ', 'seconds')}"
        raise NotFound(message)
    return row


def list_versions(cur):
    """All versions, newest first, each with its cell counts per level."""
    cur.execute(
        f"""select {VERSION_COLUMNS},
                   coalesce((select jsonb_object_agg(level, n) from (
                       select level, count(*) as n from grid_cell c where c.version_id = v.id group by level) s),
                       '{{}}'::jsonb) as counts
              from grid_version v order by id desc"""
    )
    return cur.fetchall()


def cell_counts(cur, version_id):
    """``{level: count}`` of one version."""
    cur.execute("select level, count(*) as n from grid_cell where version_id = %s group by level", (version_id,))
    return {row["level"]: row["n"] for row in cur.fetchall()}


def extent(cur, version_id, code=None):
    """``[min_lon, min_lat, max_lon, max_lat]`` of a version's cells (or of its cell ``code``), or None when
    there are none."""
    cur.execute("select ST_XMin(e) as x0, ST_YMin(e) as y0, ST_XMax(e) as x1, ST_YMax(e) as y1"
                "  from (select ST_Extent(geom) as e from grid_cell where version_id = %s"
                "           and (case when %s::text is null then level = 0 else code = %s end)) s",
                (version_id, code, code))
    row = cur.fetchone()
    return None if row["x0"] is None else [row["x0"], row["y0"], row["x1"], row["y1"]]


def activate(cur, version_id, *, actor):
    """Make a draft the active version and retire the one it replaces, atomically.

    Returns ``(activated_row, retired_row_or_None)``.
    """
    cur.execute("lock table grid_version in share row exclusive mode")  # one activation at a time
    version = get_version(cur, version_id)
    if version["status"] != "draft":
        raise Conflict(f"grid version {version_id} is {version['status']}; only a draft can be activated")
    counts = cell_counts(cur, version_id)
    if not counts:
        raise Conflict(f"grid version {version_id} has no cells; import some before activating it")
    cur.execute(
        f"update grid_version set status = 'retired', retired_at = now() where status = 'active' "
        f"returning {VERSION_COLUMNS}"
    )
    retired = cur.fetchone()
    cur.execute(
        f"update grid_version set status = 'active', activated_at = now(), activated_by = %s where id = %s "
        f"returning {VERSION_COLUMNS}",
        (actor, version_id),
    )
    return cur.fetchone(), retired


def edits_by(cur, actor, operation, reason=""):
    """Who, what and why, for the database's edit log (``grid_edit``) of the cells this transaction changes."""
    cur.execute("select set_config('gridmap.actor', %s, true), set_config('gridmap.reason', %s, true),"
                "       set_config('gridmap.operation', %s, true)", (actor, reason or "", operation))


def require_draft(cur, version_id):
    version = get_version(cur, version_id)
    if version["status"] != "draft":
        raise Conflict(f"grid version {version_id} is {version['status']}; only drafts can be changed")
    return version


# --- cells ----------------------------------------------------------------------------------------

def grids_geojson(cur, *, version_id, level=None, bbox=None, limit=None, cell_ids=None):
    """The cells of a version as a GeoJSON FeatureCollection (a dict), built by PostGIS.

    Parameters
    ----------
    level : int, optional
        Only this level.
    bbox : tuple of 4 floats, optional
        ``(min_lon, min_lat, max_lon, max_lat)``; cells intersecting it.
    limit : int, optional
        At most this many features; the answer says when more matched.
    cell_ids : list of int, optional
        Only these cells: the asker's scope (:meth:`gis.access.Scope.cell_ids`); None for all.
    """
    where = ["c.version_id = %(version)s"]
    params = {"version": version_id}
    if cell_ids is not None:
        where.append("c.id = any(%(cell_ids)s::bigint[])")
        params["cell_ids"] = cell_ids
    if level is not None:
        where.append("c.level = %(level)s")
        params["level"] = check_level(level)
    if bbox is not None:
        where.append("c.geom && ST_MakeEnvelope(%(x0)s, %(y0)s, %(x1)s, %(y1)s, 4326)")
        where.append("ST_Intersects(c.geom, ST_MakeEnvelope(%(x0)s, %(y0)s, %(x1)s, %(y1)s, 4326))")
        params.update(zip(("x0", "y0", "x1", "y1"), bbox))
    params["limit"] = None if limit is None else limit + 1
    cur.execute(
        f"""select c.code, c.name, c.level, c.kind, c.population, round(c.area_m2::numeric, 1) as area_m2,
                   p.code as parent_code, ST_AsGeoJSON(c.geom, 7)::json as geometry,
                   coalesce((select json_agg(json_build_object('post', cs.post, 'name', s.name, 'phone', s.phone)
                                             order by cs.post, s.name)
                               from cell_staff cs join staff s on s.id = cs.staff_id where cs.cell_id = c.id),
                            '[]'::json) as staff
              from grid_cell c left join grid_cell p on p.id = c.parent_id
             where {' and '.join(where)}
             order by c.level, c.code
             limit %(limit)s""",
        params,
    )
    rows = cur.fetchall()
    truncated = limit is not None and len(rows) > limit
    rows = rows[:limit] if truncated else rows
    features = [
        {
            "type": "Feature",
            "id": row["code"],
            "geometry": row.pop("geometry"),
            "properties": {**row, "area_m2": float(row["area_m2"])},
        }
        for row in rows
    ]
    return {"type": "FeatureCollection", "version": version_id, "truncated": truncated, "features": features}


def insert_cells(cur, version_id, level, rows):
    """Insert cells of one level; ``rows`` are dicts with code, name, parent_id, kind, population,
    attributes (dict) and wkb (bytes, EPSG:4326 MultiPolygon). Returns the number inserted."""
    execute_values(
        cur,
        "insert into grid_cell (version_id, level, code, name, parent_id, kind, population, attributes, geom) "
        "values %s",
        [
            (version_id, level, r["code"], r["name"], r["parent_id"], r["kind"], r["population"],
             json.dumps(r["attributes"], ensure_ascii=False), r["wkb"])
            for r in rows
        ],
        template="(%s, %s, %s, %s, %s, %s, %s, %s, ST_SetSRID(ST_GeomFromWKB(%s), 4326))",
        page_size=1000,
    )
    return len(rows)


def cell_ids_by_code(cur, version_id, level, codes):
    """``{code: id}`` for the given codes of one level of a version."""
    cur.execute(
        "select code, id from grid_cell where version_id = %s and level = %s and code = any(%s)",
        (version_id, level, list(codes)),
    )
    return {row["code"]: row["id"] for row in cur.fetchall()}


def existing_codes(cur, version_id, codes):
    cur.execute("select code from grid_cell where version_id = %s and code = any(%s)", (version_id, list(codes)))
    return [row["code"] for row in cur.fetchall()]


def health(cur):
    """What /health reports about the store."""
    cur.execute("select postgis_lib_version() as postgis, current_setting('server_version') as postgres")
    info = dict(cur.fetchone())
    version = active_version(cur)
    info["active_version"] = None if version is None else version["id"]
    info["cells"] = {} if version is None else {str(k): v for k, v in sorted(cell_counts(cur, version["id"]).items())}
    cur.execute("select count(*) as n from grid_version")
    info["versions"] = cur.fetchone()["n"]
    return info


# --- staff ----------------------------------------------------------------------------------------

def post_codes(cur):
    """``{code or Chinese name: (code, level)}`` of the known posts."""
    cur.execute("select code, name_zh, level from post")
    lookup = {}
    for row in cur.fetchall():
        lookup[row["code"]] = lookup[row["name_zh"]] = (row["code"], row["level"])
    return lookup


PHONE = re.compile(r"^\+?[0-9][0-9 -]{4,19}$")


def read_staff_csv(path):
    """Records of a staff CSV with columns cell_code, post, name, phone."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = {"cell_code", "post", "name", "phone"} - set(reader.fieldnames or [])
        if missing:
            raise BadInput(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        return list(reader)


def assign_staff(cur, version_id, records):
    """Assign people to posts on cells of a draft version.

    ``records`` are dicts with cell_code, post (a post code or its Chinese name), name and phone.
    Every record is checked before anything is written; returns the number of assignments made.
    """
    require_draft(cur, version_id)
    posts = post_codes(cur)
    cur.execute("select code, id, level from grid_cell where version_id = %s", (version_id,))
    cells = {row["code"]: (row["id"], row["level"]) for row in cur.fetchall()}
    errors, rows = [], []
    for n, rec in enumerate(records, start=2):  # line numbers of a CSV with a header
        cell = cells.get(str(rec.get("cell_code", "")).strip())
        post = posts.get(str(rec.get("post", "")).strip())
        name, phone = str(rec.get("name") or "").strip(), str(rec.get("phone") or "").strip()
        if cell is None:
            errors.append(f"line {n}: no cell {rec.get('cell_code')!r} in version {version_id}")
        elif post is None:
            errors.append(f"line {n}: unknown post {rec.get('post')!r}")
        elif post[1] != cell[1]:
            errors.append(f"line {n}: post {post[0]} belongs to level {post[1]}, cell {rec['cell_code']} is level {cell[1]}")
        elif not name or not PHONE.match(phone):
            errors.append(f"line {n}: a name and a phone number (digits, spaces, dashes) are required")
        else:
            rows.append((cell[0], post[0], name, phone))
    if errors:
        raise BadInput(f"{len(errors)} staff record(s) cannot be used", details=errors[:50])
    people = sorted({(name, phone) for _, _, name, phone in rows})
    execute_values(cur, "insert into staff (name, phone) values %s on conflict (name, phone) do nothing", people,
                   page_size=2000)
    cur.execute("select id, name, phone from staff where (name, phone) in (select * from unnest(%s::text[], %s::text[]))",
                ([p[0] for p in people], [p[1] for p in people]))
    staff_ids = {(row["name"], row["phone"]): row["id"] for row in cur.fetchall()}
    execute_values(
        cur,
        "insert into cell_staff (cell_id, staff_id, post) values %s on conflict do nothing",
        [(cell_id, staff_ids[(name, phone)], post) for cell_id, post, name, phone in rows],
        page_size=2000,
    )
    return len(rows)
