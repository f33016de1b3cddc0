"""A deterministic history of field reports and their cases for the demo: :func:`generate_history` draws it
(:func:`generate`: the incidents alone), :func:`load` stores it.

Nothing here is real. The model, in short:

* **Where.** About a third of the reports fall in a few dozen Gaussian hot spots (σ 60–450 m) centred on
  busy urban unit grids — the special grids of markets, plazas, hospitals, parks and schools, and the
  smallest, most populous grids of the old core; each hot spot has its own favourite categories
  (street vending at a market, parking at a hospital...). The rest is background spread over the unit
  grids with a weight that makes the density per km² fall steeply with grid size, so the dense urban
  core gets many and remote village grids few. About 0.6 % lie just outside the city's outline (GPS
  error, 5–150 m out), so some are snapped and some unrouted.
* **What.** City appearance (市容环境) and street order (街面秩序) make half of all reports; the twelve
  emergency subclasses (突发事件 and a few others) are rare. Descriptions come from a few templates per
  class around the subclass name and a place ("小区北门", "公交站台旁" ...).
* **When.** Over ``days`` days before ``end`` (China time for the daily rhythm): patrol-found categories
  follow the grid workers' shifts (peaks mid-morning and late afternoon, few at night, weekends ~45 %
  quieter); complaint-type categories (noise, fumes, disputes...) come in all day and in the evening
  too, and as often at weekends.
* **Who.** Patrol categories mostly from the field app (the grid worker of the place), complaints more
  often through the 12345 hotline or Open311.
* **Cases.** Each report becomes a case that follows the rules of the live workflow, acted on up to
  ``end``: :mod:`gis.demo_cases` draws them (how: its docstring).

Same seed, same cells, same frame: every draw comes from one ``numpy.random.default_rng(seed)``.
The model guesses the level a case starts at from the unit grids alone (the router snaps points within
``snap_m`` of a grid to it); :func:`load` routes first, takes the cells' codes for holders and units from
the router, and would leave a case it guessed wrong as reported (it never does on a four-level partition).
"""
from __future__ import annotations

import csv
import datetime as dt
import functools
import hashlib
import io
import json
import struct
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely
from psycopg2.extras import RealDictCursor

from gis import batch_routing, cases, demo_cases, grid_store
from gis import crs as crs_mod
from gis.demo_cases import (CASE_COLUMNS, CITY, COMMUNITY, DISTRICT, EVENT_COLUMNS, EVENT_TIMES, GRID, LEVELS,
                            M_PER_DEG, NO_TIME, POST_LEVEL, STREET)
from gis.demo_people import SURNAMES, person_names
from gis.errors import BadInput, NotFound
from gis.event_classes import CLASSES_CSV
from gis.work_calendar import WorkCalendar

DEFAULT_SEED = 20261123
CHINA_TIME = dt.timezone(dt.timedelta(hours=8))
DEFAULT_END = pd.Timestamp("2026-11-23T00:00:00+08:00")
CLIENT_ID_PREFIX = "demo-"
STATUSES = ("reported", "opened", "voided", "dispatched", "in_progress", "handled", "closed")
COLUMNS = ("lon", "lat", "category", "description", "reported_at", "source", "accuracy_m", "status",
           "status_changed_at", "reporter", "client_request_id")

# --- the model's knobs ---------------------------------------------------------------------------

HOT_SPOTS = 36               # "a few dozen"
HOT_SHARE = 0.35             # share of reports drawn from hot spots
OUTSIDE_SHARE = 0.006        # share just outside the city (GPS error)
OUTSIDE_M = (5.0, 150.0)     # how far outside, metres (log-uniform: about a third within 30 m)
HOT_FAVOURITE_SHARE = 0.5    # share of a hot spot's reports in its favourite categories
DENSITY_EXPONENT = 1.3       # background reports per km² ∝ grid area^-1.3 (small urban grids are busy)

CLASS_SHARE = {"01": 0.30, "05": 0.25, "02": 0.12, "06": 0.12, "07": 0.08, "03": 0.06, "99": 0.03,
               "04": 0.012}
SUBCLASS_BOOST = {"0102": 2.5, "0105": 1.8, "0104": 1.5, "0109": 1.3, "0201": 3.0, "0501": 2.2,
                  "0502": 1.6, "0503": 1.8, "0504": 2.2, "0609": 1.5, "0603": 1.4, "0706": 1.5,
                  "0708": 1.4, "0702": 1.3, "0408": 0.3, "0409": 0.2, "0403": 0.5}
EMERGENCY_FACTOR = 0.25      # an emergency subclass is this much rarer than its class-mates
# Reported by citizens rather than found on patrol: all day and evening, as many at weekends.
COMPLAINT_CODES = frozenset({"0301", "0302", "0505", "0506", "0701", "0703", "0707", "0708", "9904",
                             "0401", "0402", "0403", "0404", "0405", "0406", "0407", "0408", "0409"})
# Sources: field_app, hotline, open311.
SOURCE_SHARE = {"patrol": (0.92, 0.05, 0.03), "complaint": (0.40, 0.40, 0.20)}
SOURCES = ("field_app", "hotline", "open311")

# Relative reports per hour of the day, China time.
HOURS_PATROL = np.array([0.30, 0.20, 0.15, 0.10, 0.10, 0.25, 0.8, 2.5, 5.0, 7.5, 8.0, 6.8,
                         3.5, 3.0, 4.8, 6.5, 7.0, 5.8, 3.0, 1.5, 1.0, 0.8, 0.6, 0.4])
HOURS_COMPLAINT = np.array([1.2, 0.8, 0.5, 0.3, 0.3, 0.4, 0.9, 2.0, 3.5, 4.5, 4.8, 4.5,
                            3.8, 3.5, 4.0, 4.5, 4.8, 5.0, 5.2, 5.5, 5.5, 4.5, 3.0, 2.0])
WEEKEND_FACTOR = {"patrol": 0.55, "complaint": 1.05}

# Hot spots: what a facility's special grid is busy with.
FACILITY_FAVOURITES = {
    "批发市场": ("0501", "0102", "0105", "0503"),
    "商业广场": ("0502", "0203", "0506", "0504"),
    "物流园": ("0303", "0503", "0109", "0103"),
    "医院": ("0503", "0508", "0504", "0102"),
    "体育中心": ("0503", "0505", "0205", "0104"),
    "公园": ("0107", "0505", "0102", "0608"),
    "小学": ("0504", "0503", "0205", "0708"),
    "中学": ("0504", "0503", "0205", "0501"),
    "职业学院": ("0505", "0504", "0201", "0506"),
    "产业园": ("0302", "0503", "0109", "0202"),
}
NEIGHBOURHOOD_FAVOURITES = (
    ("0102", "0504", "0706", "0201"),   # an old residential quarter
    ("0501", "0505", "0506", "0102"),   # a night-market street
    ("0503", "0508", "0504", "0205"),   # around a station
    ("0301", "0302", "0303", "0304"),   # a building site
    ("0609", "0602", "0603", "0104"),   # worn-out streets
)
BUSY_FACILITY_BOOST = 12.0

