"""Open311 GeoReport v2 at ``/open311/v2/``, in JSON and XML, as the specification shows them.

http://wiki.open311.org/GeoReport_v2 — services are the subclasses of the event classification;
requests are incidents. JSON answers are bare arrays (discovery is an object), errors are
``[{"code": …, "description": …}]`` or ``<errors><error>…``. Creating a request needs an ``api_key``
(``gridmap key create``, role ``device`` or ``open311``); reading needs an ``open311`` key (or a
signed-in user), and shows only the requests inside the key's scope.
"""
import datetime as dt
import xml.etree.ElementTree as ET

from flask import Blueprint, Response, json, request, url_for
from werkzeug.exceptions import HTTPException

from gis import event_classes, incidents
from gis.errors import BadInput, GridMapError, NotFound
from webmap import get_db, scope, submit_report
from webmap.api import time_arg
from webmap.reports import list_arg

bp = Blueprint("open311", __name__, url_prefix="/open311/v2")

FORMATS = {"json": "application/json", "xml": "text/xml"}
MAX_REQUESTS = 1000          # the most one GET requests answer holds
DEFAULT_SPAN = dt.timedelta(days=90)
_OPEN311_FIELDS = ("api_key", "jurisdiction_id", "service_code", "lat", "long", "address_string", "address_id",
                   "email", "device_id", "account_id", "first_name", "last_name", "phone", "description",
                   "media_url")



@bp.errorhandler(GridMapError)
def open311_error(exc):
    response = _errors(int(exc.http_status), exc.message)
    response.headers.update(exc.http_headers)
    return response


@bp.errorhandler(HTTPException)
def open311_http_error(exc):
    return _errors(exc.code, exc.description)


@bp.get("/discovery.<fmt>")
def discovery(fmt):
    _check_format(fmt)
    now = _w3c(dt.datetime(2026, 11, 23, tzinfo=dt.timezone.utc))  # when this API last changed
    body = {
        "changeset": now,
        "contact": "GridMap command centre, via the city's 12345 hotline",
        "key_service": "Ask the city platform's administrator for an api_key (gridmap key create NAME).",
        "endpoints": [{
            "specification": "http://wiki.open311.org/GeoReport_v2",
            "url": url_for("open311.services", fmt=fmt, _external=True).rsplit("/", 1)[0],
            "changeset": now,
            "type": "production",
            "formats": list(FORMATS.values()),
        }],
    }
    return _answer(fmt, body, root="discovery", items={"endpoints": "endpoint", "formats": "format"})


@bp.get("/services.<fmt>")
def services(fmt):
    _check_format(fmt)
    with get_db().cursor() as cur:
        rows = event_classes.services(cur)
    body = [{
        "service_code": r["code"],
        "service_name": r["name_zh"],
        "description": r["description_zh"],
        "metadata": False,
        "type": "realtime",
        "keywords": f"{r['name_en']}, {r['class_name_en']}",
        "group": r["class_name_zh"],
    } for r in rows]
    return _answer(fmt, body, root="services", item="service")


@bp.get("/services/<code>.<fmt>")
@bp.get("/service/<code>.<fmt>")  # some clients call the singular
def service_definition(code, fmt):
    _check_format(fmt)
    with get_db().cursor() as cur:
        if not event_classes.in_service(cur, code):
            raise NotFound(f"no service {code!r}")
    return _answer(fmt, {"service_code": code, "attributes": []}, root="service_definition",
                   items={"attributes": "attribute"})


@bp.post("/requests.<fmt>")
def create_request(fmt):
    _check_format(fmt)
    form = request.form
    unknown = [k for k in form if k not in _OPEN311_FIELDS and not k.startswith("attribute[")]
    if unknown:
        raise BadInput(f"unknown parameter(s): {', '.join(sorted(unknown))}")
    if not form.get("lat") or not form.get("long"):
        raise BadInput("lat and long are required: this endpoint routes requests by location")
    reporter = {k: form[k] for k in ("email", "device_id", "account_id", "phone") if form.get(k)}
    name = " ".join(form[k] for k in ("first_name", "last_name") if form.get(k))
    if name:
        reporter["name"] = name
    report = incidents.parse_report({
        "lon": form["long"], "lat": form["lat"], "category": form.get("service_code") or None,
        "description": form.get("description", ""), "address": form.get("address_string", ""),
        "reporter": reporter, "media": form.get("media_url") or None,
    }, source="open311")
    incident, _ = submit_report(report)
    body = [{"service_request_id": incident["id"], "service_notice": _notice(incident), "account_id": None}]
    return _answer(fmt, body, root="service_requests", item="request")


