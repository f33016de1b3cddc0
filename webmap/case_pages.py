"""The command room's pages: a case with its timeline, a unit's worklist, the rankings.

Each page is a Jinja template with the parts that do not change while it is open (what the case is, the
query in the forms); a small script per page fetches the rest from the JSON API and builds it as DOM
nodes. Nothing here decides anything: the API and ``gis`` do.
"""
import datetime as dt

from flask import Blueprint, render_template, request

from gis import case_workflow, cases
from gis.errors import NotFound
from webmap import get_db, scope

bp = Blueprint("case_pages", __name__)

SCOPES = {"mine": "本单位待办 mine", "level": "本层级 my level"}
RANK_LEVELS = {"grid": "单元网格 unit grid", "community": "社区/村 community", "street": "街道/乡镇 street",
               "district": "区县 district", "department": "部门 department", "post": "岗位 post"}
PERIODS = {"day": "日 day", "week": "周 week", "month": "月 month"}
UNIT_KIND_NAMES = {"grid": "单元网格 unit grid", "community": "社区/村 community", "street": "街道/乡镇 street",
                   "department": "部门 department"}


@bp.app_template_filter("china_time")
def china_time(value):
    """An ISO 8601 timestamp (or a datetime) as ``2026-11-20 09:00`` in China time; ``—`` for none."""
    if not value:
        return "—"
    when = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    if when.tzinfo is None:
        when = when.replace(tzinfo=cases.CHINA_TIME)
    return when.astimezone(cases.CHINA_TIME).strftime("%Y-%m-%d %H:%M")


@bp.get("/cases/<public_id>")
def case(public_id):
    """One case; its changing parts (status, timeline, map, form) are drawn by case.js from the JSON."""
    try:
        with get_db().cursor() as cur:
            doc = cases.get(cur, public_id, scope=scope())
    except NotFound:
        return render_template("case_missing.html", public_id=public_id), 404
    actions = {a.name: {"name_zh": a.name_zh, "needs": list(a.needs)} for a in case_workflow.ACTIONS.values()}
    unit_kinds = {kind: UNIT_KIND_NAMES.get(kind, kind) for kind in case_workflow.UNIT_KINDS}
    return render_template("case.html", doc=doc, actions=actions, unit_kinds=unit_kinds)


@bp.get("/worklist")
def worklist():
    """A unit's open cases, overdue first (worklist.js asks ``/api/v1/cases`` with this page's query)."""
    args = request.args
    return render_template("worklist.html", unit=args.get("unit", ""), scope=args.get("scope", "mine"),
                           overdue=args.get("overdue", "0") not in ("0", "false", ""), scopes=SCOPES)


@bp.get("/rankings")
def rankings():
    """Indicators and ranks of one level over a period (rankings.js asks ``/api/v1/stats``)."""
    args = request.args
    query = {key: args[key].strip() for key in ("level", "period", "from", "to", "within", "weights")
             if args.get(key, "").strip()}
    query.setdefault("level", "street")
    if "from" in query or "to" in query:
        query.pop("period", None)  # dates typed in win over the period the selector still shows
    else:
        query.setdefault("period", "week")
    return render_template("rankings.html", query=query, levels=RANK_LEVELS, periods=PERIODS)
