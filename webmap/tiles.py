"""``/tiles/<level>/<z>/<x>/<y>.pbf``: the grid's cells with their incident counts as Mapbox vector tiles.

Query parameters: ``since``, ``until``, ``category``, ``status`` (see :func:`gis.tiles.parse_filters`) and
``version`` (a grid version id; the active one by default). A tile no cell touches is ``204 No Content``.
"""
from flask import Blueprint, Response, request

from gis import tiles
from gis.errors import BadInput
from webmap import get_db
from webmap.api import int_arg

bp = Blueprint("tiles", __name__, url_prefix="/tiles")

MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
MAX_AGE_S = 30  # counts change as reports come in: a map panning back a minute later asks again


# <int:...> would turn a negative number into a bare 404: take any text and let gis say what is wrong
@bp.get("/<level>/<z>/<x>/<y>.pbf")
def cell_tile(level, z, x, y):
    address = tiles.TileAddress(*(_whole(name, text) for name, text in
                                  (("level", level), ("z", z), ("x", x), ("y", y))))
    filters = tiles.parse_filters(request.args)
    version_id = int_arg("version", 1, None)
    with get_db().cursor() as cur:
        body = tiles.cell_tile(cur, address, filters, version_id)
    headers = {"Cache-Control": f"public, max-age={MAX_AGE_S}"}
    if not body:
        return Response(status=204, headers=headers)
    return Response(body, mimetype=MEDIA_TYPE, headers=headers)


def _whole(name, text):
    try:
        return int(text)
    except ValueError:
        raise BadInput(f"{name} must be a whole number; got {text!r}") from None
