"""gridmap map export: the daily report map as one HTML file that asks no host for anything, read back as
HTML and drawn by a real headless Chromium, over the fixture partition and reports made through the API."""
import datetime as dt
import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

import fixtures
from gis import map_export
from gis.incidents import CHINA_TIME
from test_browser import browser  # noqa: F401  (fixture: Debian's Chromium)
from test_grid_import import run
from test_routing import active  # noqa: F401  (fixture: the fixture partition, active)
from test_tiles import NE_GRID, SW_GRID, reports  # noqa: F401  (reports: fixture)

# the reports are on Thursday 19 and Friday 20 November 2026
DAYS = "2026-11-19..2026-11-20"


class Page(HTMLParser):
    """The tags of a page with their attributes, and the text outside scripts and styles."""

    def __init__(self, text):
        super().__init__()
        self.tags, self.text, self._skip = [], [], 0
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._skip += tag in ("script", "style")

    def handle_endtag(self, tag):
        self._skip -= tag in ("script", "style")

    def handle_data(self, data):
        if not self._skip and data.strip():
            self.text.append(data.strip())


@pytest.fixture
def out_dir(tmp_path):
    """A directory for the maps alone (tmp_path holds the fixture partition's files too)."""
    path = tmp_path / "maps"
    path.mkdir()
    return path


def export(runner, out, *args):
    return run(runner, "map", "export", "--out", out, *args)


def read(out):
    """The page, and its cells' GeoJSON ``{code: properties}``."""
    text = Path(out).read_text(encoding="utf-8")
    start = text.index('{"type":"FeatureCollection"')
    collection, _ = json.JSONDecoder().raw_decode(text, start)
    cells = {f["properties"]["code"]: f["properties"] for f in collection["features"]}
    assert len(cells) == len(collection["features"])
    assert all(f["type"] == "Feature" and f["geometry"]["type"] in ("Polygon", "MultiPolygon")
               for f in collection["features"])
    return Page(text), cells


def outside_urls(page):
    """Every src or href of the page that names a host (or is protocol-relative)."""
    return [value for _, attrs in page.tags for name, value in attrs.items()
            if name in ("src", "href") and value and re.match(r"^\s*([a-z][a-z0-9+.-]*:)?//", value, re.I)]


def test_the_map_of_the_unit_grids(runner, reports, out_dir):  # noqa: F811
    out = out_dir / "report.html"
    result = export(runner, out, "--level", 3, "--period", DAYS, "--scheme", "quantiles")
    assert result.exit_code == 0, result.output
    assert "8 level-3 cells, 4 incidents" in result.output
    page, cells = read(out)
    assert set(cells) == {code for code, *_ in fixtures.cells(3)}
    assert {code: p["count"] for code, p in cells.items()} == {
        **dict.fromkeys(cells, 0), SW_GRID: 3, NE_GRID: 1}
    assert cells[SW_GRID]["name"] == "西街道南社区第1网格"
    # three distinct counts, three classes: 0, 1, 2–3
    assert {code: p["class"] for code, p in cells.items()} == {**dict.fromkeys(cells, 0), SW_GRID: 2, NE_GRID: 1}
    text = " ".join(page.text)
    assert "单元网格事件密度 Incident density by unit grid" in text
    assert "2026-11-19 – 2026-11-20 (含首尾 both days included) 北京时间 China time" in text
    assert re.search(r"生成于 generated \d{4}-\d{2}-\d{2} \d{2}:\d{2}", text)
    assert "<title>单元网格事件密度 Incident density by unit grid</title>" in out.read_text(encoding="utf-8")
    assert "事件数 incidents" in text
    assert "分位数 quantiles, 3 级 classes · 4 件 incidents · 8 区域 cells" in text
    legend = re.findall(r'<td>([^<]*)</td><td class="gm-n">([^<]*)</td>', out.read_text(encoding="utf-8"))
    assert legend == [("0", "6"), ("1", "1"), ("2–3", "1")]  # each class's bounds and cells
    assert outside_urls(page) == []
    assert not [a for tag, a in page.tags if tag in ("script", "link") and (a.get("src") or a.get("href"))]
    assert not [tag for tag, _ in page.tags if tag in ("link", "img", "iframe")]
    assert not re.search(r"jquery|bootstrap|font-?awesome|cdn\.|d3\.js", out.read_text(encoding="utf-8"), re.I)
    assert list(out_dir.iterdir()) == [out]  # no partial file left beside it


