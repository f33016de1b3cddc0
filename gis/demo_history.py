"""A deterministic history of field reports for the demo: :func:`generate` draws it, :func:`load` stores it.

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
* **Status.** Each report runs through opened → dispatched → in_progress → handled → closed with
  durations drawn around its subclass's time limit; its status is the last step reached by ``end``, so
  old reports are mostly closed and the last days' mostly open. About 3 % are voided, and ~2 % of the
  rest get stuck (never closed).

Same seed, same cells, same frame: every draw comes from one ``numpy.random.default_rng(seed)``.
"""
from __future__ import annotations

import csv
import datetime as dt
import functools
import hashlib
import io
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely
from psycopg2.extras import RealDictCursor

from gis import batch_routing, grid_store
from gis import crs as crs_mod
from gis.demo_people import SURNAMES, person_names
from gis.errors import BadInput, NotFound
from gis.event_classes import CLASSES_CSV

DEFAULT_SEED = 20261123
CHINA_TIME = dt.timezone(dt.timedelta(hours=8))
DEFAULT_END = pd.Timestamp("2026-11-23T00:00:00+08:00")
CLIENT_ID_PREFIX = "demo-"
STATUSES = ("reported", "opened", "voided", "dispatched", "in_progress", "handled", "closed")
COLUMNS = ("lon", "lat", "category", "description", "reported_at", "source", "accuracy_m", "status",
           "status_changed_at", "reporter", "client_request_id")

M_PER_DEG = 6371008.8 * np.pi / 180  # metres per degree of latitude (mean Earth radius)

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