PLACES = ("路口东南角", "小区北门", "小区南门外", "菜市场门口", "公交站台旁", "学校东侧", "沿街商铺门前",
          "人行道上", "背街小巷内", "广场西侧", "桥下", "绿化带旁", "停车场入口", "家属院内", "地铁站出口",
          "医院门口", "超市后门", "河道边", "城中村巷口", "十字路口西北角")
TEMPLATES = {
    "01": ("{place}发现{name}，影响环境卫生", "{place}{name}，请尽快清理", "巡查发现{place}存在{name}问题"),
    "02": ("{place}发现{name}，影响市容", "{place}{name}，需清理整改", "巡查发现{place}有{name}"),
    "03": ("{place}附近工地{name}，请核查", "{place}{name}，周边居民反映强烈", "巡查发现{place}{name}"),
    "04": ("紧急：{place}{name}，已设置警示，请立即派人处置", "{place}{name}，情况紧急", "{place}发生{name}，请立即处置"),
    "05": ("{place}{name}，影响通行", "{place}{name}，劝导无效", "巡查发现{place}{name}"),
    "06": ("{place}{name}，存在安全隐患", "{place}{name}，需维修", "巡查发现{place}{name}"),
    "07": ("{place}{name}，请社区跟进", "居民反映{place}{name}", "走访发现{place}{name}"),
    "99": ("{place}{name}，请核实", "{place}{name}，需协调处理", "{place}发现{name}"),
}
SUBCLASS_TEMPLATES = {
    "9904": ("建议在{place}增设垃圾桶和休息座椅", "市民建议{place}加强夜间巡查", "建议{place}增设非机动车停放点"),
    "0507": ("{place}有流浪乞讨人员，请救助站核查", "{place}发现流浪人员露宿", "巡查发现{place}有流浪乞讨人员"),
}
# A citizen's words, whatever the class (a grid worker's "巡查发现…" would not fit).
CITIZEN_TEMPLATES = ("{place}{name}，请尽快处理", "反映{place}{name}问题，希望尽快解决", "{place}{name}，已经好几天了")
SOURCE_PREFIX = {"field_app": "", "hotline": "12345热线转办：", "open311": "市民上报："}


# --- the event classification ----------------------------------------------------------------------

@dataclass(frozen=True)
class Categories:
    codes: np.ndarray          # subclass codes, str
    class_codes: np.ndarray
    names: np.ndarray          # name_zh
    p: np.ndarray              # base probability of each subclass
    complaint: np.ndarray      # bool: reported by citizens rather than found on patrol
    limit_h: np.ndarray        # time limit, in hours of its basis
    working: np.ndarray        # bool: the limit counts working hours (else calendar hours)
    emergency: np.ndarray      # bool
    departments: np.ndarray    # the code of the department that handles each subclass

    def index(self, code):
        return int(np.flatnonzero(self.codes == code)[0])