def test_filters_measure_scheme_and_title(runner, reports, out_dir):  # noqa: F811
    out = out_dir / "report.html"
    result = export(runner, out, "--level", 1, "--period", "2026-11-20..2026-11-20", "--category", "01",
                    "--status", "reported", "--measure", "per_km2", "--scheme", "equal_interval", "--k", 2,
                    "--title", "郑州 <日报> {{ 7 * 7 }}")
    assert result.exit_code == 0, result.output
    page, cells = read(out)
    # Friday: one 0101 report (reported) in the west street, one 0102 in the east; the west's 0102 is dispatched
    assert {code: p["count"] for code, p in cells.items()} == {"410105001": 1, "410105002": 1}
    assert cells["410105001"]["value"] == pytest.approx(1 / 50.7, rel=0.01)  # per km²: a street is ~50.7 km²
    text = " ".join(page.text)
    assert "郑州 <日报> {{ 7 * 7 }}" in text  # escaped in the HTML, and never evaluated as a template
    assert "类别 category 01 · 状态 status reported" in text
    assert "每平方公里事件数 incidents per km²" in text and "等间距 equal interval" in text


def test_the_cells_under_a_street(runner, reports, out_dir):  # noqa: F811
    out = out_dir / "report.html"
    result = export(runner, out, "--level", 3, "--period", DAYS, "--within", "410105001")
    assert result.exit_code == 0, result.output
    page, cells = read(out)
    assert {code: p["count"] for code, p in cells.items()} == {
        "410105001001001": 3, "410105001001002": 0, "410105001002001": 0, "410105001002002": 0}
    assert "范围 within 410105001" in " ".join(page.text)


def test_a_period_without_incidents_and_an_unknown_population(runner, reports, out_dir):  # noqa: F811
    out = out_dir / "report.html"
    result = export(runner, out, "--level", 3, "--period", "2026-10-01..2026-10-31")
    assert result.exit_code == 0, result.output
    page, cells = read(out)
    assert {p["count"] for p in cells.values()} == {0} and {p["class"] for p in cells.values()} == {0}
    assert "class bounds 0" in result.output
    result = export(runner, out, "--level", 3, "--period", DAYS, "--measure", "per_1000")
    assert result.exit_code == 0, result.output
    page, cells = read(out)  # the fixture has no populations: no cell has a value
    assert {(p["value"], p["class"]) for p in cells.values()} == {(None, None)}
    assert "无数据 no data" in page.text and "8" in page.text


def test_a_base_map_only_when_asked_with_its_attribution(runner, active, out_dir):  # noqa: F811
    out = out_dir / "report.html"
    assert export(runner, out, "--level", 0, "--period", DAYS).exit_code == 0
    assert "L.tileLayer(" not in out.read_text(encoding="utf-8")
    result = export(runner, out, "--level", 0, "--period", DAYS, "--tiles", "https://tiles.example/{z}/{x}/{y}.png",
                    "--attribution", '<a href="https://tiles.example/copyright">Example</a>')
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert '"https://tiles.example/{z}/{x}/{y}.png"' in text and "tiles.example/copyright" in text
    assert outside_urls(Page(text)) == []  # the attribution is shown by Leaflet, not a tag of the file


