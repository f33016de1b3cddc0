"""``/api/v1/stats``: the evaluation of the case workflow (gis/evaluation.py) — indicators, score and rank of
every unit of a level over a period — as JSON or CSV."""
import re

from flask import Blueprint, Response, jsonify, request

from gis import evaluation
from gis.cases import CHINA_TIME
from gis.errors import BadInput
from webmap import get_db, scope

bp = Blueprint("stats", __name__, url_prefix="/api/v1")

FORMATS = ("json", "csv")


def _iso(moment):
    """An RFC 3339 time in China time, +08:00 — not in Asia/Shanghai's local mean time of before 1901 (+08:05:43),
    an offset with seconds that RFC 3339, and so the documented date-time, has no room for."""
    return moment.astimezone(CHINA_TIME).isoformat()


@bp.get("/stats")
def stats():
    """``level`` (default street), ``period`` (default week) or ``from`` and ``to`` (ISO dates, to exclusive),
    ``within`` (a cell code), ``weights`` (``closure_rate:0.5,on_time_rate:0.5``), ``format`` (json or csv)."""
    args = request.args
    fmt = args.get("format") or "json"
    if fmt not in FORMATS:
        raise BadInput(f"format must be json or csv; got {fmt!r}")
    level = args.get("level") or "street"
    period = evaluation.parse_period(args.get("period") or None, start=args.get("from") or None,
                                     end=args.get("to") or None)
    with get_db().cursor() as cur:
        result = evaluation.evaluate(cur, level, period, within=args.get("within") or None,
                                     weights=args.get("weights") or None, scope=scope())
    if fmt == "csv":
        # the label of from/to repeats what was typed (any character may separate a date from its time): only
        # letters, digits and - . _ go into the header
        name = re.sub(r"[^A-Za-z0-9._-]", "_", f"stats-{level}-{period.label}") + ".csv"
        return Response(evaluation.to_csv(result.rows, level), mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return jsonify({
        "level": level,
        "period": {"label": period.label, "from": _iso(period.start), "to": _iso(period.end)},
        "as_of": _iso(result.as_of),
        "weights": result.weights,
        "rows": result.rows,
    })
