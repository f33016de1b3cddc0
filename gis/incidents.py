"""Field reports: checked, stored once, routed to their cells and people, listed.

One function per use: :func:`parse_report` turns what a client sent into a :class:`Report` or a
:class:`BadInput` naming the field; :func:`submit` stores and routes it in one transaction (a retry with
the same client_request_id gets the first incident back); :func:`get` and :func:`search` read them.
The web layer (native JSON and Open311) and the batch import all go through here.
"""
import datetime as dt
import hashlib
import json
import math
from dataclasses import asdict, dataclass, field

from gis import crs as crs_mod
from gis.errors import BadInput, Conflict, NotFound

MAX_DESCRIPTION = 4000
MAX_MEDIA = 10
SOURCES = ("field_app", "open311", "hotline", "import")
OPEN_STATES = ("reported", "opened", "dispatched", "in_progress", "handled")
CLOSED_STATES = ("closed", "voided")
LEVEL_NAMES = ("district", "street", "community", "grid")
ROUTING_STATUSES = ("routed", "shared_edge", "ambiguous", "snapped", "unrouted")  # the SQL enum routing_status
REPORTER_FIELDS = ("name", "phone", "email", "device_id", "account_id")
CHINA_TIME = dt.timezone(dt.timedelta(hours=8))


@dataclass(frozen=True)
class Report:
    """A checked report, ready to store. ``lon``/``lat`` are WGS84; ``x``/``y`` as given, in ``crs``."""

    x: float
    y: float
    crs: str
    lon: float
    lat: float
    category: str
    description: str = ""
    address: str = ""
    accuracy_m: float | None = None
    source: str = "field_app"
    reporter: dict = field(default_factory=dict)
    client_request_id: str | None = None
    reported_at: dt.datetime | None = None
    media: tuple = ()

    def content_sha256(self):
        """What a retry must repeat: everything the client chose (the server's defaults left out)."""
        content = asdict(self)
        content["reported_at"] = self.reported_at.isoformat() if self.reported_at else None
        return hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


@dataclass(frozen=True)
class Routing:
    """How reports are routed and linked: snapping distance, and what counts as a possible duplicate."""

    snap_m: float = 30.0
    duplicate_m: float = 50.0
    duplicate_hours: float = 24.0

    @classmethod
    def from_settings(cls, settings):
        return cls(settings.snap_m, settings.duplicate_m, settings.duplicate_hours)


# --- input -------------------------------------------------------------------------------------

def parse_report(data, *, source="field_app", now=None):
    """Check a report's fields (a dict of JSON values or of form strings) and convert its location.

    Raises :class:`BadInput` with a message naming the first field that is wrong.
    """
    if not isinstance(data, dict):
        raise BadInput("a report is an object with lon, lat and category")
    unknown = set(data) - {"lon", "lat", "crs", "accuracy_m", "category", "description", "address",
                           "client_request_id", "reporter", "reported_at", "media"}
    if unknown:
        raise BadInput(f"unknown field(s): {', '.join(sorted(unknown))}")
    if source not in SOURCES:
        raise BadInput(f"source must be one of {', '.join(SOURCES)}")
    crs = crs_mod.parse_crs(_text(data, "crs", 64) or "EPSG:4326")
    x, y = _number(data, "lon", required=True), _number(data, "lat", required=True)
    if crs.is_geographic and not (-180 <= x <= 180 and -90 <= y <= 90):
        raise BadInput(f"lon/lat ({x}, {y}) are out of range: lon must be within ±180 and lat within ±90")
    lon, lat = crs_mod.to_wgs84(x, y, crs)
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise BadInput(f"({x}, {y}) in {crs.name} is not a place on Earth")
    accuracy = _number(data, "accuracy_m")
    if accuracy is not None and not 0 <= accuracy <= 100_000:
        raise BadInput("accuracy_m must be between 0 and 100000 metres")
    category = _text(data, "category", 16)
    if not category:
        raise BadInput("category is required: a subclass code of the event classification (see /open311/v2/services.json)")
    return Report(
        x=x, y=y, crs=crs.name, lon=lon, lat=lat, category=category,
        description=_text(data, "description", MAX_DESCRIPTION) or "",
        address=_text(data, "address", 500) or "",
        accuracy_m=accuracy, source=source, reporter=_reporter(data.get("reporter")),
        client_request_id=_text(data, "client_request_id", 200) or None,
        reported_at=_reported_at(data.get("reported_at"), now or dt.datetime.now(dt.timezone.utc)),
        media=_media(data.get("media")),
    )


