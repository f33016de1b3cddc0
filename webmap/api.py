"""``/api/v1``: grid versions, cells and partition problems as JSON and GeoJSON."""
import dataclasses

import shapely
import shapely.geometry
from flask import Blueprint, jsonify, request

from gis import grid_store, incidents, partition_service, problem_report
from gis.errors import BadInput
from gis.partition_checks import Tolerances
from webmap import get_db, scope

bp = Blueprint("api", __name__, url_prefix="/api/v1")

MAX_FEATURES = 20000
MAX_VERSION_ID = 2**31 - 1  # grid_version.id is an integer: a larger one is a 400, not a failing cast


@bp.get("/grids")
def grids():
    """Cells of a version (the active one by default) as GeoJSON.

    Query parameters: ``level`` (0–3), ``bbox`` (min_lon,min_lat,max_lon,max_lat), ``version`` (id) or
    ``as_of`` (a date, China midnight, or a date-time: the version active then), ``limit`` (at most 20,000;
    the answer's ``truncated`` says when more matched).
    """
    level = int_arg("level", 0, 3)
    limit = int_arg("limit", 1, MAX_FEATURES) or MAX_FEATURES
    bbox = parse_bbox(request.args.get("bbox"))
    with get_db().cursor() as cur:
        version = version_arg(cur)
        body = grid_store.grids_geojson(cur, version_id=version["id"], level=level, bbox=bbox, limit=limit,
                                        cell_ids=scope().cell_ids(cur, version["id"]))
    return geojson_response(body)


@bp.get("/versions")
def versions():
    """All versions, newest first; with ``as_of`` (as for /grids) the one version active then, as an object."""
    as_of = time_arg("as_of")
    with get_db().cursor() as cur:
        return jsonify(grid_store.version_as_of(cur, as_of) if as_of else grid_store.list_versions(cur))


@bp.get("/versions/<int:version_id>/problems")
def problems(version_id):
    """Every problem of a version (or of one level against its parent level) as GeoJSON."""
    level = int_arg("level", 0, 3)
    result = partition_service.check_version(get_db(), version_id, level=level, tol=_tolerances())
    return geojson_response(problem_report.as_geojson(_in_scope(result, version_id)))


@bp.post("/versions/<int:version_id>/check-cell")
def check_cell(version_id):
    """One edited cell in — ``{"code", "geometry" (GeoJSON, EPSG:4326), "level"?, "parent_code"?}`` — and the
    problems it takes part in out, as GeoJSON: the check the boundary editor calls on every save."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadInput("send a JSON object with code and geometry")
    code, geometry = body.get("code"), parse_polygon(body.get("geometry"))
    level = body.get("level")
    if level is not None and (not isinstance(level, int) or isinstance(level, bool)):
        raise BadInput("level must be a whole number from 0 to 3")
    if not scope().is_city:
        with get_db().cursor() as cur:
            scope().require_cell(cur, version_id, code)
    result = partition_service.check_edited_cell(get_db(), version_id, code, geometry, level=level,
                                                 parent_code=body.get("parent_code"), tol=_tolerances())
    return geojson_response(problem_report.as_geojson(_in_scope(result, version_id)))


def _in_scope(result, version_id):
    """Only the problems that involve a cell inside the asker's scope."""
    if scope().is_city:
        return result
    with get_db().cursor() as cur:
        inside = scope().cell_codes(cur, version_id)
    return dataclasses.replace(result, problems=[p for p in result.problems if inside.intersection(p.codes)])


def parse_polygon(value):
    """A GeoJSON Polygon or MultiPolygon in degrees → a shapely geometry (validity is for the check to judge)."""
    if not isinstance(value, dict) or value.get("type") not in ("Polygon", "MultiPolygon"):
        raise BadInput("geometry must be a GeoJSON Polygon or MultiPolygon")
    try:
        geom = shapely.geometry.shape(value)
    except Exception as exc:  # shapely raises several types for malformed coordinates
        raise BadInput(f"geometry is not valid GeoJSON: {exc}") from None
    x0, y0, x1, y1 = shapely.bounds(geom)
    if geom.is_empty or not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
        raise BadInput("geometry must be non-empty, in EPSG:4326 longitude/latitude degrees")
    return geom


def _tolerances():
    values = {}
    for name in ("noise_m", "sliver_area_m2", "sliver_width_m"):
        text = request.args.get(name)
        if text is None:
            continue
        try:
            values[name] = float(text)
        except ValueError:
            raise BadInput(f"{name} must be a number; got {text!r}") from None
        if not values[name] >= 0:
            raise BadInput(f"{name} must be ≥ 0")
    return Tolerances(**values)


def geojson_response(body):
    response = jsonify(body)
    response.mimetype = "application/geo+json"
    return response


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


def time_arg(name, naive=incidents.CHINA_TIME):
    """A date (its midnight) or date-time query parameter; without a zone it is taken in ``naive``."""
    return incidents.parse_time(request.args.get(name), name, naive)


def version_arg(cur, *, required=True):
    """The grid version a request names by ``version`` (id) or ``as_of`` (the one active then); else the active
    one — None when none is active and it is not ``required`` (NotFound when it is)."""
    version_id, as_of = int_arg("version", 1, MAX_VERSION_ID), time_arg("as_of")
    if version_id is not None and as_of is not None:
        raise BadInput("give version or as_of, not both")
    if as_of is not None:
        return grid_store.version_as_of(cur, as_of)
    if version_id is not None or required:
        return grid_store.resolve_version(cur, version_id)
    return grid_store.active_version(cur)


def int_arg(name, low, high):
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
