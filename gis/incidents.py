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
from gis.access import CITY_SCOPE
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


def parse_time(text, name, naive=CHINA_TIME):
    """An ISO 8601 date (its midnight) or date-time; without a zone it is taken in ``naive``; None for none.

    Raises :class:`BadInput` naming ``name`` when the text is not one."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(f"{name} must be an ISO 8601 date or date-time; got {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=naive)


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
    if accuracy is not None:
        accuracy = round(accuracy, 2)  # centimetres are more than any GPS knows
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

def submit(db, report, routing=Routing(), router=None):
    """Store, route and link one report in one database call.

    ``router`` (a :class:`gis.worker_router.WorkerRouter`) routes it in this process when it can; the
    database keeps that answer only if it was computed against the active version, and routes it itself
    otherwise. Returns ``(incident, created)``: the incident as :func:`get` gives it, and False when the
    client_request_id was seen before with the same content (the first incident comes back). A reused
    client_request_id with different content is a :class:`Conflict`.
    """
    digest = report.content_sha256()
    answer = router.route(report.lon, report.lat, report.accuracy_m, routing.snap_m) if router else None
    # autocommit: intake_report() is one statement, so one round trip and no BEGIN/COMMIT around it
    with db.cursor(autocommit=True) as cur:
        cur.execute(
            "select * from intake_report(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
            " make_interval(secs => %s), %s::integer, %s::routing_status, %s::bigint[], %s::text[], %s::float8)",
            (report.category, report.description, report.address, report.x, report.y, report.crs, report.lon,
             report.lat, report.accuracy_m, report.source, json.dumps(report.reporter, ensure_ascii=False),
             report.client_request_id, digest, report.reported_at, list(report.media), routing.snap_m,
             routing.duplicate_m, routing.duplicate_hours * 3600, *(answer or (None,) * 5)))
        row = cur.fetchone()
        if row is None:
            raise BadInput(f"unknown category {report.category!r}: use a subclass code of the event "
                           "classification (GET /open311/v2/services.json lists them)")
        if router:
            router.saw_active(row["active_version"])
        if row["request_sha256"] != digest:
            raise Conflict(f"client_request_id {report.client_request_id!r} was already used for a different "
                           "report; use a new id for a new report")
        return row["doc"], row["created"]


# --- reading -----------------------------------------------------------------------------------

def _docs(cur, ids):
    """The incidents' documents (SQL ``incident_docs()`` says what they hold), in the order of ``ids``."""
    cur.execute("select doc from incident_docs(%s)", (list(ids),))
    return [row["doc"] for row in cur.fetchall()]


def get(cur, public_id, *, scope=CITY_SCOPE):
    """One incident by its public id, or :class:`NotFound` (also when it lies outside ``scope``)."""
    cur.execute("select d.doc from incident i, incident_docs(array[i.id]) d where i.public_id = %s and "
                + scope.incident_filter_text(cur), (public_id,))
    row = cur.fetchone()
    if row is None:
        raise NotFound(f"no report {public_id!r}")
    return row["doc"]


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


def search(cur, query, *, scope=CITY_SCOPE):
    """Incidents matching ``query`` inside ``scope``, newest first: ``(rows, next_cursor)``."""
    where, params = [scope.incident_filter_text(cur)], []
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
        states = _expand_statuses(query.statuses)
        # 'overdue' is not a state: dispatched or in progress past the deadline, as the map shows it
        where.append("(i.status = any(%s)" + (" or (i.status in ('dispatched', 'in_progress') and i.due_at < now()))"
                                               if "overdue" in query.statuses else ")"))
        params.append(states)
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
    cur.execute("select i.id from incident i where " + " and ".join(where) + " order by i.id desc limit %s",
                params + [query.limit + 1])
    ids = [r["id"] for r in cur.fetchall()]
    next_cursor = ids[query.limit - 1] if len(ids) > query.limit else None
    return _docs(cur, ids[:query.limit]), next_cursor


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
        elif s == "overdue":
            continue
        elif s in known:
            out.append(s)
        else:
            raise BadInput(f"status {s!r} is not one of open, overdue, {', '.join(sorted(known))}")
    return out


def as_geojson(incidents, next_cursor=None):
    """Incidents as a GeoJSON FeatureCollection; ``next`` is the cursor of the next page."""
    features = [{"type": "Feature", "id": i["id"],
                 "geometry": {"type": "Point", "coordinates": [i["location"]["lon"], i["location"]["lat"]]},
                 "properties": i} for i in incidents]
    return {"type": "FeatureCollection", "features": features, "next": next_cursor}