@pytest.mark.parametrize("args, message", [
    (["--level", 4], "Invalid value for '--level': 4 is not in the range 0<=x<=3"),
    (["--level", "x"], "Invalid value for '--level': 'x' is not a valid integer"),
    (["--period", "2w"], "period must be 1h, today, 7d, 30d or YYYY-MM-DD..YYYY-MM-DD"),
    (["--period", "2026-11-31..2026-12-01"], "period '2026-11-31..2026-12-01' names a day that does not exist"),
    (["--period", "2026-11-20..2026-11-19"], "the first day is after the last"),
    (["--measure", "density"], "measure 'density' is not one of count, per_km2, per_1000"),
    (["--scheme", "jenks"], "scheme 'jenks' is not one of quantiles, fisher_jenks, natural_breaks, equal_interval"),
    (["--k", 1], "k must be a whole number from 2 to 9; got 1"),
    (["--k", 10], "k must be a whole number from 2 to 9; got 10"),
    (["--category", "1"], "category '1' is not a subclass (4 digits) or class (2 digits) code"),
    (["--status", "lost"], "status 'lost' is not one of open, overdue"),
    (["--within", "410105009"], "no cell 410105009 in grid version 1"),
    (["--within", "410105001001001"], "cell 410105001001001 is at level 3: it has no cells of level 3 under it"),
    (["--version", 9], "grid version 9 does not exist"),
    (["--tiles", "https://tiles.example/tile.png", "--attribution", "x"], "tiles must be an http(s) URL with {z}"),
    (["--tiles", "https://tiles.example/{z}/{x}/{y}.png"], "a base map needs its attribution"),
])
def test_bad_input_is_refused_and_nothing_is_written(runner, active, out_dir, args, message):  # noqa: F811
    out = out_dir / "report.html"
    result = export(runner, out, *(["--level", 3] if "--level" not in args else []), "--period", DAYS, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize("out, message", [
    ("missing/report.html", "directory {tmp}/missing does not exist"),
    ("report.txt", "out must name an .html file; got 'report.txt'"),
    ("dir.html", "is a directory"),
])
def test_a_bad_out_path(runner, active, out_dir, out, message):  # noqa: F811
    (out_dir / "dir.html").mkdir()
    result = export(runner, out_dir / out, "--level", 3, "--period", DAYS)
    assert result.exit_code == 2 and message.format(tmp=out_dir) in result.output
    assert sorted(p.name for p in out_dir.iterdir()) == ["dir.html"]


def test_a_failed_write_leaves_the_old_file(runner, active, out_dir, monkeypatch):  # noqa: F811
    out = out_dir / "report.html"
    out.write_text("yesterday's map")

    def full_disk(self, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "replace", full_disk)
    result = export(runner, out, "--level", 3, "--period", DAYS)
    assert result.exit_code == 2 and "cannot write" in result.output and "No space left on device" in result.output
    assert [p.name for p in out_dir.iterdir()] == ["report.html"]
    assert out.read_text() == "yesterday's map"


def test_periods():
    now = dt.datetime(2026, 11, 20, 9, 30, tzinfo=CHINA_TIME)
    p = map_export.parse_period("1h", now)
    assert (p.start, p.end) == (now - dt.timedelta(hours=1), now)
    p = map_export.parse_period("today", now)
    assert (p.start, p.end) == (dt.datetime(2026, 11, 20, tzinfo=CHINA_TIME), now)
    assert p.label == "今天 today: 2026-11-20 00:00 – 09:30"
    assert map_export.parse_period("7d", now).start == dt.datetime(2026, 11, 13, 9, 30, tzinfo=CHINA_TIME)
    assert map_export.parse_period("30d", now).start == dt.datetime(2026, 10, 21, 9, 30, tzinfo=CHINA_TIME)
    p = map_export.parse_period("2026-11-16..2026-11-22", now)
    assert (p.start, p.end) == (dt.datetime(2026, 11, 16, tzinfo=CHINA_TIME),
                                dt.datetime(2026, 11, 23, tzinfo=CHINA_TIME))
    utc = dt.datetime(2026, 11, 19, 17, 0, tzinfo=dt.timezone.utc)  # already the 20th in China
    assert map_export.parse_period("today", utc).start == dt.datetime(2026, 11, 20, tzinfo=CHINA_TIME)


@pytest.mark.browser
def test_the_file_draws_offline_in_chromium(browser, runner, reports, out_dir):  # noqa: F811
    out = out_dir / "report.html"
    assert export(runner, out, "--level", 3, "--period", DAYS).exit_code == 0
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    errors, requests = [], []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    try:
        page.goto(out.as_uri())
        page.wait_for_function("() => window.gridmapReport !== undefined", timeout=20000)
        drawn = page.evaluate("""() => {
            const {map, layer} = gridmapReport, cells = layer.getLayers();
            const renderer = cells[0]._renderer, canvas = renderer._container, dpr = window.devicePixelRatio || 1;
            const pixel = (lat, lon) => {  // the canvas's pixel at a point, in the renderer's own frame
                const p = map.latLngToLayerPoint([lat, lon]).subtract(renderer._bounds.min);
                return Array.from(canvas.getContext("2d").getImageData(p.x * dpr, p.y * dpr, 1, 1).data);
            };
            return {cells: cells.length, canvas: renderer instanceof L.Canvas, zoom: map.getZoom(),
                    sw: pixel(34.725, 113.6125), ne: pixel(34.775, 113.6875), empty: pixel(34.725, 113.6375)};
        }""")
        assert drawn["cells"] == 8 and drawn["canvas"] and drawn["zoom"] >= 10
        for rgba, colour in ((drawn["sw"], "#800026"), (drawn["ne"], "#fd8d3c"), (drawn["empty"], "#ffffcc")):
            assert rgba[3] > 150, rgba  # filled (fill opacity 0.8)
            assert rgba[:3] == pytest.approx([int(colour[i:i + 2], 16) for i in (1, 3, 5)], abs=3), (rgba, colour)
        legend = page.locator("#legend")
        assert legend.is_visible() and "2–3" in legend.inner_text()
        assert "单元网格事件密度" in page.locator("#title").inner_text()
        page.screenshot(path=str(out_dir / "report.png"))
    finally:
        context.close()
    assert errors == []
    assert requests == [out.as_uri()]
    assert os.path.getsize(out_dir / "report.png") > 10_000
