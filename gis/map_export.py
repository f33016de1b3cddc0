"""The daily report map: incident density per cell of one level as one self-contained HTML file.

A folium map of the level's cells coloured by class (:mod:`gis.density`), with a legend (the measure,
each class's bounds and how many cells it holds) and a title (the period, the filters, when it was
made). The file opens offline and asks no host for anything: Leaflet's JavaScript and CSS are inlined from
the project's ``node_modules``, folium's other default assets (jQuery, Bootstrap, Font Awesome, all from
CDNs) are dropped, the legend is plain HTML (branca's colour map would pull d3 from a CDN), and there is no
base map unless ``tiles`` names one.

>>> result = export_map(db, Path("report.html"), level=3, period="2026-11-16..2026-11-22",
...                     scheme="fisher_jenks", node_modules=settings.node_modules)
>>> result["cells"], result["total"], result["breaks"], result["bytes"]   # the demo city: ~8 MB
(25708, 7761, [0, 2, 8, 36, 87], 7975...)
"""
import datetime as dt
import html
import json
import re
from dataclasses import dataclass
from pathlib import Path

import folium
from branca.element import Element, MacroElement
from jinja2 import Template

from gis import density, tiles
from gis.errors import BadInput, NotFound
from gis.incidents import CHINA_TIME

# Cells are simplified for the file's size (degrees: ~20, 10, 5, 2 m); each cell on its own, so
# neighbours may part by up to that much, far below a pixel at the zooms each level is looked at.
SIMPLIFY_DEG = {0: 2e-4, 1: 1e-4, 2: 5e-5, 3: 2e-5}
DIGITS = 5  # of coordinates: ~1 m
PALETTE = ("#ffffcc", "#ffeda0", "#fed976", "#feb24c", "#fd8d3c", "#fc4e2a", "#e31a1c", "#bd0026", "#800026")
NO_DATA = "#d9d9d9"  # cells without a value (per_1000 of a cell whose population is unknown)
ROLLING = {"1h": (dt.timedelta(hours=1), "近1小时 last hour"), "7d": (dt.timedelta(days=7), "近7天 last 7 days"),
           "30d": (dt.timedelta(days=30), "近30天 last 30 days")}
SCHEME_NAMES = {"quantiles": "分位数 quantiles", "fisher_jenks": "Fisher-Jenks 最优分级",
                "natural_breaks": "自然断点 natural breaks", "equal_interval": "等间距 equal interval"}
_DAYS = re.compile(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})")
_TILE_URL = re.compile(r"^https?://[^\s\"'<>]+$")


@dataclass(frozen=True)
class Period:
    """Incidents reported from ``start`` (inclusive) to ``end`` (exclusive)."""

    start: dt.datetime
    end: dt.datetime
    label: str


def parse_period(text, now=None):
    """The period of a report map, in China time.

    Parameters
    ----------
    text : str
        ``1h``, ``7d``, ``30d``: that long up to now; ``today``: from midnight to now;
        ``YYYY-MM-DD..YYYY-MM-DD``: from the first day's midnight to the end of the last day (both included).
    now : datetime, optional
        Aware; the clock's by default.

    >>> parse_period("2026-11-16..2026-11-22").end
    datetime.datetime(2026, 11, 23, 0, 0, tzinfo=datetime.timezone(datetime.timedelta(seconds=28800)))
    """
    now = (now or dt.datetime.now(CHINA_TIME)).astimezone(CHINA_TIME)
    text = (text or "").strip()
    if text in ROLLING:
        span, word = ROLLING[text]
        return Period(now - span, now, f"{word}: {now - span:%Y-%m-%d %H:%M} – {now:%Y-%m-%d %H:%M}")
    if text == "today":
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return Period(midnight, now, f"今天 today: {midnight:%Y-%m-%d %H:%M} – {now:%H:%M}")
    if m := _DAYS.fullmatch(text):
        try:
            first, last = (dt.date.fromisoformat(day) for day in m.groups())
        except ValueError:
            raise BadInput(f"period {text!r} names a day that does not exist") from None
        if first > last:
            raise BadInput(f"period {text!r}: the first day is after the last")
        start = dt.datetime(first.year, first.month, first.day, tzinfo=CHINA_TIME)
        end = dt.datetime(last.year, last.month, last.day, tzinfo=CHINA_TIME) + dt.timedelta(days=1)
        return Period(start, end, f"{first}" if first == last else f"{first} – {last} (含首尾 both days included)")
    raise BadInput(f"period must be 1h, today, 7d, 30d or YYYY-MM-DD..YYYY-MM-DD (both days included); "
                   f"got {text!r}")