@functools.lru_cache(maxsize=4)
def categories(path=CLASSES_CSV) -> Categories:
    """The subclasses of ``data/event_classes.csv`` with the history's base mix."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    codes = np.array([r["code"] for r in rows])
    class_codes = np.array([r["class_code"] for r in rows])
    emergency = np.array([r["emergency"].strip().lower() == "true" for r in rows])
    weight = np.array([SUBCLASS_BOOST.get(c, 1.0) for c in codes]) * np.where(emergency, EMERGENCY_FACTOR, 1.0)
    p = np.zeros(len(rows))
    for cls in np.unique(class_codes):
        mine = class_codes == cls
        p[mine] = CLASS_SHARE.get(cls, 0.02) * weight[mine] / weight[mine].sum()
    return Categories(codes=codes, class_codes=class_codes, names=np.array([r["name_zh"] for r in rows]),
                      p=p / p.sum(), complaint=np.isin(codes, list(COMPLAINT_CODES)),
                      limit_h=np.array([float(r["time_limit_hours"]) for r in rows]),
                      working=np.array([r["time_basis"] == "working" for r in rows]), emergency=emergency,
                      departments=np.array([r["department_code"] for r in rows]))


# --- where ---------------------------------------------------------------------------------------------

@dataclass
class LocationModel:
    """Where reports happen, built once from the unit grids: background weights, hot spots, the outline."""

    geoms: np.ndarray          # prepared polygons, EPSG:4326
    bounds: np.ndarray         # (n, 4)
    background_p: np.ndarray   # probability of each cell for a background report
    hot_cell: np.ndarray       # index of each hot spot's centre cell
    hot_lon: np.ndarray
    hot_lat: np.ndarray
    hot_sigma_m: np.ndarray
    hot_p: np.ndarray          # probability of each hot spot for a hot-spot report
    hot_favourites: np.ndarray  # (hot spots, 4) subclass indices
    outline: object            # the city's boundary (lines), for the points just outside
    workers: list              # grid-worker names; a cell's worker is workers[cell * 7919 % len]

    @classmethod
    def from_cells(cls, cells, rng):
        """``cells``: a (Geo)DataFrame of unit grids with ``geometry`` (EPSG:4326) and optionally
        ``area_m2``, ``kind``, ``name`` and ``population`` (the API's and the grid store's columns)."""
        if len(cells) == 0:
            raise BadInput("no unit grids to put reports in: load a grid (gridmap demo load) first")
        if getattr(cells, "crs", None) is not None and not cells.crs.equals("EPSG:4326"):
            cells = cells.to_crs("EPSG:4326")
        geoms = np.asarray(cells["geometry"].to_numpy() if hasattr(cells["geometry"], "to_numpy")
                           else cells["geometry"], dtype=object)
        shapely.prepare(geoms)
        n = len(geoms)
        area = (cells["area_m2"].to_numpy(dtype=float) if "area_m2" in cells
                else np.asarray(crs_mod.area_m2(geoms), dtype=float))
        area = np.clip(np.nan_to_num(area, nan=1e5), 1e3, None)
        names = cells["name"].astype(str).to_numpy() if "name" in cells else np.full(n, "", dtype=object)
        kind = cells["kind"].astype(str).to_numpy() if "kind" in cells else np.full(n, "regular", dtype=object)
        pop = (cells["population"].to_numpy(dtype=float) if "population" in cells else np.full(n, 400.0))
        pop = np.nan_to_num(pop, nan=400.0)

        facility = np.array([_facility(name) if k == "special" else "" for name, k in zip(names, kind)],
                            dtype=object)
        busy = facility != ""
        # Background: reports per km² fall steeply with grid size (so per grid gently), more people more.
        w = area ** (1.0 - DENSITY_EXPONENT) * np.sqrt(pop + 25.0) * np.where(busy, 2.0, 1.0)
        background_p = w / w.sum()

        # Hot spots: busy facilities and the smallest, most populous grids.
        hot_w = (np.median(area) / area) ** 1.5 * np.sqrt(pop + 25.0) * np.where(busy, BUSY_FACILITY_BOOST, 1.0)
        k = min(HOT_SPOTS, n)
        hot_cell = np.sort(rng.choice(n, size=k, replace=False, p=hot_w / hot_w.sum()))
        centres = shapely.point_on_surface(geoms[hot_cell])
        hot_sigma = np.clip(np.exp(rng.normal(np.log(160.0), 0.5, size=k)), 60.0, 450.0)
        hot_p = np.exp(rng.normal(0.0, 0.7, size=k))
        cats = categories()
        favourites = np.empty((k, 4), dtype=int)
        for j, c in enumerate(hot_cell):
            codes = FACILITY_FAVOURITES.get(facility[c]) or NEIGHBOURHOOD_FAVOURITES[
                int(rng.integers(len(NEIGHBOURHOOD_FAVOURITES)))]
            favourites[j] = [cats.index(code) for code in codes]

        try:
            city = shapely.coverage_union_all(geoms)  # linear time, for cells that tile without overlaps
        except shapely.errors.GEOSException:
            city = shapely.union_all(geoms)
        outline = shapely.boundary(city)
        workers = person_names(rng, max(50, min(2000, n)))
        return cls(geoms=geoms, bounds=shapely.bounds(geoms), background_p=background_p, hot_cell=hot_cell,
                   hot_lon=shapely.get_x(centres), hot_lat=shapely.get_y(centres), hot_sigma_m=hot_sigma,
                   hot_p=hot_p / hot_p.sum(), hot_favourites=favourites, outline=outline, workers=workers)

    def sample(self, rng, n):
        """``n`` places: ``(lon, lat, cell, hot)`` arrays; ``cell`` is the grid a place belongs to (its
        worker reports it; -1 outside the city), ``hot`` the hot spot it came from (-1: none)."""
        kind = rng.choice(3, size=n, p=[1.0 - HOT_SHARE - OUTSIDE_SHARE, HOT_SHARE, OUTSIDE_SHARE])
        lon, lat = np.empty(n), np.empty(n)
        cell = np.full(n, -1)
        hot = np.full(n, -1)

        bg = np.flatnonzero(kind == 0)
        cell[bg] = rng.choice(len(self.geoms), size=bg.size, p=self.background_p)
        lon[bg], lat[bg] = self._inside(rng, cell[bg])

        hs = np.flatnonzero(kind == 1)
        hot[hs] = rng.choice(len(self.hot_p), size=hs.size, p=self.hot_p)
        sigma = self.hot_sigma_m[hot[hs]]
        lat[hs] = self.hot_lat[hot[hs]] + rng.normal(size=hs.size) * sigma / M_PER_DEG
        lon[hs] = self.hot_lon[hot[hs]] + rng.normal(size=hs.size) * sigma / (
            M_PER_DEG * np.cos(np.radians(self.hot_lat[hot[hs]])))
        cell[hs] = self.hot_cell[hot[hs]]

        out = np.flatnonzero(kind == 2)
        lon[out], lat[out] = self._outside(rng, out.size)
        return lon, lat, cell, hot

    def _inside(self, rng, cells):
        """A uniform point in each of ``cells`` (rejection sampling in the bounds, vectorised)."""
        lon, lat = np.empty(cells.size), np.empty(cells.size)
        todo = np.arange(cells.size)
        for _ in range(50):
            if not todo.size:
                return lon, lat
            b = self.bounds[cells[todo]]
            x = b[:, 0] + rng.random(todo.size) * (b[:, 2] - b[:, 0])
            y = b[:, 1] + rng.random(todo.size) * (b[:, 3] - b[:, 1])
            ok = shapely.contains_xy(self.geoms[cells[todo]], x, y)
            lon[todo[ok]], lat[todo[ok]] = x[ok], y[ok]
            todo = todo[~ok]
        inner = shapely.point_on_surface(self.geoms[cells[todo]])  # slivers: give up drawing
        lon[todo], lat[todo] = shapely.get_x(inner), shapely.get_y(inner)
        return lon, lat

    def _outside(self, rng, n):
        """``n`` points 5–150 m outside the outline: a point of the boundary pushed off in a random direction."""
        lon, lat = np.empty(n), np.empty(n)
        todo = np.arange(n)
        for _ in range(50):
            if not todo.size:
                break
            m = 3 * todo.size + 8
            base = shapely.line_interpolate_point(self.outline, rng.random(m), normalized=True)
            bx, by = shapely.get_x(base), shapely.get_y(base)
            dist = np.exp(rng.uniform(np.log(OUTSIDE_M[0]), np.log(OUTSIDE_M[1]), size=m))
            angle = rng.uniform(0, 2 * np.pi, size=m)
            x = bx + dist * np.cos(angle) / (M_PER_DEG * np.cos(np.radians(by)))
            y = by + dist * np.sin(angle) / M_PER_DEG
            ok = np.flatnonzero(~self._covered(x, y))[:todo.size]
            lon[todo[:ok.size]], lat[todo[:ok.size]] = x[ok], y[ok]
            todo = todo[ok.size:]
        if todo.size:  # cannot happen with a real outline; keep the output total anyway
            lon[todo], lat[todo] = self.hot_lon[0], self.hot_lat[0]
        return lon, lat

    def _covered(self, x, y):
        tree = self.tree()
        points = shapely.points(x, y)
        hit = tree.query(points, predicate="intersects")
        covered = np.zeros(len(points), bool)
        covered[hit[0]] = True
        return covered

    def tree(self):
        """An STRtree of the unit grids, built on first use."""
        if getattr(self, "_strtree", None) is None:
            self._strtree = shapely.STRtree(self.geoms)
        return self._strtree


def _facility(name):
    for facility in FACILITY_FAVOURITES:
        if facility in name:
            return facility
    return ""


# --- what and who ----------------------------------------------------------------------------------------

def draw_reports(model, rng, n, *, field_app_only=False):
    """``n`` reports as a DataFrame without times: lon, lat, category, description, source, accuracy_m,
    reporter (JSON text), ``complaint`` (bool: a citizen's complaint rather than a patrol finding) and
    ``cell`` (the unit grid whose worker reports the place, -1 for none: see :meth:`LocationModel.sample`)."""
    cats = categories()
    lon, lat, cell, hot = model.sample(rng, n)
    cat = rng.choice(len(cats.codes), size=n, p=cats.p)
    fav = (hot >= 0) & (rng.random(n) < HOT_FAVOURITE_SHARE)
    cat[fav] = model.hot_favourites[hot[fav], rng.integers(0, 4, size=int(fav.sum()))]
    complaint = cats.complaint[cat]

    if field_app_only:
        source = np.zeros(n, dtype=int)
    else:
        u = rng.random(n)
        source = np.zeros(n, dtype=int)
        for group, mask in (("patrol", ~complaint), ("complaint", complaint)):
            f, h, _ = SOURCE_SHARE[group]
            source[mask & (u >= f)] = 1
            source[mask & (u >= f + h)] = 2

    # GPS accuracy: mostly 3–15 m, a tail up to 50 m.
    acc = np.exp(rng.normal(np.log(7.0), 0.4, size=n))
    tail = rng.random(n) < 0.06
    acc[tail] = rng.uniform(15.0, 50.0, size=int(tail.sum()))
    acc = np.round(np.clip(acc, 2.5, 50.0), 1)

    place = rng.integers(0, len(PLACES), size=n)
    template = rng.integers(0, 3, size=n)
    extra = rng.integers(0, 1 << 30, size=n)
    descriptions, reporters = [], []
    for i in range(n):
        c = cat[i]
        src = SOURCES[source[i]]
        templates = (SUBCLASS_TEMPLATES.get(cats.codes[c])
                     or (CITIZEN_TEMPLATES if source[i] else TEMPLATES.get(cats.class_codes[c], TEMPLATES["99"])))
        text = templates[template[i]]
        descriptions.append(SOURCE_PREFIX[src] + text.format(place=PLACES[place[i]], name=cats.names[c]))
        reporters.append(_reporter(model, src, cell[i], int(extra[i])))
    return pd.DataFrame({
        "lon": np.round(lon, 7), "lat": np.round(lat, 7), "category": cats.codes[cat],
        "description": descriptions, "source": np.array(SOURCES)[source], "accuracy_m": acc,
        "reporter": reporters, "complaint": complaint, "cell": cell,
    })


def _reporter(model, source, cell, r):
    """The reporter as JSON text (built directly: the names hold no characters JSON must escape)."""
    if source == "field_app":
        k = (cell * 7919 if cell >= 0 else r) % len(model.workers)
        return f'{{"name": "{model.workers[k]}"}}'
    if source == "hotline":
        name = SURNAMES[r % 40] + ("先生" if r >> 20 & 1 else "女士")
        return f'{{"name": "{name}", "phone": "1{3 + r % 7}{r // 7 % 10}****{r // 70 % 10000:04d}"}}'
    return f'{{"account_id": "wx_{hashlib.sha1(str(r).encode()).hexdigest()[:12]}"}}'


# --- when ---------------------------------------------------------------------------------------------------

def _times(rng, complaint, days, end):
    """Report times as int64 seconds since the epoch, within [end - days, end)."""
    n = complaint.size
    end_s = int(end.timestamp())
    start_s = end_s - days * 86400
    # Days in China time: day k starts at the China midnight of (start + k days) — the window may start at
    # any time of day, so work in "China-local seconds" and map back.
    local_start = start_s + 8 * 3600
    first_day = local_start // 86400
    last_day = (end_s + 8 * 3600 - 1) // 86400
    day_numbers = np.arange(first_day, last_day + 1)
    weekday = (day_numbers + 3) % 7  # 1970-01-01 was a Thursday (3, Monday = 0)
    weekend = weekday >= 5
    out = np.empty(n, dtype=np.int64)
    for group, mask, hours in (("patrol", ~complaint, HOURS_PATROL), ("complaint", complaint, HOURS_COMPLAINT)):
        idx = np.flatnonzero(mask)
        todo = idx
        day_w = np.where(weekend, WEEKEND_FACTOR[group], 1.0)
        hour_p = hours / hours.sum()
        for _ in range(100):
            if not todo.size:
                break
            d = rng.choice(day_numbers.size, size=todo.size, p=day_w / day_w.sum())
            h = rng.choice(24, size=todo.size, p=hour_p)
            s = rng.integers(0, 3600, size=todo.size)
            t = (day_numbers[d] * 86400 + h * 3600 + s) - 8 * 3600
            ok = (t >= start_s) & (t < end_s)  # the partial first and last days
            out[todo[ok]] = t[ok]
            todo = todo[~ok]
        out[todo] = rng.integers(start_s, end_s, size=todo.size)
    return out

# --- the history -------------------------------------------------------------------------------------------

def _utc(seconds):
    """int64 seconds (-1: none) as UTC timestamps (NaT)."""
    seconds = np.asarray(seconds, dtype=np.int64)
    nat = np.where(seconds == NO_TIME, np.iinfo(np.int64).min, seconds).view("M8[s]")
    return pd.DatetimeIndex(nat.astype("M8[ns]")).tz_localize("UTC")


@dataclass(frozen=True)
class History:
    """A drawn history: ``incidents`` (:data:`COLUMNS` and :data:`gis.demo_cases.CASE_COLUMNS`, oldest first) and
    ``events`` (:data:`gis.demo_cases.EVENT_COLUMNS`; ``row`` is the incident's row, in order of row and seq)."""

    incidents: pd.DataFrame
    events: pd.DataFrame


def generate_history(cells, *, seed=DEFAULT_SEED, count=100_000, days=90, end=None, calendar=None, rules=None,
                     snap_m=30.0):
    """A history of ``count`` incidents over ``days`` days before ``end``, with their cases' events.

    Parameters
    ----------
    cells : (Geo)DataFrame
        The unit grids (level 3) of the active version, in code order: ``geometry`` polygons in EPSG:4326,
        optionally ``code``, ``street`` (the code of its street), ``area_m2``, ``kind``, ``name``,
        ``population`` (they sharpen the model).
    seed : int
        Same seed and cells, same history.
    end : datetime-like, optional
        Timezone-aware; default 2026-11-23T00:00+08:00. Nothing happens after it.
    calendar : gis.work_calendar.WorkCalendar, optional
        The one deadlines count on; default ``WorkCalendar.from_csv()``.
    rules : gis.cases.Rules, optional
        The tick's margin and the longest extension; default ``Rules()``.
    snap_m : float
        The router's snapping distance: a report this near a grid starts its case there.

    Returns
    -------
    History
        ``incidents``: lon, lat (WGS84), category (subclass code), description, reported_at (UTC), source,
        accuracy_m, status, status_changed_at (UTC), reporter (JSON text), client_request_id
        (``demo-000000`` for the oldest), then the case: case_level, case_version (its number of events),
        holder_kind (the kind of unit holding it: a level's platform or the unit kind; the code comes with
        the routing), unit_kind, unit_code (a department's code; an area unit's comes with the routing),
        opened_at … closed_at (UTC), handling_h, reworks, extensions, escalations. ``events``: one row per
        action, as ``case_event`` keeps it (row: the incident's row; seq; action; from/to state and level;
        actor, and the kind, post and department code of the unit acting; at; note), with the fields of its
        details (unit_kind and unit_code of a dispatch, due_at of a dispatch or the new deadline of an
        extension and previous_due_at, reason, approved_by and approver_post, on_time of a close), the
        phone's lon, lat and accuracy_m of a start or a handling, and handling_h of a handling.
    """
    if count < 0 or days <= 0:
        raise BadInput("count must be ≥ 0 and days > 0")
    end = DEFAULT_END if end is None else pd.Timestamp(end)
    if end.tzinfo is None:
        raise BadInput("end must be timezone-aware")
    calendar = WorkCalendar.from_csv() if calendar is None else calendar
    rules = cases.Rules() if rules is None else rules
    rng = np.random.default_rng(seed)
    model = LocationModel.from_cells(cells, rng)
    reports = draw_reports(model, rng, count)
    reported = _times(rng, reports["complaint"].to_numpy(), days, end)
    order = np.argsort(reported, kind="stable")
    reports, reported = reports.iloc[order].reset_index(drop=True), reported[order]
    lon, lat = reports["lon"].to_numpy(), reports["lat"].to_numpy()
    place, start = demo_cases.start_levels(model, lon, lat, reports["cell"].to_numpy(), snap_m)
    street = np.append(demo_cases.street_of_cells(cells), -1)[place]
    cats = categories()
    end_s = int(end.timestamp())
    events = demo_cases.draw_cases(rng, demo_cases.Reports(
        reported=reported, category=pd.Index(cats.codes).get_indexer(reports["category"].to_numpy()),
        manual=reports["source"].to_numpy() != "field_app", start=start, cell=place, street=street, lon=lon,
        lat=lat), cats, model, calendar, rules, end_s)
    case = demo_cases.case_columns(events, reported)
    frame = pd.DataFrame({
        "lon": lon, "lat": lat, "category": reports["category"], "description": reports["description"],
        "reported_at": _utc(reported), "source": reports["source"], "accuracy_m": reports["accuracy_m"],
        "status": case["status"], "status_changed_at": _utc(case["status_changed_at"]),
        "reporter": reports["reporter"],
        "client_request_id": [f"{CLIENT_ID_PREFIX}{i:06d}" for i in range(len(reports))],
    })
    for name in CASE_COLUMNS:
        value = case[name]
        frame[name] = _utc(value) if name.endswith("_at") else value
    levels = np.asarray(LEVELS, dtype=object)
    events = events.drop(columns=["order"])
    events["from_level"] = levels[events["from_level"].to_numpy(dtype=int)]
    events["to_level"] = levels[events["to_level"].to_numpy(dtype=int)]
    for name in EVENT_TIMES:
        events[name] = _utc(events[name].to_numpy(dtype=np.int64))
    events["on_time"] = events["on_time"].astype("boolean")
    return History(frame, events[[*EVENT_COLUMNS, "handling_h"]])


def generate(cells, **options):
    """The incidents of :func:`generate_history` (same parameters): a DataFrame, oldest first."""
    return generate_history(cells, **options).incidents


# --- into the database ----------------------------------------------------------------------------------

KINDS = (*LEVELS, "department")  # holder, unit and actor kinds: a level's platform or a unit kind


def read_cells(cur, version_id, level=3):
    """The unit grids of a version as a DataFrame (code, name, kind, population, area_m2, street — the code
    of the street above —, geometry), in code order."""
    cur.execute("""select c.code, c.name, c.kind, c.population, c.area_m2, ST_AsBinary(c.geom) as wkb,
                          (select s.code from grid_cell m join grid_cell s on s.id = m.parent_id
                            where m.id = c.parent_id) as street
                     from grid_cell c where c.version_id = %s and c.level = %s order by c.code""",
                (version_id, level))
    rows = cur.fetchall()
    frame = pd.DataFrame({
        "code": [r["code"] for r in rows], "name": [r["name"] for r in rows], "kind": [r["kind"] for r in rows],
        "population": np.array([r["population"] if r["population"] is not None else np.nan for r in rows],
                               dtype=float),
        "area_m2": np.array([r["area_m2"] for r in rows], dtype=float),
        "street": [r["street"] for r in rows],
    })
    geoms = np.empty(len(rows), dtype=object)
    geoms[:] = list(shapely.from_wkb([bytes(r["wkb"]) for r in rows])) if rows else []
    frame["geometry"] = geoms
    return frame


def load(db, settings, *, count=100_000, seed=DEFAULT_SEED, days=90, end=None, echo=print):
    """Generate the history from the active version's unit grids, store and route it with every incident's
    case (the case columns, the holder, the events in ``case_event``), in one transaction.

    Deadlines count on the calendar in the database and the tick's rules come from ``settings``, as in the live
    workflow. The grid router, built first, tells each case's cells (the holders and units are cells' codes)
    before anything is stored, and then routes the stored incidents in bulk. Does nothing when demo incidents
    (client_request_id ``demo-…``) are there already. Returns a message.
    """
    if count < 1:
        raise BadInput("count must be at least 1")
    started = time.perf_counter()
    with db.connection() as conn, conn.cursor(cursor_factory=RealDictCursor) as cur:
        cur.execute("select pg_advisory_xact_lock(hashtext('gridmap demo history'))")  # one loader at a time
        cur.execute("set local gridmap.live = off")  # backdated history is no news for the live feed (009_live.sql)
        cur.execute("select count(*) as n from incident where client_request_id like %s",
                    (CLIENT_ID_PREFIX + "%",))
        existing = cur.fetchone()["n"]
        if existing:
            return f"the demo history is loaded already: {existing:,} demo incidents; nothing done"
        version = grid_store.active_version(cur)
        if version is None:
            raise NotFound("no grid version is active: load the demo grid first (gridmap demo load)")
        cells = read_cells(cur, version["id"])
        if cells.empty:
            raise BadInput(f"version {version['id']} has no unit grids (level 3) to put incidents in")
        echo(f"generating {count:,} incidents over {days} days in {len(cells):,} unit grids of version "
             f"{version['id']} (seed {seed}) ...")
        t = time.perf_counter()
        history = generate_history(cells, seed=seed, count=count, days=days, end=end,
                                   calendar=cases.calendar(cur), rules=cases.Rules.from_settings(settings),
                                   snap_m=settings.snap_m)
        echo(f"  generated in {time.perf_counter() - t:.1f} s: {len(history.events):,} case events")
        _check_categories(cur, history.incidents)

        t = time.perf_counter()
        router = batch_routing.GridRouter.from_database(cur, version["id"])
        where = _case_cells(router, history.incidents, settings.snap_m)
        history, elsewhere = _settled(history, where)
        if elsewhere:
            echo(f"  {elsewhere:,} incidents lie at another level than the model put them: left reported")
        ids = _insert(cur, history, where)
        inserted = len(ids)
        echo(f"  inserted {inserted:,} incidents in {time.perf_counter() - t:.1f} s")

        t = time.perf_counter()
        stored = _insert_events(cur, history, where, ids, version["id"])
        echo(f"  stored {stored:,} case events in {time.perf_counter() - t:.1f} s")

        t = time.perf_counter()  # as batch_routing.route_unrouted does it, with the router at hand
        cur.execute("select id, ST_X(geom) as lon, ST_Y(geom) as lat, accuracy_m from incident"
                    " where routing_id is null order by id")
        rows = pd.DataFrame(cur.fetchall(), columns=["id", "lon", "lat", "accuracy_m"])
        batch_routing.route_stored(cur, router, rows["id"], rows["lon"].astype(float), rows["lat"].astype(float),
                                   rows["accuracy_m"].astype(float).fillna(0).to_numpy(), reason="import",
                                   snap_m=settings.snap_m)
        cur.execute("select coalesce(routing_status::text, 'not routed') as status, count(*) as n from incident"
                    " where client_request_id like %s group by 1 order by 2 desc", (CLIENT_ID_PREFIX + "%",))
        by_routing = ", ".join(f"{r['status']} {r['n']:,}" for r in cur.fetchall())
        echo(f"  routed in bulk in {time.perf_counter() - t:.1f} s: {by_routing}")
        cur.execute("analyze incident")
        cur.execute("analyze case_event")
    frame = history.incidents
    by_status = ", ".join(f"{s} {n:,}" for s, n in frame["status"].value_counts().items())
    echo(f"  status: {by_status}")
    local = frame["reported_at"].dt.tz_convert(CHINA_TIME)
    return (f"the demo history is loaded: {inserted:,} incidents reported from {local.min():%Y-%m-%d} "
            f"to {local.max():%Y-%m-%d} (China time) "
            f"in {time.perf_counter() - started:.1f} s")


def _check_categories(cur, frame):
    cur.execute("select code from event_subclass where in_service")
    known = {r["code"] for r in cur.fetchall()}
    missing = sorted(set(frame["category"].unique()) - known)
    if missing:
        raise BadInput(f"the event classification lacks {', '.join(missing)}: run gridmap db migrate first")


def _case_cells(router, frame, snap_m):
    """The codes of each incident's cells as routing will find them: an object array (n, 4) with a column per
    area kind (grid, community, street, district; None where there is none)."""
    routed = router.route(frame["lon"].to_numpy(), frame["lat"].to_numpy(), None, snap_m)  # cells only
    codes = np.append(router.codes, None).astype(object)
    return codes[routed.cells[:, ::-1]]  # routed.cells has a column per grid_cell.level, district first


def _settled(history, where):
    """The history without the cases of incidents routing puts at another level than the model did (it
    guessed from the unit grids alone; with a partition of four levels they agree): those stay reported."""
    events = history.events
    first = demo_cases.last_of(events["row"].to_numpy(), np.ones(len(events), bool), first=True)
    start = pd.Series(events["from_level"].to_numpy()[first], index=events["row"].to_numpy()[first])
    deepest = np.select([pd.notna(where[:, k]) for k in (GRID, COMMUNITY, STREET, DISTRICT)],
                        [GRID, COMMUNITY, STREET, DISTRICT], CITY)
    wrong = start.index[start.to_numpy() != np.asarray(LEVELS, dtype=object)[deepest[start.index]]]
    if not len(wrong):
        return history, 0
    incidents = history.incidents.copy()
    incidents.loc[wrong, "status"] = "reported"
    incidents.loc[wrong, "status_changed_at"] = incidents.loc[wrong, "reported_at"]
    for name in CASE_COLUMNS:
        incidents.loc[wrong, name] = 0 if name in ("case_version", "reworks", "extensions", "escalations") else None
    return History(incidents, events[~events["row"].isin(wrong)].reset_index(drop=True)), len(wrong)


def _cells_of(kind, where, rows):
    """The code of each incident's cell at area kind ``kind`` (grid … district); None for other kinds."""
    kind = np.asarray(kind, dtype=object)
    column = pd.Index(LEVELS[:CITY]).get_indexer(kind)
    return np.where(column >= 0, where[rows, np.maximum(column, 0)], None)


def _unit_codes(kind, department, where, rows):
    """'kind:code' of units: a level's platform or an area unit (the code of the incident's cell there), the
    city, or a department (``department``); None where ``kind`` is None."""
    kind = np.asarray(kind, dtype=object)
    cell = _cells_of(kind, where, rows)
    out = np.full(len(kind), None, dtype=object)
    area = pd.notna(cell)
    out[area] = kind[area] + ":" + cell[area]
    out[kind == "city"] = "city"
    mine = kind == "department"
    out[mine] = "department:" + np.asarray(department, dtype=object)[mine]
    return out


def _seconds(values):
    """Timestamps (a Series) as int64 seconds since the epoch, -1 for none."""
    epoch, second = pd.Timestamp(0, tz="UTC"), pd.Timedelta(seconds=1)
    return ((values - epoch) // second).fillna(NO_TIME).to_numpy(dtype=np.int64)


def _codes(values, vocabulary):
    """Indices of ``values`` in ``vocabulary`` (-1 for None)."""
    return pd.Index(list(vocabulary), dtype=object).get_indexer(pd.Series(values, dtype=object))


def _insert(cur, history, where):
    """The incidents with their case columns, holders and units."""
    frame = history.incidents
    rows = np.arange(len(frame))
    holder = _unit_codes(frame["holder_kind"].to_numpy(), frame["unit_code"].to_numpy(), where, rows)
    unit = frame["unit_kind"].to_numpy()
    unit_code = np.where(unit == "department", frame["unit_code"].to_numpy(), _cells_of(unit, where, rows))
    units = pd.factorize(pd.Series(np.concatenate([holder, unit_code]), dtype=object))[1]
    cur.execute("""create temp table demo_history_in (
                       row integer, lon double precision, lat double precision, category text, description text,
                       reported_s bigint, source text, accuracy_m real, status text, changed_s bigint,
                       reporter jsonb, client_request_id text) on commit drop""")
    # Times as seconds since the epoch: formatting 100,000 timestamps as text takes pandas seconds.
    out = frame[list(COLUMNS)].rename(columns={"reported_at": "reported_s", "status_changed_at": "changed_s"})
    out.insert(0, "row", rows)
    out["reported_s"] = _seconds(frame["reported_at"])
    out["changed_s"] = _seconds(frame["status_changed_at"])
    buf = io.StringIO()
    out.to_csv(buf, header=False, index=False)
    buf.seek(0)
    cur.copy_expert(f"copy demo_history_in ({', '.join(out.columns)}) from stdin with (format csv)", buf)

    case = {"row": ("int4", rows),
            "case_level": ("int2", _codes(frame["case_level"].to_numpy(), KINDS)),
            "case_version": ("int4", frame["case_version"].to_numpy()),
            "holder": ("int4", _codes(holder, units)),
            "unit_kind": ("int2", _codes(unit, KINDS)),
            "unit_code": ("int4", _codes(unit_code, units)),
            "handling_h": ("float8", frame["handling_h"].to_numpy(dtype=float)),
            **{name: ("int2", frame[name].to_numpy()) for name in ("reworks", "extensions", "escalations")},
            **{name: ("int8", _seconds(frame[name])) for name in CASE_COLUMNS if name.endswith("_at")}}
    cur.execute(f"""create temp table demo_case_in ({', '.join(f'{k} {t}' for k, (t, _) in case.items())})
                    on commit drop""")
    _copy_binary(cur, "demo_case_in", case)
    times = {name: f"to_timestamp(nullif(c.{name}, -1))" for name in CASE_COLUMNS if name.endswith("_at")}
    cur.execute(f"""insert into incident (category, description, given_x, given_y, given_crs, geom, accuracy_m,
                                          source, reporter, client_request_id, reported_at, received_at, status,
                                          status_changed_at, case_level, case_version, holder, unit_kind,
                                          unit_code, handling_h, reworks, extensions, escalations,
                                          {', '.join(times)})
                    select h.category, h.description, h.lon, h.lat, 'EPSG:4326',
                           ST_SetSRID(ST_MakePoint(h.lon, h.lat), 4326), h.accuracy_m, h.source, h.reporter,
                           h.client_request_id, to_timestamp(h.reported_s), to_timestamp(h.reported_s), h.status,
                           to_timestamp(h.changed_s), (%(kinds)s::text[])[c.case_level + 1], c.case_version,
                           holder.v, (%(kinds)s::text[])[c.unit_kind + 1], unit.v, nullif(c.handling_h, 'NaN'),
                           c.reworks, c.extensions, c.escalations, {', '.join(times.values())}
                      from demo_history_in h
                      join demo_case_in c on c.row = h.row
                      left join unnest(%(units)s::text[]) with ordinality as holder (v, n) on holder.n = c.holder + 1
                      left join unnest(%(units)s::text[]) with ordinality as unit (v, n) on unit.n = c.unit_code + 1
                     order by h.reported_s, h.client_request_id
                    returning id, client_request_id""",
                {"kinds": list(KINDS), "units": list(units)})
    ids = np.zeros(len(frame), dtype=np.int64)
    for r in cur.fetchall():
        ids[int(r["client_request_id"][len(CLIENT_ID_PREFIX):])] = r["id"]
    return ids


def _store_names(cur, version_id):
    """{post: Series of names by cell code} of the grid store's staff (the first by name where a cell has
    several people on a post)."""
    with cur.connection.cursor() as plain:  # tuples: a hundred thousand dicts take a while
        plain.execute("""select distinct on (cs.cell_id, cs.post) cs.post, c.code, s.name
                           from cell_staff cs join staff s on s.id = cs.staff_id
                           join grid_cell c on c.id = cs.cell_id and c.version_id = %s
                          order by cs.cell_id, cs.post, s.name""", (version_id,))
        rows = pd.DataFrame(plain.fetchall(), columns=["post", "code", "name"], dtype=object)
    return {post: group.set_index("code")["name"] for post, group in rows.groupby("post")}


def _named(events, post_column, name_column, where, names):
    """The people of ``post_column``: the grid store's where it knows them, else the drawn ones."""
    post = events[post_column].to_numpy(dtype=object)
    out = events[name_column].to_numpy(dtype=object).copy()
    rows = events["row"].to_numpy()
    for name, level in POST_LEVEL.items():
        mine = np.flatnonzero(post == name)
        if len(mine) and name in names:
            found = names[name].reindex(where[rows[mine], LEVELS.index(level)]).to_numpy()
            out[mine] = np.where(pd.notna(found), found, out[mine])
    return out


def _ewkb_points(lon, lat):
    """Points in EPSG:4326 as EWKB (little-endian, with the SRID), one bytes object each."""
    point = np.empty(len(lon), dtype=[("order", "u1"), ("type", "<u4"), ("srid", "<u4"), ("x", "<f8"), ("y", "<f8")])
    point["order"], point["type"], point["srid"] = 1, 0x20000001, 4326  # a Point with an SRID
    point["x"], point["y"] = lon, lat
    return point.view(f"V{point.dtype.itemsize}").astype(object)


def _insert_events(cur, history, where, ids, version_id):
    """Every event into case_event (a binary COPY: quicker than an INSERT … SELECT resolving the same texts
    in SQL), with the acting unit and the unit dispatched to as 'kind:code'."""
    events = history.events
    if events.empty:
        return 0
    rows = events["row"].to_numpy()
    names = _store_names(cur, version_id)
    action = events["action"].to_numpy(dtype=object)
    unit_kind = events["unit_kind"].to_numpy(dtype=object)
    unit = np.where(unit_kind == "department", events["unit_code"].to_numpy(dtype=object),
                    _cells_of(unit_kind, where, rows))
    levels = events["to_level"].to_numpy(dtype=object)
    approver_level = np.asarray(LEVELS, dtype=object)[np.minimum(pd.Index(LEVELS).get_indexer(levels) + 1, CITY)]
    reason = _json_text(events["reason"].to_numpy(dtype=object))
    approver = _named(events, "approver_post", "approved_by", where, names)
    details = np.full(len(events), "{}", dtype=object)
    mine = action == "dispatch"
    details[mine] = ('{"unit_kind": ' + _json_text(unit_kind[mine]) + ', "unit": ' + _json_text(unit[mine])
                     + ', "due_at": ' + _iso(events["due_at"][mine]) + "}")
    mine = action == "extend"
    details[mine] = ('{"deadline": ' + _iso(events["due_at"][mine]) + ', "previous_deadline": '
                     + _iso(events["previous_due_at"][mine]) + ', "reason": ' + reason[mine]
                     + ', "approved_by": ' + _json_text(approver[mine])
                     + ', "approver_level": ' + _json_text(approver_level[mine]) + "}")
    mine = action == "close"
    details[mine] = np.where(events["on_time"][mine].to_numpy(dtype=bool), '{"on_time": true}', '{"on_time": false}')
    mine = np.isin(action, ("void", "rework", "escalate"))
    details[mine] = '{"reason": ' + reason[mine] + "}"
    lon, lat = events["lon"].to_numpy(dtype=float), events["lat"].to_numpy(dtype=float)
    located = ~np.isnan(lon)
    geom = np.full(len(events), None, dtype=object)
    geom[located] = _ewkb_points(lon[located], lat[located])
    text = "text"
    _copy_binary(cur, "case_event", {
        "incident_id": ("int8", np.asarray(ids)[rows]), "seq": ("int4", events["seq"].to_numpy()),
        "action": (text, action), "from_state": (text, events["from_state"]), "to_state": (text, events["to_state"]),
        "from_level": (text, events["from_level"]), "to_level": (text, levels),
        "actor": (text, _named(events, "actor_post", "actor", where, names)),
        "actor_unit": (text, _unit_codes(events["actor_kind"].to_numpy(), events["actor_code"].to_numpy(), where,
                                         rows)),
        "at": ("timestamptz", _seconds(events["at"])), "note": (text, events["note"].fillna("")),
        "details": ("jsonb", details), "geom": ("geometry", geom),
        "accuracy_m": ("float4", events["accuracy_m"].to_numpy(dtype=float))})
    return len(events)


def _json_text(values):
    """Values as JSON text (null for None), the encoding done once per distinct value."""
    codes, uniques = pd.factorize(pd.Series(values, dtype=object))
    encoded = np.array([json.dumps(u, ensure_ascii=False) for u in uniques] + ["null"], dtype=object)
    return encoded[codes]  # code -1: the last, null


def _iso(times, quoted=True):
    """UTC timestamps (a Series) as ISO 8601 in China time, as gis.cases writes deadlines: a JSON string, or
    the bare text with ``quoted=False``."""
    local = times.dt.tz_convert(CHINA_TIME).dt.tz_localize(None).to_numpy().astype("M8[s]")
    text = np.char.add(np.datetime_as_string(local, unit="s"), "+08:00")
    return (np.char.add(np.char.add('"', text), '"') if quoted else text).astype(object)


_FIXED = {"int2": ">i2", "int4": ">i4", "int8": ">i8", "float4": ">f4", "float8": ">f8", "timestamptz": ">i8"}
_PG_EPOCH_S = 946_684_800  # 2000-01-01 UTC, where PostgreSQL's binary timestamps count microseconds from
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)


def _copy_binary(cur, table, columns, chunk=100_000):
    """COPY ``columns`` ({name: (type, values)}) into ``table`` in PostgreSQL's binary format, put together
    column-wise by numpy (writing half a million rows as CSV or text takes Python several seconds).

    Types: int2, int4, int8, float4, float8 (NaN is NULL), timestamptz (int64 seconds since 1970, -1 is NULL),
    text and jsonb (str; None is NULL) and geometry (EWKB bytes; None is NULL). Columns without NULLs of a
    fixed width go first, as one block per row; every other field is encoded once per distinct value.
    """
    n = len(next(iter(columns.values()))[1])
    fixed, other = {}, {}
    for name, (kind, values) in columns.items():
        values = np.asarray(values) if kind in _FIXED else values
        null = (np.zeros(n, bool) if kind not in _FIXED else values == NO_TIME if kind == "timestamptz"
                else np.isnan(values) if kind.startswith("float") else np.zeros(n, bool))
        (other if kind not in _FIXED or null.any() else fixed)[name] = (kind, values)
    layout = [("fields", ">i2")]
    for k, kind in enumerate(kind for kind, _ in fixed.values()):
        layout += [(f"size{k}", ">i4"), (f"value{k}", _FIXED[kind])]
    block = np.empty(n, dtype=layout)
    block["fields"] = len(columns)
    for k, (kind, values) in enumerate(fixed.values()):
        block[f"size{k}"] = np.dtype(_FIXED[kind]).itemsize
        block[f"value{k}"] = (values - _PG_EPOCH_S) * 1_000_000 if kind == "timestamptz" else values
    parts = [block.view(f"V{block.dtype.itemsize}").astype(object)]
    for kind, values in other.values():
        codes, uniques = pd.factorize(pd.Series(values, dtype=object))
        tokens = np.array([_field(kind, u) for u in uniques] + [struct.pack(">i", -1)], dtype=object)
        parts.append(tokens[codes])  # code -1 (None, NaN): the last, NULL
    sql = f"copy {table} ({', '.join([*fixed, *other])}) from stdin with (format binary)"
    for first in range(0, n, chunk):
        pieces = np.stack([p[first:first + chunk] for p in parts], axis=1).ravel().tolist()
        data = b"".join([_COPY_HEADER, *pieces, struct.pack(">h", -1)])
        cur.copy_expert(sql, io.BytesIO(data), size=1 << 20)


def _field(kind, value):
    """One field of a binary COPY row: its size and its value."""
    if kind in _FIXED:
        data = np.array((value - _PG_EPOCH_S) * 1_000_000 if kind == "timestamptz" else value,
                        dtype=_FIXED[kind]).tobytes()
    elif kind == "geometry":
        data = value  # EWKB
    else:
        data = (b"\x01" if kind == "jsonb" else b"") + value.encode()
    return struct.pack(">i", len(data)) + data
