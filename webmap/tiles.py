"""``/tiles/<level>/<z>/<x>/<y>.pbf``: the grid's cells with their incident counts as Mapbox vector tiles.

Query parameters: ``since``, ``until``, ``category``, ``status`` (see :func:`gis.tiles.parse_filters`),
``version`` (a grid version id; the active one by default) and ``crs``: ``wgs84`` (default) or ``gcj02``,
the tiling of AMap/Gaode base maps, with the cells shifted into GCJ-02 so that they line up with it.

A tile no cell touches is ``204 No Content``. A zoom below the level's least (:data:`gis.tiles.MIN_ZOOM`:
districts 7, streets 9, communities 11, unit grids 13) is ``400`` with a message naming it, rather than an
empty 204: an empty tile would draw as "no cells here" and hide the mistake, where the 400 tells a client
where the level starts (a map sets it as the layer's ``minzoom``).
"""
from flask import Blueprint, Response, request

from gis import tiles
from gis.errors import BadInput
from webmap import get_db, scope
from webmap.api import MAX_VERSION_ID, int_arg

bp = Blueprint("tiles", __name__, url_prefix="/tiles")

MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
MAX_AGE_S = 30  # counts change as reports come in: a map panning back a minute later asks again


# <int:...> would turn a negative number into a bare 404: take any text and let gis say what is wrong
@bp.get("/<level>/<z>/<x>/<y>.pbf")
def cell_tile(level, z, x, y):
    address = tiles.TileAddress(*(_whole(name, text) for name, text in
                                  (("level", level), ("z", z), ("x", x), ("y", y))),
                                crs=request.args.get("crs") or "wgs84")
    filters = tiles.parse_filters(request.args)
    version_id = int_arg("version", 1, MAX_VERSION_ID)
    with get_db().cursor() as cur:
        body = tiles.cell_tile(cur, address, filters, version_id, scope=scope())
    # private: a tile depends on who asks (its scope), so no shared cache may keep it for the next one
    headers = {"Cache-Control": f"private, max-age={MAX_AGE_S}", "Vary": "Authorization, Cookie"}
    if not body:
        return Response(status=204, headers=headers)
    return Response(body, mimetype=MEDIA_TYPE, headers=headers)


def _whole(name, text):
    try:
        return int(text)
    except ValueError:
        raise BadInput(f"{name} must be a whole number; got {text!r}") from None
