"""``/api/v1/versions/<id>/impact`` and ``/activate``: what activating a draft would change, and doing it."""
from flask import Blueprint, Response, current_app, jsonify, request

from gis import activation
from gis.errors import BadInput
from webmap import get_db, principal
from webmap.api import geojson_response

bp = Blueprint("activation", __name__, url_prefix="/api/v1/versions")

MAX_BODY = 64 * 1024
FORMATS = ("json", "csv", "geojson")



@bp.get("/<int:version_id>/impact")
def impact(version_id):
    """The open incidents that would move to another cell or other people, and the cells whose counts would
    change; ``format=csv`` or ``geojson`` downloads it as a file (one table or layer, a ``kind`` per row)."""
    fmt = request.args.get("format", "json")
    if fmt not in FORMATS:
        raise BadInput(f"format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    result = activation.impact(get_db(), version_id, snap_m=_snap_m(), with_geometry=fmt == "geojson")
    if fmt == "json":
        return jsonify(result)
    name = f"impact-version-{version_id}.{fmt}"
    if fmt == "csv":
        response = Response(activation.as_csv(result), mimetype="text/csv")
    else:
        response = geojson_response(activation.as_geojson(result))
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@bp.post("/<int:version_id>/activate")
def activate(version_id):
    """``{"force"?, "reason"?}`` → 200 with the summary (who activates: who is signed in); 409 when the version is not a draft, another
    activation is under way, or the check found problems (counted by type in ``problems``) and ``force`` was
    not given; 400 for ``force`` without a reason."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadInput('send a JSON object: {"force": false, "reason": "..."}')
    unknown = set(body) - {"actor", "force", "reason"}
    if unknown:
        raise BadInput(f"unknown field(s) {', '.join(sorted(unknown))}")
    force = body.get("force", False)
    if not isinstance(force, bool):
        raise BadInput("force must be true or false")
    return jsonify(activation.activate(get_db(), version_id, actor=principal().name, force=force,
                                       reason=body.get("reason"), snap_m=_snap_m()))


def _snap_m():
    return current_app.extensions["gridmap_routing"].snap_m
