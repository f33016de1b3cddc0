"""The planners' editor: ``/planner``, and the API that edits a draft version (:mod:`gis.grid_edit`).

Each edit names the ``revision`` of every cell it changes (409 with the cells as they are now when one moved
on) and may give a ``reason``; who edits is who is signed in (or the key's name). It answers the cells as
they are now and the problems they take part in. A planner whose scope is smaller than the city edits only
cells inside it (403 otherwise, nothing changed: :func:`gis.grid_edit._editing`).
"""
from flask import Blueprint, jsonify, render_template, request

from gis import grid_edit, grid_store, tiles
from gis.errors import BadInput
from webmap import get_db, principal, scope
from webmap.api import geojson_response, int_arg, parse_bbox

bp = Blueprint("planner", __name__)
API = "/api/v1/versions/<int:version_id>"


@bp.get("/planner")
def planner():
    with get_db().cursor() as cur:
        versions = grid_store.list_versions(cur)
        active = grid_store.active_version(cur)
        bounds = grid_store.extent(cur, active["id"], scope().code) if active else None
    return render_template("planner.html", versions=versions, bounds=bounds, min_zoom=list(tiles.MIN_ZOOM))


@bp.post("/api/v1/versions")
def new_draft():
    """``{"from"?: version id (default: the active one), "note"?}`` → 201 and the draft."""
    body = _body()
    draft = grid_edit.new_draft(get_db(), actor=principal().name, source_version=_int(body, "from"),
                                note=_text(body, "note"))
    return jsonify(draft), 201


@bp.get(API + "/cells")
def cells(version_id):
    """``?codes=a,b`` or ``?level=&bbox=``: cells with their revisions, for the editor."""
    codes = [c for c in (request.args.get("codes") or "").split(",") if c]
    body = grid_edit.cells_geojson(get_db(), version_id, codes=codes or None, level=int_arg("level", 0, 3),
                                   bbox=parse_bbox(request.args.get("bbox")),
                                   limit=int_arg("limit", 1, 20000) or 5000, scope=scope())
    return geojson_response(body)


@bp.put(API + "/cells/<code>")
def save_cell(version_id, code):
    body = _body()
    _require_inside(version_id, code)  # (staff-only edits leave no trace in the edit log the check reads)
    return jsonify(grid_edit.save_cell(get_db(), version_id, code, revision=_revision(body), **_who(body),
                                       geometry=body.get("geometry"), name=body.get("name"), kind=body.get("kind"),
                                       population=body.get("population"), new_code=body.get("code"),
                                       staff=body.get("staff")))


@bp.post(API + "/cells")
def create_cell(version_id):
    body = _body()
    return jsonify(grid_edit.create_cell(get_db(), version_id, code=body.get("code"), name=body.get("name"),
                                         geometry=body.get("geometry"), kind=body.get("kind", "regular"),
                                         population=body.get("population"), parent_code=body.get("parent_code"),
                                         **_who(body))), 201


@bp.delete(API + "/cells/<code>")
def delete_cell(version_id, code):
    body = _body()
    _require_inside(version_id, code)
    return jsonify(grid_edit.delete_cell(get_db(), version_id, code, revision=_revision(body), **_who(body)))


@bp.post(API + "/cells/<code>/split")
def split_cell(version_id, code):
    body = _body()
    _require_inside(version_id, code)
    return jsonify(grid_edit.split_cell(get_db(), version_id, code, body.get("line"), revision=_revision(body),
                                        new_code=body.get("new_code"), new_name=body.get("new_name"),
                                        **_who(body)))


@bp.post(API + "/merge")
def merge(version_id):
    body = _body()
    revisions = _revisions(body, required=True)
    _require_inside(version_id, *revisions)
    return jsonify(grid_edit.merge_cells(get_db(), version_id, revisions,
                                         keep=body.get("keep"), **_who(body)))


@bp.post(API + "/move-vertex")
def move_vertex(version_id):
    body = _body()
    return jsonify(grid_edit.move_vertex(get_db(), version_id, body.get("from"), body.get("to"),
                                         revisions=_revisions(body), **_who(body)))


@bp.get(API + "/edits")
def edits(version_id):
    return jsonify(grid_edit.edits(get_db(), version_id, int_arg("limit", 1, 1000) or 100))


def _body():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadInput("send a JSON object")
    return body


def _require_inside(version_id, *codes):
    if not scope().is_city:
        with get_db().cursor() as cur:
            for code in codes:
                scope().require_cell(cur, version_id, code)


def _who(body):
    """Who edits (who is signed in; a body's ``actor`` is not believed), why, and the scope they edit in."""
    return {"actor": principal().name, "reason": _text(body, "reason"), "scope": scope()}


def _text(body, name):
    value = body.get(name) or ""
    if not isinstance(value, str) or len(value) > 2000:
        raise BadInput(f"{name} must be text of at most 2,000 characters")
    return value


def _int(body, name):
    value = body.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise BadInput(f"{name} must be a whole number")
    return value


def _revision(body):
    value = _int(body, "revision")
    if value is None:
        raise BadInput("revision is required: the revision of the cell you edited (409 if it moved on)")
    return value


def _revisions(body, required=False):
    value = body.get("revisions")
    if value is None and not required:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value.values()):
        raise BadInput('revisions must be an object {"<code>": <revision>, ...}')
    return value
