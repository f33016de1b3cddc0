"""The Zhengzhou demo build (gis.demo): counts, codes, exact tiling, sizes, staff, caching, determinism.

No database: the GeoPackage is read back with pyogrio. One full build per module; the checks that need
several builds use small ones restricted to a district or two.
"""
import csv
import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import shapely
from pyproj import Transformer

from gis import demo
from gis.demo_layout import CITY_CENTRE, DEV_ZONES, SEATS

METRIC = "EPSG:4547"
TILING_TOLERANCE_M2 = 0.01
DEV_ZONE_HOSTS = {"410171": "410104", "410172": "410102", "410173": "410184"}
DIVISIONS = demo.DATA_DIR / "divisions.csv"


def _to_metric(geoms):
    tr = Transformer.from_crs("EPSG:4326", METRIC, always_xy=True)
    return shapely.transform(geoms, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))


def _read(gpkg):
    levels = []
    for k in range(4):
        frame = pyogrio.read_dataframe(gpkg, layer=f"level{k}")
        frame["metric"] = _to_metric(frame.geometry.values)
        levels.append(frame)
    return levels


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    gpkg = demo.build_demo(out)
    return {"dir": out, "gpkg": gpkg, "levels": _read(gpkg)}


@pytest.fixture(scope="module")
def levels(built):
    return built["levels"]