def export_map(db, out, *, level, period="7d", measure="count", scheme="quantiles", k=5, category=None,
               status=None, title=None, version_id=None, within=None, tiles_url=None, attribution=None,
               node_modules, now=None):
    """Write the density map of one level to ``out``, atomically: a failure leaves nothing there.

    Parameters
    ----------
    db : gis.db.Database
    out : Path
        An ``.html`` file in an existing directory; replaced if it exists.
    level, measure, scheme, k, version_id, within
        As :func:`gis.density.classes` (``within`` is its ``parent_code``).
    period : str
        See :func:`parse_period`.
    category, status : str, optional
        Comma-separated, as the map's filters (:func:`gis.tiles.parse_filters`).
    title : str, optional
        Default: the level's name and "incident density".
    tiles_url, attribution : str, optional
        A base map (``https://…/{z}/{x}/{y}.png``) and its attribution; the file then needs the network.
    node_modules : Path
        Where ``leaflet/dist`` is (:attr:`gis.settings.Settings.node_modules`).

    Returns
    -------
    dict
        ``path``, ``bytes``, ``cells``, ``total``, ``breaks``, ``counts``, ``period`` (a :class:`Period`).

    Raises
    ------
    BadInput
        Any unusable argument, before anything is read or written.
    NotFound
        No such version, parent cell, or cells of the level; Leaflet missing from ``node_modules``.
    """
    out = Path(out)
    _check_out(out)
    span = parse_period(period, now)
    filters = tiles.parse_filters({"since": span.start.isoformat(), "until": span.end.isoformat(),
                                   "category": category, "status": status})
    if tiles_url is not None and (not _TILE_URL.match(tiles_url)
                                  or not all(p in tiles_url for p in ("{z}", "{x}", "{y}"))):
        raise BadInput(f"tiles must be an http(s) URL with {{z}}, {{x}} and {{y}}; got {tiles_url!r}")
    if tiles_url is not None and not attribution:
        raise BadInput("a base map needs its attribution: give attribution with tiles")
    leaflet = _leaflet(Path(node_modules))
    density.class_breaks([], scheme, k)  # checks scheme and k before the database is asked
    density.measure_values([], measure)

    with db.cursor() as cur:
        rows = density.cell_counts(cur, level, filters, version_id, within)
        if not rows:
            raise NotFound(f"no cells of level {level} to map" + (f" under {within}" if within else ""))
        cur.execute(_GEOMETRY_SQL, {"ids": [row["id"] for row in rows], "tolerance": SIMPLIFY_DEG[level],
                                    "digits": DIGITS})
        geometry = {r["id"]: r["geometry"] for r in cur.fetchall()}
        cur.execute("select name_zh, name_en from grid_level where level = %s", (level,))
        level_name = cur.fetchone()
    summary = density.classify(rows, measure, scheme, k)
    values = density.measure_values(rows, measure)

    made = (now or dt.datetime.now(CHINA_TIME)).astimezone(CHINA_TIME)
    title = title or f"{level_name['name_zh']}事件密度 Incident density by {level_name['name_en']}"
    subtitle = " · ".join(filter(None, [
        f"{span.label} 北京时间 China time",
        f"类别 category {category}" if category else None,
        f"状态 status {status}" if status else None,
        f"范围 within {within}" if within else None,
        f"生成于 generated {made:%Y-%m-%d %H:%M}",
    ]))
    features = [_feature(row, value, summary["breaks"], geometry[row["id"]]) for row, value in zip(rows, values)]
    page = _page(title, subtitle, features, _colours(len(summary["breaks"])), _legend(summary, values), leaflet,
                 tiles_url, attribution)
    _write(out, page)
    return {"path": out, "bytes": out.stat().st_size, "cells": summary["cells"], "total": summary["total"],
            "breaks": summary["breaks"], "counts": summary["counts"], "period": span}


