"""``/api/v1/cases``: a case with its timeline, actions on it, worklists and overdue cases."""
from flask import Blueprint, current_app, jsonify, request

from gis import cases
from gis.errors import BadInput
from webmap import get_db, principal, scope
from webmap.api import int_arg

bp = Blueprint("cases", __name__, url_prefix="/api/v1/cases")

MAX_BODY = 64 * 1024



@bp.get("/<public_id>")
def show(public_id):
    """The incident with its case: holder, deadline, events (oldest first) and the actions allowed next."""
    with get_db().cursor() as cur:
        return jsonify(cases.get(cur, public_id, scope=scope()))


@bp.post("/<public_id>/actions")
def act(public_id):
    """Act on a case: ``{"action", "version", "actor"?: {"unit"}, ...the action's fields}``; the actor recorded
    is who is signed in (or the key), acting as ``actor.unit`` (by default the unit of its scope).

    200 with the case as it is now; 400 for a wrong field, 404 for a missing case, 409 for a stale version,
    a unit that does not hold the case or an action its state does not allow (with the allowed ones)."""
    body = request.get_json(silent=True)
    if body is None:
        raise BadInput("send the action as a JSON object (Content-Type: application/json)")
    who = principal()
    request_ = cases.parse_action(body, signed_in=who.name, default_unit=who.scope.default_unit())
    return jsonify(cases.act(get_db(), public_id, request_, current_app.extensions["gridmap_case_rules"],
                             scope=who.scope))


@bp.get("")
def worklist():
    """A unit's worklist: ``unit=street:410102001`` (or ``department:CGJ``, ``city``), ``scope=mine|level``,
    ``overdue=1`` for overdue cases only; overdue first, then by deadline. Without ``unit``: every overdue
    case of the city, most overdue first."""
    unit = request.args.get("unit")
    limit = int_arg("limit", 1, 1000) or 100
    overdue_only = request.args.get("overdue", "0") not in ("0", "false", "")
    with get_db().cursor() as cur:
        if not unit:
            if not overdue_only:
                raise BadInput("name a unit (unit=kind:code), or ask for overdue=1 to list every overdue case")
            rows = cases.overdue(cur, limit=limit, scope=scope())
            return jsonify({"cases": [{**row, "due_at": row["due_at"].isoformat()} for row in rows]})
        docs = cases.worklist(cur, unit, reach=request.args.get("scope", "mine"), overdue_only=overdue_only,
                              limit=limit, scope=scope())
    return jsonify({"unit": unit, "cases": docs})