@pytest.fixture(scope="module")
def divisions():
    with open(DIVISIONS, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_files_and_layers(built):
    assert built["gpkg"] == built["dir"] / "zhengzhou_grids.gpkg"
    assert sorted(p.name for p in built["dir"].iterdir()) == [
        "zhengzhou_grids.gpkg", "zhengzhou_grids.json", "zhengzhou_staff.csv"]
    layers = {name: kind for name, kind in pyogrio.list_layers(built["gpkg"])}
    assert layers == {f"level{k}": "MultiPolygon" for k in range(4)}
    for frame in built["levels"]:
        assert frame.crs.to_epsg() == 4326
        assert list(frame.columns) == ["code", "name", "parent_code", "kind", "population", "geometry", "metric"]
        assert frame["population"].dtype == np.int64


def test_counts(levels):
    assert [len(f) for f in levels[:3]] == [12, 208, 3306]
    assert 20_000 <= len(levels[3]) <= 30_000


def test_real_names_and_codes(levels, divisions):
    for k in (1, 2):
        real = {r["code"]: r["name"] for r in divisions if r["level"] == str(k)}
        assert dict(zip(levels[k]["code"], levels[k]["name"])) == real
    assert dict(zip(levels[0]["code"], levels[0]["name"]))["410104"] == "管城回族区"


@pytest.mark.parametrize("level,length", [(0, 6), (1, 9), (2, 12), (3, 15)])
def test_codes_unique_and_well_formed(levels, level, length):
    codes = levels[level]["code"]
    assert codes.is_unique
    assert codes.str.fullmatch(rf"4101\d{{{length - 4}}}").all()
    parents = levels[level]["parent_code"]
    if level == 0:
        assert parents.isna().all()
        return
    assert set(parents) <= set(levels[level - 1]["code"])
    own = [c.startswith(p) for c, p in zip(codes, parents)]
    if level == 1:
        # Development-zone street units hang under their host district; all others under their own.
        zone = codes.str[:6].isin(list(DEV_ZONES))
        assert all(o for o, z in zip(own, zone) if not z)
        assert {p for p, z in zip(parents, zone) if z} <= set(DEV_ZONE_HOSTS.values())
        assert zone.sum() == 26
    else:
        assert all(own)


def test_dev_zone_streets_are_in_the_district_holding_the_zone_centre(levels):
    districts = levels[0].set_index("code")["metric"]
    streets = levels[1]
    for zone, (_, lonlat) in DEV_ZONES.items():
        centre = shapely.Point(_to_metric(np.array([shapely.Point(lonlat)]))[0])
        mine = streets[streets["code"].str.startswith(zone)]
        assert set(mine["parent_code"]) == {DEV_ZONE_HOSTS[zone]}
        assert districts[DEV_ZONE_HOSTS[zone]].contains(centre)
        # Clustered around the zone centre: nearer to it than the host's own street units are.
        own = streets[streets["parent_code"] == DEV_ZONE_HOSTS[zone]]
        own = own[~own["code"].str.startswith("41017")]
        d_zone = shapely.distance(shapely.centroid(mine["metric"].values), centre)
        d_own = shapely.distance(shapely.centroid(own["metric"].values), centre)
        assert np.median(d_zone) < np.median(d_own)


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_each_level_is_a_valid_coverage_of_single_polygons(levels, level):
    frame = levels[level]
    for geoms in (frame.geometry.values, frame["metric"].values):
        assert shapely.is_valid(geoms).all()
        assert shapely.coverage_is_valid(geoms), "cells overlap or their shared edges do not match"
    assert (shapely.get_type_id(frame.geometry.values) == 6).all()  # MultiPolygon
    assert (shapely.get_num_geometries(frame.geometry.values) == 1).all(), "a cell has several parts"


@pytest.mark.parametrize("level", [1, 2, 3])
def test_each_level_tiles_its_parent(levels, level):
    children, parents = levels[level], levels[level - 1].set_index("code")["metric"]
    for code, group in children.groupby("parent_code"):
        union = shapely.coverage_union_all(group["metric"].values)
        assert shapely.difference(parents[code], union).area < TILING_TOLERANCE_M2, f"gap in {code}"
        assert shapely.difference(union, parents[code]).area < TILING_TOLERANCE_M2, f"{code} overflows"
    assert set(children["parent_code"]) == set(parents.index), "a parent has no child"


def test_districts_keep_their_committed_outlines(levels):
    committed = pyogrio.read_dataframe(demo.DATA_DIR / "districts.geojson").set_index("code")
    built = levels[0].set_index("code")["metric"]
    for code, geom in zip(committed.index, _to_metric(committed.geometry.values)):
        # Noding snaps vertices to a 1 mm grid: the outline moves by less than that, nowhere more.
        assert shapely.hausdorff_distance(built[code].boundary, geom.boundary) < 0.002, code
        assert shapely.symmetric_difference(built[code], geom).area < 1e-6 * geom.area, code


@pytest.mark.parametrize("level", [1, 2, 3])
def test_no_slivers(levels, level):
    frame = levels[level]
    area = shapely.area(frame["metric"].values)
    for _, idx in frame.groupby("parent_code").indices.items():
        if len(idx) > 1:
            assert area[idx].min() >= np.median(area[idx]) / 20


def test_urban_grids_are_smaller_than_rural_ones(levels):
    grids = levels[3]
    area = shapely.area(grids["metric"].values)
    district = grids["code"].str[:6]
    jinshui, dengfeng = np.median(area[district == "410105"]), np.median(area[district == "410185"])
    assert 10_000 <= jinshui <= 60_000, "a core district's unit grids should be classic urban blocks"
    assert dengfeng > 2 * jinshui
    in_village = ~grids["parent_code"].map(dict(zip(levels[2]["code"], levels[2]["name"]))).str.endswith("社区")
    assert np.median(area[in_village]) > 5 * np.median(area[~in_village])


def _centres(geoms):
    return shapely.centroid(geoms)


def test_streets_nearer_the_urban_centre_than_towns(levels):
    # The urban centre of a core district is 二七塔; a county-level unit has its seat.
    streets = levels[1][~levels[1]["code"].str.startswith("41017")]
    checked = 0
    for code, group in streets.groupby("parent_code"):
        towns = ~group["name"].str.endswith("街道")
        if not towns.any() or towns.all():
            continue
        centre = _to_metric(np.array([shapely.Point(SEATS.get(code, CITY_CENTRE))]))[0]
        d = shapely.distance(_centres(group["metric"].values), centre)
        assert np.median(d[~towns.values]) < np.median(d[towns.values]), code
        checked += 1
    assert checked >= 9


def test_communities_nearer_their_street_centre_than_villages(levels):
    streets = levels[1].set_index("code")["metric"]
    communities = levels[2]
    nearer = []
    for code, group in communities.groupby("parent_code"):
        village = ~group["name"].str.endswith("社区")
        if village.any() and not village.all():
            d = shapely.distance(_centres(group["metric"].values), shapely.centroid(streets[code]))
            nearer.append(np.median(d[~village.values]) < np.median(d[village.values]))
    assert len(nearer) > 50 and np.mean(nearer) > 0.8


def test_unit_grids_numbered_from_the_north_west(levels):
    grids = levels[3]
    assert (grids["code"].str[:12] == grids["parent_code"]).all()
    seq = grids["code"].str[-3:].astype(int)
    for _, s in seq.groupby(grids["parent_code"]):
        assert sorted(s) == list(range(1, len(s) + 1))
    y = shapely.get_coordinates(shapely.point_on_surface(grids["metric"].values))[:, 1]
    first_north = [y[i[0]] >= y[i[-1]] for i in grids.groupby("parent_code").indices.values() if len(i) >= 4]
    assert np.mean(first_north) > 0.95


def test_unit_grid_names_and_special_grids(levels):
    grids, communities = levels[3], levels[2].set_index("code")["name"]
    special = grids["kind"] == "special"
    assert set(grids["kind"]) == {"regular", "special"}
    assert 0.015 <= special.mean() <= 0.04
    assert grids.loc[special, "name"].str.endswith("专属网格").all()
    for code, name, parent in grids.loc[~special, ["code", "name", "parent_code"]].itertuples(index=False):
        assert name == f"{communities[parent]}第{int(code[-3:])}网格"
    for frame in levels[:3]:
        assert (frame["kind"] == "regular").all()


def test_populations_add_up(levels):
    for k in (0, 1, 2):
        sums = levels[k + 1].groupby("parent_code")["population"].sum()
        assert (levels[k].set_index("code")["population"] == sums).all()
    grids = levels[3]
    assert (grids["population"] >= 0).all()
    regular = grids[grids["kind"] == "regular"]
    in_village = ~regular["parent_code"].map(dict(zip(levels[2]["code"], levels[2]["name"]))).str.endswith("社区")
    assert 300 <= regular.loc[~in_village, "population"].median() <= 3000
    assert 150 <= regular.loc[in_village, "population"].median() <= 300
    assert 8e6 <= levels[0]["population"].sum() <= 18e6


def test_staff_for_every_post(built, levels):
    with open(built["dir"] / "zhengzhou_staff.csv", encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["cell_code", "post", "name", "phone"]
        rows = list(reader)
    posts = {}
    for r in rows:
        posts.setdefault(r["cell_code"], []).append(r["post"])
        assert re.fullmatch(r"1[3-9]\d{9}", r["phone"]), r
        assert 2 <= len(r["name"]) <= 3
    assert len({r["phone"] for r in rows}) == len(rows)
    for code in levels[3]["code"]:
        assert posts[code].count("网格长") == 1 and 1 <= posts[code].count("网格员") <= 3, code
    for code in levels[2]["code"]:
        assert sorted(posts[code]) == sorted(["社区/村党组织书记", "社区/村委会主任"]), code
    for code in levels[1]["code"]:
        assert posts[code] == ["街道/乡镇负责人"], code
    assert set(posts) == set().union(*(set(levels[k]["code"]) for k in (1, 2, 3)))


def test_manifest(built, levels):
    manifest = json.loads((built["dir"] / "zhengzhou_grids.json").read_text(encoding="utf-8"))
    assert manifest["seed"] == demo.DEFAULT_SEED and manifest["version"] == demo.DEMO_VERSION
    assert manifest["counts"] == {f"level{k}": len(levels[k]) for k in range(4)}
    assert set(manifest["inputs"]) == {"districts.geojson", "divisions.csv"}


# --- small builds: caching, atomic writes, determinism ---------------------------------------------------

def _attributes(gpkg):
    return [pyogrio.read_dataframe(gpkg, layer=f"level{k}", read_geometry=False) for k in range(4)]


def _wkb(gpkg):
    return [shapely.to_wkb(pyogrio.read_dataframe(gpkg, layer=f"level{k}").geometry.values) for k in range(4)]


def test_second_build_is_served_from_the_cache(tmp_path):
    gpkg = demo.build_demo(tmp_path, seed=7, districts=["410106"])
    stamp = gpkg.stat().st_mtime_ns
    assert demo.build_demo(tmp_path, seed=7, districts=["410106"]) == gpkg
    assert gpkg.stat().st_mtime_ns == stamp
    demo.build_demo(tmp_path, seed=8, districts=["410106"])  # another seed: rebuilt
    assert gpkg.stat().st_mtime_ns != stamp
    assert json.loads((tmp_path / "zhengzhou_grids.json").read_text())["seed"] == 8


def test_a_damaged_output_is_rebuilt(tmp_path):
    gpkg = demo.build_demo(tmp_path, seed=7, districts=["410106"])
    (tmp_path / "zhengzhou_staff.csv").write_text("cell_code,post,name,phone\n", encoding="utf-8")
    demo.build_demo(tmp_path, seed=7, districts=["410106"])
    assert len((tmp_path / "zhengzhou_staff.csv").read_text(encoding="utf-8").splitlines()) > 100
    assert gpkg.is_file()


def test_an_interrupted_build_leaves_no_file(tmp_path, monkeypatch):
    def broken(*_):
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "_write_staff", broken)
    with pytest.raises(KeyboardInterrupt):
        demo.build_demo(tmp_path, seed=7, districts=["410106"])
    assert list(tmp_path.iterdir()) == []


def test_same_seed_same_partition(tmp_path):
    subset = ["410104", "410106"]  # 管城 hosts the 经开区 street units
    a = demo.build_demo(tmp_path / "a", seed=11, districts=subset)
    b = demo.build_demo(tmp_path / "b", seed=11, districts=subset)
    c = demo.build_demo(tmp_path / "c", seed=12, districts=subset)
    for x, y in zip(_attributes(a), _attributes(b)):
        assert x.equals(y)
    assert all((x == y).all() for x, y in zip(_wkb(a), _wkb(b)))
    assert (a.parent / "zhengzhou_staff.csv").read_bytes() == (b.parent / "zhengzhou_staff.csv").read_bytes()
    assert not all(len(x) == len(y) and (x == y).all() for x, y in zip(_wkb(a), _wkb(c)))
    assert (_attributes(a)[1]["code"].str[:6] == "410171").sum() == 6


def test_a_district_is_laid_out_alone_as_in_the_full_build(tmp_path, levels):
    alone = _read(demo.build_demo(tmp_path, districts=["410106"]))
    full = levels[3][levels[3]["code"].str.startswith("410106")].reset_index(drop=True)
    assert list(alone[3]["code"]) == list(full["code"])
    assert np.allclose(shapely.area(alone[3]["metric"].values), shapely.area(full["metric"].values), atol=1.0)


def test_unknown_district_is_refused(tmp_path):
    with pytest.raises(demo.BadInput):
        demo.build_demo(tmp_path, districts=["999999"])


# --- the derivation script ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def derive():
    path = Path(__file__).resolve().parent.parent / "data" / "derive_zhengzhou.py"
    spec = importlib.util.spec_from_file_location("derive_zhengzhou", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("raw,short", [
    ("碧沙岗社区居民委员会", "碧沙岗社区"), ("嵩溪园居委会", "嵩溪园社区"), ("亚星社区居民管理委员会", "亚星社区"),
    ("福华南街社区委员会", "福华南街社区"), ("段庄村委会", "段庄村"), ("小刘村村委会", "小刘村"),
    ("北峡窝村村民委员会", "北峡窝村"), ("光合花园社区", "光合花园社区"), ("柴村", "柴村"),
])
def test_short_community_names(derive, raw, short):
    assert derive.short_community_name(raw) == short


def test_clean_coverage_settles_overlaps_and_gaps(derive):
    left = shapely.box(0, 0, 10, 10)
    right = shapely.box(9, 0, 20, 10)  # overlaps left by a 1 x 10 strip
    top = shapely.box(0, 10, 20, 20).difference(shapely.box(4, 9, 6, 11))  # leaves a 2 x 1 hole above left
    cleaned, report = derive.clean_coverage(np.array([left, right, top]))
    assert report["overlap_faces"] == 1 and report["overlap_m2"] == pytest.approx(10)
    assert report["gap_faces"] == 1 and report["gap_m2"] == pytest.approx(2)
    assert shapely.coverage_is_valid(cleaned)
    assert shapely.union_all(cleaned).area == pytest.approx(400)
    assert sum(shapely.area(cleaned)) == pytest.approx(400)
    # The gap borders top on three sides and left on one: top gets it.
    assert cleaned[2].area == pytest.approx(200)
