"""The Zhengzhou demo partition: real districts and names, synthetic grids, built once and cached.

:func:`build_demo` reads only ``data/zhengzhou/`` (the district outlines and the
names and codes of every street unit and community, see ``data/README.md``),
lays out the synthetic levels below the districts (:mod:`gis.demo_layout`,
:mod:`gis.demo_partition`), adds populations, special grids and staff
(:mod:`gis.demo_people`), and writes

``zhengzhou_grids.gpkg``
    Layers ``level0`` (12 districts) … ``level3`` (unit grids), columns ``code``,
    ``name``, ``parent_code`` (null on level0), ``kind`` ('regular'/'special'),
    ``population``; MultiPolygon geometries in EPSG:4326. Each level is a valid
    coverage that tiles the level above exactly.
``zhengzhou_staff.csv``
    ``cell_code,post,name,phone``, posts named as the grid store names them.
``zhengzhou_grids.json``
    The manifest: generator version, seed, counts and the sha256 of inputs and
    outputs. A build whose manifest matches returns at once.

Example
-------
>>> from gis.demo import build_demo
>>> gpkg = build_demo(".gridmap/demo")            # doctest: +SKIP
>>> import geopandas; geopandas.read_file(gpkg, layer="level3").shape   # doctest: +SKIP
(25708, 6)
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import shapely
from pyproj import Transformer

from gis.demo_layout import METRIC_CRS, build_partition
from gis.demo_people import grid_populations, make_phones_unique, pick_special, staff_rows
from gis.errors import BadInput, NotFound

DEMO_VERSION = "1"  # bump whenever the output for a given seed changes
DEFAULT_SEED = 20240501
DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "zhengzhou"
INPUTS = ("districts.geojson", "divisions.csv")
GPKG_NAME = "zhengzhou_grids.gpkg"
STAFF_NAME = "zhengzhou_staff.csv"
MANIFEST_NAME = "zhengzhou_grids.json"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_inputs(data_dir: Path = DATA_DIR, districts=None):
    """Read the committed inputs.

    Parameters
    ----------
    data_dir : Path
        Holds ``districts.geojson`` and ``divisions.csv``.
    districts : iterable of str, optional
        District codes to keep (all 12 if omitted).

    Returns
    -------
    districts : list of (code, name, Polygon in EPSG:4547), sorted by code
    streets : list of (code, name, area_code)
    communities : list of (code, name, street_code)
    """
    missing = [n for n in INPUTS if not (data_dir / n).is_file()]
    if missing:
        raise NotFound(f"demo inputs missing in {data_dir}: {', '.join(missing)}")
    frame = pyogrio.read_dataframe(data_dir / "districts.geojson")
    to_metric = Transformer.from_crs("EPSG:4326", METRIC_CRS, always_xy=True)
    geoms = shapely.transform(frame.geometry.values,
                              lambda xy: np.column_stack(to_metric.transform(xy[:, 0], xy[:, 1])))
    rows = sorted(zip(frame["code"].astype(str), frame["name"].astype(str), geoms))
    if districts is not None:
        wanted = {str(d) for d in districts}
        unknown = wanted - {c for c, _, _ in rows}
        if unknown:
            raise BadInput(f"unknown district code(s): {', '.join(sorted(unknown))}")
        rows = [r for r in rows if r[0] in wanted]
    streets, communities = [], []
    with open(data_dir / "divisions.csv", encoding="utf-8", newline="") as f:
        for rec in csv.DictReader(f):
            target = streets if rec["level"] == "1" else communities
            target.append((rec["code"], rec["name"], rec["parent_code"]))
    return rows, streets, communities


def _manifest_matches(out_dir: Path, expected: dict) -> bool:
    path = out_dir / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if any(manifest.get(k) != v for k, v in expected.items()):
        return False
    outputs = manifest.get("outputs", {})
    return all((out_dir / name).is_file() and _sha256(out_dir / name) == digest
               for name, digest in outputs.items()) and set(outputs) == {GPKG_NAME, STAFF_NAME}


def build_demo(out_dir, seed: int = DEFAULT_SEED, *, districts=None, data_dir=DATA_DIR) -> Path:
    """Build the Zhengzhou demo partition into ``out_dir`` unless it is there already.

    Parameters
    ----------
    out_dir : str or Path
        Created if missing.
    seed : int
        The same seed gives identical attributes and geometries.
    districts : iterable of str, optional
        Restrict the build to these district codes (with the development-zone
        street units they host); for quick tests. All 12 if omitted.
    data_dir : Path
        Where the committed inputs are.

    Returns
    -------
    Path
        The GeoPackage; the staff CSV and the manifest lie beside it.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data_dir = Path(data_dir)
    expected = {
        "generator": "gis.demo",
        "version": DEMO_VERSION,
        "seed": int(seed),
        "districts": sorted(str(d) for d in districts) if districts is not None else None,
        "inputs": {n: _sha256(data_dir / n) for n in INPUTS if (data_dir / n).is_file()},
    }
    if _manifest_matches(out_dir, expected):
        return out_dir / GPKG_NAME

    district_rows, streets, communities = load_inputs(data_dir, districts)
    levels = build_partition(district_rows, streets, communities, int(seed))
    attributes = _people(levels, int(seed))

    # Write beside the targets under temporary names, then rename: a reader (or an
    # interrupted build) never sees half a file, and the manifest goes last.
    tag = f".tmp-{os.getpid()}"
    gpkg_tmp = out_dir / f"zhengzhou_grids{tag}.gpkg"
    staff_tmp = out_dir / f"{STAFF_NAME}{tag}"
    manifest_tmp = out_dir / f"{MANIFEST_NAME}{tag}"
    try:
        counts = _write_gpkg(levels, attributes["population"], gpkg_tmp)
        _write_staff(attributes["staff"], staff_tmp)
        manifest = dict(expected, counts=counts, crs="EPSG:4326",
                        outputs={GPKG_NAME: _sha256(gpkg_tmp), STAFF_NAME: _sha256(staff_tmp)})
        manifest_tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        (out_dir / MANIFEST_NAME).unlink(missing_ok=True)
        os.replace(gpkg_tmp, out_dir / GPKG_NAME)
        os.replace(staff_tmp, out_dir / STAFF_NAME)
        os.replace(manifest_tmp, out_dir / MANIFEST_NAME)
    finally:
        for tmp in (gpkg_tmp, staff_tmp, manifest_tmp):
            tmp.unlink(missing_ok=True)
    return out_dir / GPKG_NAME