VOID_SHARE = 0.03
STUCK_SHARE = 0.02

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
    limit_h: np.ndarray        # time limit, wall-clock hours (working hours stretched)

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
    limit = np.array([float(r["time_limit_hours"]) for r in rows])
    working = np.array([r["time_basis"] == "working" for r in rows])
    return Categories(codes=codes, class_codes=class_codes, names=np.array([r["name_zh"] for r in rows]),
                      p=p / p.sum(), complaint=np.isin(codes, list(COMPLAINT_CODES)),
                      limit_h=np.where(working, limit * 2.5, limit))


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
        tree = self._tree()
        points = shapely.points(x, y)
        hit = tree.query(points, predicate="intersects")
        covered = np.zeros(len(points), bool)
        covered[hit[0]] = True
        return covered

    def _tree(self):
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
    reporter (JSON text) and ``complaint`` (bool: a citizen's complaint rather than a patrol finding)."""
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
        "reporter": reporters, "complaint": complaint,
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


# --- when, and what became of it ---------------------------------------------------------------------

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


def _statuses(rng, category_index, source, reported_s, end_s):
    """Status and the second it was reached, from durations drawn around each subclass's time limit."""
    cats = categories()
    n = reported_s.size
    limit = cats.limit_h[category_index]
    hour = 3600.0
    manual = source != "field_app"  # a hotline call or an Open311 request waits longer to be opened
    t_open = rng.exponential(np.where(manual, 1.5, 0.4), size=n) * hour + 60
    t_dispatch = t_open + rng.exponential(0.8, size=n) * hour + 60
    t_progress = t_dispatch + rng.exponential(np.maximum(limit * 0.2, 0.3), size=n) * hour + 60
    t_handled = t_progress + limit * np.exp(rng.normal(-0.3, 0.6, size=n)) * hour
    t_closed = t_handled + rng.exponential(18.0, size=n) * hour + 600
    steps = np.stack([np.zeros(n), t_open, t_dispatch, t_progress, t_handled, t_closed], axis=1)
    names = np.array(["reported", "opened", "dispatched", "in_progress", "handled", "closed"])
    # Stuck: never gets past some step before "closed".
    stuck = rng.random(n) < STUCK_SHARE
    stuck_at = rng.integers(2, 5, size=n)  # stops at dispatched, in_progress or handled
    cols = np.arange(6)[None, :]
    steps = np.where(stuck[:, None] & (cols > stuck_at[:, None]), np.inf, steps)
    age = (end_s - reported_s).astype(float)
    reached = (steps <= age[:, None]).sum(axis=1) - 1
    status = names[reached]
    changed = reported_s + np.floor(steps[np.arange(n), reached]).astype(np.int64)
    # Voided: found to be no case (a duplicate, outside the remit) once it was opened.
    void = rng.random(n) < VOID_SHARE
    t_void = t_open + rng.exponential(1.0, size=n) * hour
    voided = void & (t_void <= age)
    status = np.where(voided, "voided", status)
    changed = np.where(voided, reported_s + np.floor(t_void).astype(np.int64), changed)
    changed = np.minimum(changed, end_s)
    return status, changed


def generate(cells, *, seed=DEFAULT_SEED, count=100_000, days=90, end=None):
    """A history of ``count`` incidents over ``days`` days before ``end``: a DataFrame, oldest first.

    Parameters
    ----------
    cells : (Geo)DataFrame
        The unit grids (level 3) of the active version: ``geometry`` polygons in EPSG:4326, and
        optionally ``area_m2``, ``kind``, ``name``, ``population`` (they sharpen the model).
    seed : int
        Same seed and cells, same frame.
    end : datetime-like, optional
        Timezone-aware; default 2026-11-23T00:00+08:00.

    Returns
    -------
    DataFrame with lon, lat (WGS84), category (subclass code), description, reported_at (UTC),
    source, accuracy_m, status, status_changed_at (UTC, ≥ reported_at), reporter (JSON text) and
    client_request_id (``demo-000000`` for the oldest).
    """
    if count < 0 or days <= 0:
        raise BadInput("count must be ≥ 0 and days > 0")
    end = DEFAULT_END if end is None else pd.Timestamp(end)
    if end.tzinfo is None:
        raise BadInput("end must be timezone-aware")
    rng = np.random.default_rng(seed)
    model = LocationModel.from_cells(cells, rng)
    reports = draw_reports(model, rng, count)
    reported = _times(rng, reports["complaint"].to_numpy(), days, end)
    cats = categories()
    cat_index = pd.Index(cats.codes).get_indexer(reports["category"].to_numpy())
    status, changed = _statuses(rng, cat_index, reports["source"].to_numpy(), reported, int(end.timestamp()))
    frame = pd.DataFrame({
        "lon": reports["lon"], "lat": reports["lat"], "category": reports["category"],
        "description": reports["description"],
        "reported_at": pd.to_datetime(reported, unit="s", utc=True),
        "source": reports["source"], "accuracy_m": reports["accuracy_m"], "status": status,
        "status_changed_at": pd.to_datetime(changed, unit="s", utc=True),
        "reporter": reports["reporter"],
    })
    frame = frame.sort_values("reported_at", kind="stable", ignore_index=True)
    frame["client_request_id"] = [f"{CLIENT_ID_PREFIX}{i:06d}" for i in range(len(frame))]
    return frame


# --- into the database ----------------------------------------------------------------------------------

def read_cells(cur, version_id, level=3):
    """The unit grids of a version as a DataFrame (code, name, kind, population, area_m2, geometry)."""
    cur.execute("select code, name, kind, population, area_m2, ST_AsBinary(geom) as wkb from grid_cell"
                " where version_id = %s and level = %s order by code", (version_id, level))
    rows = cur.fetchall()
    frame = pd.DataFrame({
        "code": [r["code"] for r in rows], "name": [r["name"] for r in rows], "kind": [r["kind"] for r in rows],
        "population": np.array([r["population"] if r["population"] is not None else np.nan for r in rows],
                               dtype=float),
        "area_m2": np.array([r["area_m2"] for r in rows], dtype=float),
    })
    geoms = np.empty(len(rows), dtype=object)
    geoms[:] = list(shapely.from_wkb([bytes(r["wkb"]) for r in rows])) if rows else []
    frame["geometry"] = geoms
    return frame


def load(db, settings, *, count=100_000, seed=DEFAULT_SEED, days=90, end=None, echo=print):
    """Generate the history from the active version's unit grids, store and route it, in one transaction.

    Does nothing when demo incidents (client_request_id ``demo-…``) are there already. Returns a message.
    """
    if count < 1:
        raise BadInput("count must be at least 1")
    started = time.perf_counter()
    with db.connection() as conn, conn.cursor(cursor_factory=RealDictCursor) as cur:
        cur.execute("select pg_advisory_xact_lock(hashtext('gridmap demo history'))")  # one loader at a time
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
        frame = generate(cells, seed=seed, count=count, days=days, end=end)
        echo(f"  generated in {time.perf_counter() - t:.1f} s")
        _check_categories(cur, frame)

        t = time.perf_counter()
        inserted = _insert(cur, frame)
        echo(f"  inserted {inserted:,} incidents in {time.perf_counter() - t:.1f} s")

        t = time.perf_counter()
        batch_routing.route_unrouted(cur, reason="import", snap_m=settings.snap_m)
        cur.execute("select coalesce(routing_status::text, 'not routed') as status, count(*) as n from incident"
                    " where client_request_id like %s group by 1 order by 2 desc", (CLIENT_ID_PREFIX + "%",))
        by_routing = ", ".join(f"{r['status']} {r['n']:,}" for r in cur.fetchall())
        echo(f"  routed in bulk in {time.perf_counter() - t:.1f} s: {by_routing}")
        cur.execute("analyze incident")
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


def _insert(cur, frame):
    cur.execute("""create temp table demo_history_in (
                       lon double precision, lat double precision, category text, description text,
                       reported_s bigint, source text, accuracy_m real, status text, changed_s bigint,
                       reporter jsonb, client_request_id text) on commit drop""")
    # Times as seconds since the epoch: formatting 100,000 timestamps as text takes pandas seconds.
    epoch, second = pd.Timestamp(0, tz="UTC"), pd.Timedelta(seconds=1)
    out = frame[list(COLUMNS)].rename(columns={"reported_at": "reported_s", "status_changed_at": "changed_s"})
    out["reported_s"] = (frame["reported_at"] - epoch) // second
    out["changed_s"] = (frame["status_changed_at"] - epoch) // second
    buf = io.StringIO()
    out.to_csv(buf, header=False, index=False)
    buf.seek(0)
    cur.copy_expert(f"copy demo_history_in ({', '.join(out.columns)}) from stdin with (format csv)", buf)
    cur.execute("""insert into incident (category, description, given_x, given_y, given_crs, geom, accuracy_m,
                                         source, reporter, client_request_id, reported_at, received_at, status,
                                         status_changed_at)
                   select category, description, lon, lat, 'EPSG:4326', ST_SetSRID(ST_MakePoint(lon, lat), 4326),
                          accuracy_m, source, reporter, client_request_id, to_timestamp(reported_s),
                          to_timestamp(reported_s), status, to_timestamp(changed_s)
                     from demo_history_in
                    order by reported_s, client_request_id""")
    inserted = cur.rowcount
    cur.execute("drop table demo_history_in")
    return inserted
