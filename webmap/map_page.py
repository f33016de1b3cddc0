"""The command room's live map, ``/map``, and the JSON it needs beside the tiles and the live feed.

- ``GET /map``: the page (Simplified Chinese, or English with ``?lang=en``).
- ``GET /api/v1/map/classes``: class breaks of a level's density for the legend (:mod:`gis.density`).
- ``GET /api/v1/cells/<code>``: a cell's card (:mod:`gis.cell_card`).

Both JSON endpoints take the tiles' filters (``since``, ``until``, ``category``, ``status``) and ``version``.
"""
from flask import Blueprint, current_app, jsonify, render_template, request
from flask_babel import get_locale
from flask_babel import gettext as _

from gis import cell_card, density, event_classes, grid_store, live, tiles
from gis.errors import BadInput
from webmap import get_db, i18n, scope
from webmap.api import MAX_VERSION_ID, int_arg, version_arg

bp = Blueprint("map_page", __name__)

MARKER_ZOOM = 15  # incidents are drawn one by one from this zoom on, clustered


@bp.get("/map")
def live_map():
    with get_db().cursor() as cur:
        version = version_arg(cur, required=False)  # a past grid on the map, or the active one
        bounds = grid_store.extent(cur, version["id"], scope().code) if version else None
        services = event_classes.services(cur)
        _, live_cursor = live.tail(cur, 0)  # the counts the tiles will bring include every event up to here
    lang = str(get_locale())
    config = {
        "lang": lang,
        "version": version["id"] if version else None,
        "past": bool(version and version["status"] != "active"),  # an older version, shown as it was
        "bounds": bounds,
        "basemap": current_app.config["BASEMAP"],
        "min_zoom": list(tiles.MIN_ZOOM),
        "marker_zoom": MARKER_ZOOM,
        "live_cursor": str(live_cursor),
        "categories": _categories(services, lang),
        "text": _text(),
    }
    return render_template("map.html", config=config, languages=i18n.LANGUAGES, lang=lang)


@bp.get("/api/v1/map/classes")
def classes():
    """``level`` (required), ``measure`` (count, per_km2, per_1000), ``scheme`` (quantiles, fisher_jenks …),
    ``k`` (2–9), ``parent`` (a cell code: only its children), ``version`` and the filters."""
    level = int_arg("level", 0, 3)
    if level is None:
        raise BadInput("level is required: 0 (district) to 3 (unit grid)")
    filters = tiles.parse_filters(request.args)
    parent, within = request.args.get("parent") or None, scope()
    if parent is None and within.level is not None and within.level < level:
        parent = within.code  # the cells under the scope's: the same answer, without counting the whole city
    with get_db().cursor() as cur:
        body = density.classes(cur, level, filters, measure=request.args.get("measure", "count"),
                               scheme=request.args.get("scheme", "quantiles"), k=int_arg("k", 2, 9) or 5,
                               version_id=int_arg("version", 1, MAX_VERSION_ID), parent_code=parent, scope=within)
    return jsonify(body)


@bp.get("/api/v1/cells/<code>")
def cell(code):
    filters = tiles.parse_filters(request.args)
    with get_db().cursor() as cur:
        return jsonify(cell_card.card(cur, code, filters, int_arg("version", 1, MAX_VERSION_ID), scope=scope()))


def _categories(services, lang):
    """Classes with their subclasses, named in the page's language, for the category filter and the feed."""
    suffix = "en" if lang == "en" else "zh"
    out = {}
    for s in services:
        entry = out.setdefault(s["class_code"], {"code": s["class_code"], "name": s[f"class_name_{suffix}"],
                                                 "subclasses": []})
        entry["subclasses"].append({"code": s["code"], "name": s[f"name_{suffix}"]})
    return list(out.values())


def _text():
    """The script's words, in the page's language."""
    return {
        "levels": [_("District"), _("Street"), _("Community"), _("Unit grid")],
        "city": _("City"),
        "measures": {"count": _("Reports"), "per_km2": _("Reports per km²"),
                     "per_1000": _("Reports per 1,000 residents")},
        "no_population": _("No population data"),
        "states": {"reported": _("Reported"), "opened": _("Opened"), "voided": _("Voided"),
                   "dispatched": _("Dispatched"), "in_progress": _("In progress"), "handled": _("Handled"),
                   "closed": _("Closed"), "overdue": _("Overdue")},
        "new_report": _("New report"),
        "status_change": _("Status"),
        "rerouted": _("Re-routed"),
        "zoom_in": _("Zoom in to see this level"),
        "cell_card": {"code": _("Code"), "staff": _("Responsible staff"), "counts": _("Reports"),
                      "total": _("Total"), "open": _("Open"), "overdue": _("Overdue"), "closed": _("Closed"),
                      "top": _("Top categories"), "cases": _("Its cases"), "population": _("Population"),
                      "area": _("Area"), "none": _("None")},
        "live_on": _("Live"),
        "live_off": _("Reconnecting…"),
        "error": _("Error"),
    }