def _people(levels, seed: int) -> dict:
    """Special grids, populations (parents = sum of children) and staff, one random stream per district.

    Mutates ``levels[3]`` (names and kinds of the special grids).
    """
    l0, l1, l2, l3 = levels
    street_district = dict(zip(l1.code, l1.parent_code))
    community_district = {c: street_district[p] for c, p in zip(l2.code, l2.parent_code)}
    cindex = {c: i for i, c in enumerate(l2.code)}
    grid_parent = np.array([cindex[p] for p in l3.parent_code])
    grid_district = np.array([community_district[p] for p in l3.parent_code])
    area = shapely.area(l3.geometry)
    pop3 = np.zeros(len(l3.code), np.int64)
    staff = []
    for d in l0.code:
        rng = np.random.default_rng([seed, int(d), 1])
        mine = np.flatnonzero(grid_district == d)
        special = pick_special(rng, grid_parent[mine], l3.urban[mine], l2.name)
        is_special = np.zeros(len(mine), bool)
        for local, name in special.items():
            g = mine[local]
            l3.name[g], l3.kind[g] = name, "special"
            is_special[local] = True
        pop3[mine] = grid_populations(rng, area[mine], l3.urban[mine], is_special)
        staff += staff_rows(rng, [c for c, p in zip(l1.code, l1.parent_code) if p == d],
                            [c for c in l2.code if community_district[c] == d],
                            [l3.code[g] for g in mine])
    pop2 = np.bincount(grid_parent, weights=pop3, minlength=len(l2.code)).astype(np.int64)
    sindex = {c: i for i, c in enumerate(l1.code)}
    pop1 = np.bincount([sindex[p] for p in l2.parent_code], weights=pop2, minlength=len(l1.code)).astype(np.int64)
    dindex = {c: i for i, c in enumerate(l0.code)}
    pop0 = np.bincount([dindex[p] for p in l1.parent_code], weights=pop1, minlength=len(l0.code)).astype(np.int64)
    # Streets, then communities, then unit grids, each by code; stable, so a cell's posts keep their order.
    staff.sort(key=lambda r: (len(r[0]), r[0]))
    staff = make_phones_unique(staff, np.random.default_rng([seed, 0, 1]))
    return {"population": [pop0, pop1, pop2, pop3], "staff": staff}


def _write_gpkg(levels, populations, path: Path) -> dict:
    to_wgs84 = Transformer.from_crs(METRIC_CRS, "EPSG:4326", always_xy=True)
    counts = {}
    for k, (level, pop) in enumerate(zip(levels, populations)):
        order = np.argsort(level.code, kind="stable")
        geoms = shapely.transform(level.geometry[order],
                                  lambda xy: np.column_stack(to_wgs84.transform(xy[:, 0], xy[:, 1])))
        frame = gpd.GeoDataFrame(
            {
                "code": [level.code[i] for i in order],
                "name": [level.name[i] for i in order],
                "parent_code": [level.parent_code[i] for i in order],
                "kind": [level.kind[i] for i in order],
                "population": pop[order].astype(np.int64),
            },
            geometry=shapely.multipolygons(geoms, indices=np.arange(len(geoms))),
            crs="EPSG:4326",
        )
        pyogrio.write_dataframe(frame, path, layer=f"level{k}", driver="GPKG", geometry_type="MultiPolygon")
        counts[f"level{k}"] = len(frame)
    return counts


def _write_staff(rows, path: Path) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["cell_code", "post", "name", "phone"])
        w.writerows(rows)
