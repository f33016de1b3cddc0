"""``/api/v1``: grid versions and cells as JSON and GeoJSON."""
from flask import Blueprint, jsonify, request

from gis import grid_store
from gis.errors import BadInput
from webmap import get_db

bp = Blueprint("api", __name__, url_prefix="/api/v1")

MAX_FEATURES = 20000


@bp.get("/grids")
def grids():
    """Cells of a version (the active one by default) as GeoJSON.

    Query parameters: ``level`` (0–3), ``bbox`` (min_lon,min_lat,max_lon,max_lat), ``version`` (id),
    ``limit`` (at most 20,000; the answer's ``truncated`` says when more matched).
    """
    level = _int_arg("level", 0, 3)
    version_id = _int_arg("version", 1, None)
    limit = _int_arg("limit", 1, MAX_FEATURES) or MAX_FEATURES
    bbox = parse_bbox(request.args.get("bbox"))
    with get_db().cursor() as cur:
        version = grid_store.resolve_version(cur, version_id)
        body = grid_store.grids_geojson(cur, version_id=version["id"], level=level, bbox=bbox, limit=limit)
    response = jsonify(body)
    response.mimetype = "application/geo+json"
    return response


@bp.get("/versions")
def versions():
    with get_db().cursor() as cur:
        rows = grid_store.list_versions(cur)
    return jsonify(rows)


def parse_bbox(text):
    """``"x0,y0,x1,y1"`` in degrees → a tuple, or None; anything else is a 400 that says why."""
    if text is None or text == "":
        return None
    parts = text.split(",")
    try:
        x0, y0, x1, y1 = (float(p) for p in parts)
    except ValueError:
        raise BadInput(f"bbox must be four numbers min_lon,min_lat,max_lon,max_lat; got {text!r}") from None
    if not (-180 <= x0 < x1 <= 180 and -90 <= y0 < y1 <= 90):
        raise BadInput(f"bbox {text!r} is not min_lon,min_lat,max_lon,max_lat in degrees with min < max")
    return x0, y0, x1, y1


def _int_arg(name, low, high):
    text = request.args.get(name)
    if text is None or text == "":
        return None
    try:
        value = int(text)
    except ValueError:
        raise BadInput(f"{name} must be a whole number; got {text!r}") from None
    if value < low or (high is not None and value > high):
        raise BadInput(f"{name} must be between {low} and {high}; got {value}" if high is not None
                       else f"{name} must be at least {low}; got {value}")
    return value