_GEOMETRY_SQL = """
select id, ST_AsGeoJSON(ST_SimplifyPreserveTopology(geom, %(tolerance)s), %(digits)s) as geometry
  from grid_cell
 where id = any(%(ids)s::bigint[])
"""


def _check_out(out):
    if out.suffix.lower() not in (".html", ".htm"):
        raise BadInput(f"out must name an .html file; got {out.name!r}")
    if not out.parent.is_dir():
        raise BadInput(f"cannot write {out}: directory {out.parent} does not exist")
    if out.is_dir():
        raise BadInput(f"cannot write {out}: it is a directory")


def _leaflet(node_modules):
    """Leaflet's JS and CSS, to inline. Its CSS's images (layer control, default marker) are not used
    here and would be requests beside the file: dropped."""
    dist = node_modules / "leaflet" / "dist"
    try:
        js = (dist / "leaflet.js").read_text(encoding="utf-8")
        css = (dist / "leaflet.css").read_text(encoding="utf-8")
    except OSError:
        raise NotFound(f"Leaflet is missing from {dist}: `make run` installs it (npm)") from None
    js = re.sub(r"//# sourceMappingURL=\S+\s*$", "", js)  # a source map would be one more request
    css = re.sub(r"url\(images/[^)]*\)", "none", css)
    return js, css