def _number(data, name, *, required=False):
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise BadInput(f"{name} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise BadInput(f"{name} must be a number")
    try:
        number = float(value)
    except ValueError:
        raise BadInput(f"{name} must be a number; got {value!r}") from None
    if not math.isfinite(number):
        raise BadInput(f"{name} must be a finite number; got {value!r}")
    return number


def _text(data, name, limit):
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadInput(f"{name} must be a string")
    if len(value) > limit:
        raise BadInput(f"{name} is {len(value)} characters long; at most {limit} are allowed")
    if "\x00" in value:
        raise BadInput(f"{name} contains a NUL character")
    return value.strip()


def _reporter(value):
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict):
        raise BadInput(f"reporter must be an object with any of {', '.join(REPORTER_FIELDS)}")
    unknown = set(value) - set(REPORTER_FIELDS)
    if unknown:
        raise BadInput(f"reporter has unknown field(s) {', '.join(sorted(unknown))}; "
                       f"allowed: {', '.join(REPORTER_FIELDS)}")
    return {k: v for k in REPORTER_FIELDS if (v := _text(value, k, 200))}


def _reported_at(value, now):
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadInput("reported_at must be an ISO 8601 date-time, e.g. 2026-11-23T09:30:00+08:00")
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(f"reported_at {value!r} is not an ISO 8601 date-time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=CHINA_TIME)  # a phone's local clock, in China
    if when > now + dt.timedelta(minutes=10):
        raise BadInput(f"reported_at {value!r} is in the future")
    if when.year < 2000:
        raise BadInput(f"reported_at {value!r} is implausibly old")
    return when


def _media(value):
    if value is None or value == "":
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or len(items) > MAX_MEDIA:
        raise BadInput(f"media must be a list of at most {MAX_MEDIA} URLs")
    for url in items:
        if not (isinstance(url, str) and url.startswith(("http://", "https://")) and len(url) <= 2000):
            raise BadInput("each media item must be an http(s) URL of at most 2000 characters")
    return tuple(items)


# --- storing and routing -----------------------------------------------------------------------

def submit(db, report, routing=Routing()):
    """Store, route and link one report in one transaction.

    Returns ``(incident, created)``: the incident as :func:`get` gives it, and False when the
    client_request_id was seen before with the same content (the first incident comes back).
    A reused client_request_id with different content is a :class:`Conflict`.
    """
    digest = report.content_sha256()
    with db.cursor() as cur:
        if not _category_in_service(cur, report.category):
            raise BadInput(f"unknown category {report.category!r}: use a subclass code of the event "
                           "classification (GET /open311/v2/services.json lists them)")
        cur.execute(
            "insert into incident (category, description, address, given_x, given_y, given_crs, geom, accuracy_m,"
            " source, reporter, client_request_id, request_sha256, reported_at, media_urls)"
            " values (%s, %s, %s, %s, %s, %s, ST_SetSRID(ST_MakePoint(%s, %s), 4326), %s, %s, %s, %s, %s,"
            "         coalesce(%s, now()), %s)"
            " on conflict (client_request_id) do nothing returning id",
            (report.category, report.description, report.address, report.x, report.y, report.crs, report.lon,
             report.lat, report.accuracy_m, report.source, json.dumps(report.reporter, ensure_ascii=False),
             report.client_request_id, digest, report.reported_at, list(report.media)))
        row = cur.fetchone()
        if row is None:
            return _earlier_submission(cur, report.client_request_id, digest), False
        incident_id = row["id"]
        cur.execute("select route_incident(%s, 'intake', %s)", (incident_id, routing.snap_m))
        link_duplicate(cur, incident_id, routing)
        return _fetch(cur, "i.id = %s", (incident_id,)), True


def _category_in_service(cur, code):
    cur.execute("select 1 from event_subclass where code = %s and in_service", (code,))
    return cur.fetchone() is not None


def _earlier_submission(cur, client_request_id, digest):
    cur.execute("select id, request_sha256 from incident where client_request_id = %s", (client_request_id,))
    row = cur.fetchone()
    if row["request_sha256"] != digest:
        raise Conflict(f"client_request_id {client_request_id!r} was already used for a different report; "
                       "use a new id for a new report")
    return _fetch(cur, "i.id = %s", (row["id"],))


def link_duplicate(cur, incident_id, routing):
    """Link the incident to the open one it may repeat (same subclass, near in space and time), if any."""
    if routing.duplicate_m <= 0 or routing.duplicate_hours <= 0:
        return None
    cur.execute(
        "update incident set duplicate_of = possible_duplicate_of(id, %s, make_interval(secs => %s))"
        " where id = %s returning duplicate_of",
        (routing.duplicate_m, routing.duplicate_hours * 3600, incident_id))
    return cur.fetchone()["duplicate_of"]


# --- reading -----------------------------------------------------------------------------------

_SELECT = """
select i.id, i.public_id, i.category, s.name_zh as category_name_zh, s.name_en as category_name_en,
       s.class_code, s.department_code, i.description, i.address, i.given_x, i.given_y, i.given_crs,
       ST_X(i.geom) as lon, ST_Y(i.geom) as lat, i.accuracy_m, i.source, i.reporter, i.client_request_id,
       i.reported_at, i.received_at, i.media_urls, i.status, i.status_changed_at,
       d.public_id as duplicate_of, i.version_id, i.routing_status::text as routing_status,
       r.candidates, r.snap_distance_m, r.routed_at, r.staff,
       (select coalesce(json_agg(json_build_object('level', c.level, 'code', c.code, 'name', c.name)
                                 order by c.level), '[]')
          from grid_cell c where c.id in (i.district_id, i.street_id, i.community_id, i.grid_id)) as cells
  from incident i
  join event_subclass s on s.code = i.category
  left join incident d on d.id = i.duplicate_of
  left join incident_routing r on r.id = i.routing_id
"""


def _fetch(cur, where, params):
    cur.execute(_SELECT + " where " + where, params)
    row = cur.fetchone()
    return as_json(row) if row else None


def get(cur, public_id):
    """One incident by its public id, or :class:`NotFound`."""
    incident = _fetch(cur, "i.public_id = %s", (public_id,))
    if incident is None:
        raise NotFound(f"no report {public_id!r}")
    return incident


def as_json(row):
    """A stored incident as the API shows it."""
    cells = [dict(c, level_name=LEVEL_NAMES[c["level"]]) for c in row["cells"]]
    return {
        "id": row["public_id"],
        "category": {"code": row["category"], "name_zh": row["category_name_zh"],
                     "name_en": row["category_name_en"], "class_code": row["class_code"],
                     "department": row["department_code"]},
        "description": row["description"],
        "address": row["address"],
        "location": {"lon": row["lon"], "lat": row["lat"], "crs": "EPSG:4326"},
        "given_location": {"x": row["given_x"], "y": row["given_y"], "crs": row["given_crs"]},
        "accuracy_m": row["accuracy_m"],
        "source": row["source"],
        "reporter": row["reporter"],
        "client_request_id": row["client_request_id"],
        "reported_at": row["reported_at"].isoformat(),
        "received_at": row["received_at"].isoformat(),
        "media": row["media_urls"],
        "status": row["status"],
        "status_changed_at": row["status_changed_at"].isoformat(),
        "duplicate_of": row["duplicate_of"],
        "routing": {
            "status": row["routing_status"],
            "version": row["version_id"],
            "cells": cells,
            "candidates": row["candidates"] or [],
            "snap_distance_m": row["snap_distance_m"],
            "routed_at": row["routed_at"].isoformat() if row["routed_at"] else None,
            "staff": row["staff"] or [],
        },
    }


@dataclass(frozen=True)
class Query:
    """Filters of :func:`search`; None means no filter."""

    bbox: tuple | None = None
    cell: str | None = None
    level: int | None = None
    categories: tuple = ()
    statuses: tuple = ()
    routing_statuses: tuple = ()
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    ids: tuple = ()
    after: int | None = None  # paging cursor: the last internal id of the previous page
    limit: int = 100


def search(cur, query):
    """Incidents matching ``query``, newest first: ``(rows, next_cursor)``."""
    where, params = ["true"], []
    if query.bbox:
        where.append("i.geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326)")
        params += list(query.bbox)
    if query.cell:
        level = _level_of_code(query.cell)
        if query.level is not None and query.level != level:
            raise BadInput(f"cell {query.cell!r} is a level {level} code, not level {query.level}")
        where.append(f"i.{LEVEL_NAMES[level]}_id in (select id from grid_cell where code = %s and level = %s)")
        params += [query.cell, level]
    elif query.level is not None:
        deeper = [f"i.{n}_id is null" for n in LEVEL_NAMES[query.level + 1:]]
        where.append(" and ".join([f"i.{LEVEL_NAMES[query.level]}_id is not null", *deeper]))
    if query.categories:
        classes = [c for c in query.categories if len(c) == 2]
        where.append("(i.category = any(%s) or left(i.category, 2) = any(%s))")
        params += [list(query.categories), classes]
    if query.statuses:
        where.append("i.status = any(%s)")
        params.append(_expand_statuses(query.statuses))
    if query.routing_statuses:
        where.append("i.routing_status::text = any(%s)")
        params.append(list(query.routing_statuses))
    if query.since:
        where.append("i.reported_at >= %s")
        params.append(query.since)
    if query.until:
        where.append("i.reported_at < %s")
        params.append(query.until)
    if query.ids:
        where.append("i.public_id = any(%s)")
        params.append(list(query.ids))
    if query.after is not None:
        where.append("i.id < %s")
        params.append(query.after)
    cur.execute(_SELECT + " where " + " and ".join(where) + " order by i.id desc limit %s",
                params + [query.limit + 1])
    rows = cur.fetchall()
    next_cursor = rows[query.limit - 1]["id"] if len(rows) > query.limit else None
    return [as_json(r) for r in rows[:query.limit]], next_cursor


def _level_of_code(code):
    lengths = {6: 0, 9: 1, 12: 2, 15: 3}
    if not (code.isdigit() and len(code) in lengths):
        raise BadInput(f"cell {code!r} is not a grid code (6, 9, 12 or 15 digits)")
    return lengths[len(code)]


def _expand_statuses(statuses):
    known = set(OPEN_STATES) | set(CLOSED_STATES)
    out = []
    for s in statuses:
        if s == "open":
            out += OPEN_STATES
        elif s in known:
            out.append(s)
        else:
            raise BadInput(f"status {s!r} is not one of open, {', '.join(sorted(known))}")
    return out


def as_geojson(incidents, next_cursor=None):
    """Incidents as a GeoJSON FeatureCollection; ``next`` is the cursor of the next page."""
    features = [{"type": "Feature", "id": i["id"],
                 "geometry": {"type": "Point", "coordinates": [i["location"]["lon"], i["location"]["lat"]]},
                 "properties": i} for i in incidents]
    return {"type": "FeatureCollection", "features": features, "next": next_cursor}
