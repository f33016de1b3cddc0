"""``/api/v1/reports``: field reports in (JSON or form data) and out (JSON and GeoJSON)."""

from flask import Blueprint, jsonify, request
from werkzeug.exceptions import UnsupportedMediaType

from gis import incidents
from gis.errors import BadInput
from webmap import get_db, scope, submit_report
from webmap.api import geojson_response, int_arg, parse_bbox, time_arg

bp = Blueprint("reports", __name__, url_prefix="/api/v1/reports")

MAX_BODY = 1024 * 1024
MAX_PAGE = 1000



@bp.post("")
def create():
    """A new report: 201 with the routed incident; 200 with the same incident for a repeated
    client_request_id; 409 when that id came with different content."""
    fields = request_fields()
    source = fields.pop("source", "field_app")
    if source not in ("field_app", "hotline"):
        raise BadInput("source must be field_app or hotline (Open311 and imports have their own ways in)")
    report = incidents.parse_report(fields, source=source)
    incident, created = submit_report(report)
    response = jsonify(incident)
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/api/v1/reports/{incident['id']}"
    return response


@bp.get("/<public_id>")
def show(public_id):
    with get_db().cursor() as cur:
        return jsonify(incidents.get(cur, public_id, scope=scope()))


@bp.get("")
def index():
    """Incidents as GeoJSON, newest first, ``limit`` per page; pass the answer's ``next`` as ``after``."""
    query = incidents.Query(
        bbox=parse_bbox(request.args.get("bbox")),
        cell=request.args.get("cell") or None,
        level=int_arg("level", 0, 3),
        categories=list_arg("category"),
        statuses=list_arg("status"),
        routing_statuses=_routing_statuses(),
        since=time_arg("since"),
        until=time_arg("until"),
        after=int_arg("after", 1, None),
        limit=int_arg("limit", 1, MAX_PAGE) or 100,
    )
    with get_db().cursor() as cur:
        rows, next_cursor = incidents.search(cur, query, scope=scope())
    return geojson_response(incidents.as_geojson(rows, next_cursor))


def request_fields():
    """The body as a dict: a JSON object, or form fields (``media`` may repeat)."""
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise BadInput("the body is not a JSON object")
        return body
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        fields = {k: v for k, v in request.form.items() if k != "media"}
        if request.form.getlist("media"):
            fields["media"] = request.form.getlist("media")
        return fields
    raise UnsupportedMediaType("send the report as JSON (application/json) or as form data")


def list_arg(name):
    text = request.args.get(name)
    return tuple(p.strip() for p in text.split(",") if p.strip()) if text else ()


def _routing_statuses():
    values = list_arg("routing")
    for v in values:
        if v not in incidents.ROUTING_STATUSES:
            raise BadInput(f"routing {v!r} is not one of {', '.join(incidents.ROUTING_STATUSES)}")
    return values