def _json(value):
    """JSON to put inside a <script>: nothing in it can close the element or open a comment."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _feature(row, value, breaks, geometry):
    shown = float(f"{value:.4g}") if isinstance(value, float) else value  # for the tooltip
    properties = {"code": row["code"], "name": row["name"], "count": row["count"], "value": shown,
                  "class": density.class_of(value, breaks)}
    return f'{{"type":"Feature","properties":{_json(properties)},"geometry":{geometry}}}'


def _number(value):
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _legend(summary, values):
    """The legend as plain HTML: a swatch, the bounds and the number of cells of each class."""
    breaks, whole = summary["breaks"], all(isinstance(b, int) for b in summary["breaks"])
    known = [v for v in values if v is not None]
    low = min(known) if known else 0
    rows, colours = [], _colours(len(breaks))
    for i, (high, count) in enumerate(zip(breaks, summary["counts"])):
        if whole:  # integer classes: previous bound + 1 … bound
            first = low if i == 0 else breaks[i - 1] + 1
            bounds = _number(high) if first == high else f"{_number(first)}–{_number(high)}"
        else:
            bounds = f"{_number(low if i == 0 else breaks[i - 1])} – {_number(high)}"
        rows.append((colours[i], bounds, count))
    if summary["classified"] < summary["cells"]:
        rows.append((NO_DATA, "无数据 no data", summary["cells"] - summary["classified"]))
    zh, en = density.MEASURES[summary["measure"]]
    body = "".join(f'<tr><td><i style="background:{colour}"></i></td><td>{html.escape(bounds)}</td>'
                   f'<td class="gm-n">{count:,}</td></tr>' for colour, bounds, count in rows)
    return (f'<div class="gm-legend" id="legend"><h2>{zh} {html.escape(en)}</h2>'
            f'<table><tr><th></th><th>分级 class</th><th>区域数 cells</th></tr>{body}</table>'
            f'<p>{SCHEME_NAMES[summary["scheme"]]}, {len(breaks)} 级 classes · {summary["total"]:,} 件 incidents'
            f' · {summary["cells"]:,} 区域 cells</p></div>')


def _colours(n):
    """n colours of the palette, evenly spread from the lightest to the darkest."""
    if n == 1:  # a single class: every cell alike (all 0, in a quiet period)
        return [PALETTE[0]]
    return [PALETTE[round(i * (len(PALETTE) - 1) / (n - 1))] for i in range(n)]


class _Choropleth(MacroElement):
    """The cells as one GeoJSON layer on the canvas renderer (tens of thousands of SVG paths are slow),
    coloured by the class in each feature's properties, with one tooltip for all of them."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        window.gridmapReport = gridmapChoropleth({{ this._parent.get_name() }}, {{ this.data }},
                                                 {{ this.colours }}, {{ this.no_data }}, {{ this.weight }});
        {% endmacro %}
    """)

    def __init__(self, data, colours, weight):
        super().__init__()
        self._name = "Choropleth"
        self.data, self.colours, self.no_data, self.weight = data, _json(colours), _json(NO_DATA), _json(weight)


# Builds the layer; names and codes go into the tooltip as text, never as HTML.
_REPORT_JS = """
function gridmapChoropleth(map, data, colours, noData, weight) {
  var layer = L.geoJSON(data, {
    style: function (f) {
      var k = f.properties["class"];
      return {fillColor: k === null ? noData : colours[k], fillOpacity: 0.8, color: "#555", weight: weight};
    }
  });
  layer.bindTooltip(function (l) {
    var p = l.feature.properties, box = document.createElement("div");
    [p.name + " " + p.code, "事件 incidents: " + p.count,
     p.value === null ? "无数据 no data" : "值 value: " + p.value].forEach(function (line) {
      box.appendChild(document.createElement("div")).textContent = line;
    });
    return box;
  }, {sticky: true});
  layer.addTo(map);
  L.control.scale({imperial: false}).addTo(map);
  map.fitBounds(layer.getBounds(), {paddingTopLeft: [0, 60]});  // clear of the title
  return {map: map, layer: layer};
}
"""

_REPORT_CSS = """
html, body { font-family: "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; }
.gm-title { position: absolute; z-index: 1000; top: 10px; left: 60px; right: 60px; pointer-events: none;
  text-align: center; }
.gm-title > div { display: inline-block; background: rgba(255,255,255,.9); padding: 6px 14px;
  border-radius: 4px; box-shadow: 0 1px 4px rgba(0,0,0,.3); pointer-events: auto; }
.gm-title h1 { font-size: 18px; margin: 0 0 2px; }
.gm-title p { font-size: 12px; margin: 0; color: #444; }
.gm-legend { position: absolute; z-index: 1000; bottom: 24px; right: 10px; background: rgba(255,255,255,.92);
  padding: 8px 10px; border-radius: 4px; box-shadow: 0 1px 4px rgba(0,0,0,.3); font-size: 12px; }
.gm-legend h2 { font-size: 13px; margin: 0 0 4px; }
.gm-legend table { border-collapse: collapse; }
.gm-legend td, .gm-legend th { padding: 1px 6px 1px 0; text-align: left; font-weight: normal; color: #555; }
.gm-legend td { color: #000; }
.gm-legend .gm-n { text-align: right; }
.gm-legend i { display: inline-block; width: 18px; height: 12px; border: 1px solid #888; vertical-align: middle; }
.gm-legend p { margin: 4px 0 0; color: #555; }
"""


class _Raw(Element):
    """HTML put in the page as it is: branca's Element would compile it as a Jinja template (slow for
    Leaflet's 150 kB, and a title or cell name with ``{{`` in it would be evaluated)."""

    def __init__(self, text):
        super().__init__()
        self.text = text

    def render(self, **kwargs):
        return self.text


def _page(title, subtitle, features, colours, legend, leaflet, tiles_url, attribution):
    """The whole HTML page, with folium."""
    m = folium.Map(location=[0, 0], zoom_start=2, tiles=None, prefer_canvas=True,
                   attribution_control=tiles_url is not None)
    m.default_js, m.default_css = [], []  # CDN links all; Leaflet is inlined below instead
    root = m.get_root()
    root.title = html.escape(title)
    js, css = leaflet
    root.header.add_child(_Raw(f"<style>{css}</style><style>{_REPORT_CSS}</style>"), name="gm_css")
    root.header.add_child(_Raw(f"<script>{js}</script><script>{_REPORT_JS}</script>"), name="gm_js")
    if tiles_url is not None:
        folium.TileLayer(tiles=tiles_url, attr=attribution, max_zoom=19).add_to(m)
    # thinner borders when there are many cells: at a city's zoom, unit grids' borders would hide their colours
    weight = 0.6 if len(features) <= 2000 else 0.2
    m.add_child(_Choropleth(f'{{"type":"FeatureCollection","features":[{",".join(features)}]}}', colours, weight))
    root.html.add_child(_Raw(f'<div class="gm-title" id="title"><div><h1>{html.escape(title)}</h1>'
                             f'<p>{html.escape(subtitle)}</p></div></div>{legend}'))
    return root.render()


def _write(out, text):
    tmp = out.with_name(f".{out.name}.partial")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise BadInput(f"cannot write {out}: {exc.strerror or exc}") from None
