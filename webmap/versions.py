"""What changed between two grid versions (:mod:`gis.version_diff`), as GeoJSON and as a page.

- ``GET /api/v1/versions/<a>/diff/<b>[?level=]``: the changes as GeoJSON.
- ``GET /versions/<a>/diff/<b>[?level=]``: a map and a table of them (version_diff.js asks the API).
"""
from flask import Blueprint, render_template, request

from gis import grid_store, version_diff
from gis.errors import NotFound
from webmap import get_db, scope
from webmap.api import geojson_response, int_arg

bp = Blueprint("versions", __name__)

LEVELS = {0: "区县 district", 1: "街道/乡镇 street", 2: "社区/村 community", 3: "单元网格 unit grid"}


@bp.get("/api/v1/versions/<int:a>/diff/<int:b>")
def diff(a, b):
    level = int_arg("level", 0, 3)
    with get_db().cursor() as cur:
        result = version_diff.diff(cur, a, b, level, scope=scope())
    return geojson_response(version_diff.as_geojson(result))


@bp.get("/versions/<int:a>/diff/<int:b>")
def diff_page(a, b):
    """The page; a bad ``level`` is passed on for the API's message to show, like any other failure."""
    level = request.args.get("level", "").strip()
    try:
        with get_db().cursor() as cur:
            versions = [grid_store.get_version(cur, v) for v in (a, b)]
    except NotFound as exc:
        return render_template("version_diff.html", missing=exc.message, a=a, b=b, level=level, levels=LEVELS), 404
    return render_template("version_diff.html", versions=versions, a=a, b=b, level=level, levels=LEVELS)