@bp.get("/requests.<fmt>")
def list_requests(fmt):
    _check_format(fmt)
    ids = list_arg("service_request_id")
    if ids:  # the specification: ids override every other filter
        query = incidents.Query(ids=ids, limit=MAX_REQUESTS)
    else:
        end = time_arg("end_date", dt.timezone.utc) or dt.datetime.now(dt.timezone.utc)
        start = time_arg("start_date", dt.timezone.utc) or end - DEFAULT_SPAN
        if not start <= end:
            raise BadInput("start_date must be before end_date")
        if end - start > DEFAULT_SPAN:
            raise BadInput("start_date and end_date may not span more than 90 days")
        statuses = list_arg("status")
        for s in statuses:
            if s not in ("open", "closed"):
                raise BadInput(f"status must be open or closed; got {s!r}")
        query = incidents.Query(
            categories=list_arg("service_code"), since=start, until=end + dt.timedelta(microseconds=1),
            statuses=tuple(x for s in statuses for x in (("open",) if s == "open" else incidents.CLOSED_STATES)),
            limit=MAX_REQUESTS)
    with get_db().cursor() as cur:
        rows, _ = incidents.search(cur, query, scope=scope())
    return _answer(fmt, [_as_request(r) for r in rows], root="service_requests", item="request")


@bp.get("/requests/<public_id>.<fmt>")
def show_request(public_id, fmt):
    _check_format(fmt)
    with get_db().cursor() as cur:
        incident = incidents.get(cur, public_id, scope=scope())
    return _answer(fmt, [_as_request(incident)], root="service_requests", item="request")


@bp.get("/tokens/<token>.<fmt>")
def show_token(token, fmt):
    _check_format(fmt)
    with get_db().cursor() as cur:
        cur.execute("select public_id from incident i where token::text = lower(%s) and "
                    + scope().incident_filter_text(cur), (token,))
        row = cur.fetchone()
    if row is None:
        raise NotFound(f"no request for token {token!r}")
    return _answer(fmt, [{"service_request_id": row["public_id"], "token": token}], root="service_requests",
                   item="request")


def _as_request(incident):
    closed = incident["status"] in incidents.CLOSED_STATES
    cells = {c["level_name"]: c for c in incident["routing"]["cells"]}
    grid = cells.get("grid") or cells.get("community") or cells.get("street") or cells.get("district")
    return {
        "service_request_id": incident["id"],
        "status": "closed" if closed else "open",
        "status_notes": {"voided": "作废 voided", "closed": "结案 closed"}.get(incident["status"], incident["status"]),
        "service_name": incident["category"]["name_zh"],
        "service_code": incident["category"]["code"],
        "description": incident["description"],
        "agency_responsible": incident["category"]["department"],
        "service_notice": _notice(incident),
        "requested_datetime": _w3c(dt.datetime.fromisoformat(incident["reported_at"])),
        "updated_datetime": _w3c(dt.datetime.fromisoformat(incident["status_changed_at"])),
        "expected_datetime": None,
        "address": incident["address"],
        "address_id": grid["code"] if grid else None,
        "zipcode": None,
        "lat": incident["location"]["lat"],
        "long": incident["location"]["lon"],
        "media_url": incident["media"][0] if incident["media"] else None,
    }


def _notice(incident):
    cells = incident["routing"]["cells"]
    where = " / ".join(c["name"] for c in cells) or "未落入任何网格 outside every grid"
    return f"{where} ({incident['routing']['status']})"


def _w3c(when):
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if when else None


def _check_format(fmt):
    if fmt not in FORMATS:
        raise NotFound(f"format {fmt!r} is not offered; use .json or .xml")


def _errors(code, description):
    fmt = request.view_args.get("fmt") if request.view_args else None
    body = [{"code": code, "description": description}]
    return _answer(fmt if fmt in FORMATS else "json", body, root="errors", item="error", status=code)


def _answer(fmt, body, *, root, item=None, items=None, status=200):
    if fmt == "json":
        return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=FORMATS["json"])
    element = ET.Element(root)
    if isinstance(body, list):
        for entry in body:
            _fill(ET.SubElement(element, item), entry, items or {})
    else:
        _fill(element, body, items or {})
    text = ET.tostring(element, encoding="unicode")
    return Response('<?xml version="1.0" encoding="utf-8"?>' + text, status=status, mimetype=FORMATS["xml"])


def _fill(element, mapping, items):
    """Write a dict as child elements; lists become repeated elements named by ``items``."""
    for key, value in mapping.items():
        child = ET.SubElement(element, key)
        if isinstance(value, list):
            for entry in value:
                sub = ET.SubElement(child, items[key])
                if isinstance(entry, dict):
                    _fill(sub, entry, items)
                else:
                    sub.text = str(entry)
        elif isinstance(value, dict):
            _fill(child, value, items)
        elif isinstance(value, bool):
            child.text = "true" if value else "false"
        elif value is not None:
            child.text = str(value)
