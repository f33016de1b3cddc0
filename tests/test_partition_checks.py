"""Tests of gis.partition_checks: hand-drawn defects in metres, code checks, the incremental check, bad input,
and the demo partition (which must be clean at every level)."""
import time
from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box

import fixtures
from fixtures import A, B, C, D, E, MX, MY, metric_children, metric_geom, metric_parents, with_cells
from gis import crs
from gis.errors import BadInput
from gis.partition_checks import (PROBLEM_TYPES, Cells, Problem, Tolerances, check_cell, check_level,
                                  check_partition, summarize)


def only(problems, kind):
    return [p for p in problems if p.type == kind]


def one(problems, kind):
    found = only(problems, kind)
    assert len(found) == 1, [(p.type, p.codes, p.detail) for p in problems]
    return found[0]


def cells_of(rows, level=3, parents=True):
    """Cells from ``[(code, geom, parent)]``."""
    geoms = np.empty(len(rows), dtype=object)
    geoms[:] = [r[1] for r in rows]
    return Cells(np.array([r[0] for r in rows], dtype=object), geoms, level,
                 np.array([r[2] for r in rows], dtype=object) if parents else None)


# --- clean partitions --------------------------------------------------------------------------------------

def test_the_clean_fixture_has_no_problems():
    assert check_level(metric_children(), metric_parents()) == []
    assert check_level(metric_parents(), None) == []
    assert check_level(metric_children(), None) == []   # a file alone: no holes inside the union
    assert check_level(metric_children(), None, outline=box(MX, MY, MX + 400, MY + 200)) == []
    assert check_partition({2: metric_parents(), 3: metric_children()}) == []


def test_children_that_do_not_share_the_parents_vertices_are_still_clean():
    # The parents here are single boxes: their edges have no vertex where two children meet.
    children = metric_children()
    rows = [(c, shapely.segmentize(g, 7.0), p) for c, g, p in zip(children.codes, children.geoms,
                                                                   children.parent_codes)]
    assert check_level(cells_of(rows), metric_parents()) == []


def projected_fixture_levels(densify_deg=None):
    levels = {}
    for level in range(4):
        rows = fixtures.cells(level)
        geoms = np.array([r[3] for r in rows], dtype=object)
        if densify_deg:
            geoms = shapely.segmentize(geoms, densify_deg)
        geoms = crs.transform_geometries(geoms, "EPSG:4326", "EPSG:4547")
        levels[level] = Cells(np.array([r[0] for r in rows], dtype=object), geoms, level,
                              np.array([r[2] for r in rows], dtype=object) if level else None)
    return levels


def test_straight_edges_in_degrees_are_not_straight_in_metres():
    # The 4326 fixture partition is exact in degrees, but a child's vertex half-way along its parent's
    # 9 km edge lands 1.1 m off the parent's straight edge in Gauss-Krüger: real gaps and spills.
    problems = check_partition(projected_fixture_levels())
    assert {p.type for p in problems} == {"gap", "spill"}
    assert max(p.width_m for p in problems) == pytest.approx(1.14, abs=0.05)
    # densified before projecting (~50 m segments), the bends are far below the 1 cm noise
    assert check_partition(projected_fixture_levels(densify_deg=0.0005)) == []


# --- gaps, overlaps, spills, slivers -------------------------------------------------------------------------

def test_a_point_sized_gap_of_5_cm_is_real():
    gap = one(check_level(fixtures.point_gap(), metric_parents()), "gap")
    assert gap.codes == (A, B, C)           # D touches it only at a corner
    assert gap.area_m2 == pytest.approx(0.0025, rel=1e-3)
    assert gap.width_m == pytest.approx(0.05, rel=0.01)
    assert gap.parent_code == fixtures.M_COMMUNITIES[0]
    assert gap.geometry.geom_type == "Polygon" and gap.geometry.area == pytest.approx(0.0025, rel=1e-3)
    assert "0.05 m wide" in gap.detail and "inside 410105001001" in gap.detail


@pytest.mark.parametrize("dx", [0.005, 0.01, -0.01])
def test_a_1_cm_shift_is_noise(dx):
    assert check_level(fixtures.shifted(dx), metric_parents()) == []
    assert check_level(fixtures.shifted(dx), None) == []


def test_noise_is_a_tolerance():
    problems = check_level(fixtures.shifted(0.01), metric_parents(), tol=Tolerances(noise_m=0.001))
    assert [(p.type, p.codes) for p in problems] == [("overlap", (A, B)), ("gap", (A, C))]
    assert one(problems, "overlap").width_m == pytest.approx(0.01, rel=0.01)


def test_a_2_m_gap():
    gap = one(check_level(fixtures.gap_2m(), metric_parents()), "gap")
    assert gap.codes == (A, B, C)
    assert gap.area_m2 == pytest.approx(200.0, rel=1e-6)
    assert gap.width_m == pytest.approx(2.0, rel=0.01)
    x0, y0, x1, y1 = gap.geometry.bounds
    assert (x0, x1) == pytest.approx((MX + 98, MX + 100)) and (y0, y1) == pytest.approx((MY + 100, MY + 200))


def test_a_gap_in_a_file_without_parents_is_a_hole_in_the_union():
    gap = one(check_level(fixtures.point_gap(), None), "gap")
    assert gap.codes == (A, B, C) and gap.area_m2 == pytest.approx(0.0025, rel=1e-3) and gap.parent_code is None
    # A's edge pulled back from the edge of the union is a notch, not a hole: nothing says it was meant
    # to be covered ...
    assert check_level(fixtures.gap_2m(), None) == []
    edge = with_cells(metric_children(), {A: box(MX + 2, MY + 100, MX + 100, MY + 200)})
    assert check_level(edge, None) == []
    # ... unless an outline says so
    gap = one(check_level(fixtures.gap_2m(), None, outline=box(MX, MY, MX + 400, MY + 200)), "gap")
    assert gap.codes == (A, B, C) and gap.area_m2 == pytest.approx(200.0)
    gap = one(check_level(edge, None, outline=box(MX, MY, MX + 400, MY + 200)), "gap")
    assert gap.codes == (A, C) and gap.area_m2 == pytest.approx(200.0)


def test_a_cell_poking_5_m_into_its_neighbour():
    problems = check_level(fixtures.poke_5m(), metric_parents())
    overlap = one(problems, "overlap")
    assert overlap.codes == (A, B)
    assert overlap.area_m2 == pytest.approx(100.0)
    assert overlap.width_m == pytest.approx(5.0, rel=0.01)
    assert overlap.geometry.bounds == pytest.approx((MX + 100, MY + 140, MX + 105, MY + 160))
    assert [p.type for p in problems] == ["overlap"]


def test_a_shifted_cell_overlaps_and_leaves_a_gap():
    problems = check_level(fixtures.shifted(9.0), metric_parents())
    assert one(problems, "overlap").codes == (A, B) and one(problems, "overlap").area_m2 == pytest.approx(900.0)
    gap = one(problems, "gap")
    assert gap.codes == (A, C) and gap.area_m2 == pytest.approx(900.0) and gap.width_m == pytest.approx(9.0, rel=0.01)


def test_a_child_spilling_over_its_parent():
    problems = check_level(fixtures.spill_3m(), metric_parents())
    spill = one(problems, "spill")
    assert spill.codes == (B,) and spill.parent_code == fixtures.M_COMMUNITIES[0]
    assert spill.area_m2 == pytest.approx(300.0) and spill.width_m == pytest.approx(3.0, rel=0.01)
    assert one(problems, "overlap").codes == (B, E)
    assert not only(problems, "gap")


def test_spilling_out_of_the_district_is_a_spill_only():
    cells = with_cells(metric_children(), {A: box(MX - 4, MY + 100, MX + 100, MY + 200)})
    problems = check_level(cells, metric_parents())
    assert [(p.type, p.codes) for p in problems] == [("spill", (A,))]
    assert problems[0].area_m2 == pytest.approx(400.0)
    outline = check_level(cells, None, outline=box(MX, MY, MX + 400, MY + 200))
    assert [(p.type, p.codes) for p in outline] == [("spill", (A,))]


def test_a_parent_with_no_children_is_one_gap():
    cells = with_cells(metric_children(), drop={c for c in metric_children().codes if c.startswith(E[:12])})
    gap = one(check_level(cells, metric_parents()), "gap")
    assert gap.codes == () and gap.parent_code == fixtures.M_COMMUNITIES[1]
    assert gap.area_m2 == pytest.approx(40_000.0) and "no children" in gap.detail


def test_a_tiny_sliver_cell():
    sliver = one(check_level(fixtures.sliver_cell(), metric_parents()), "sliver")
    assert sliver.codes == ("410105001001005",)
    assert sliver.area_m2 == pytest.approx(50.0) and sliver.width_m == pytest.approx(0.5, rel=0.01)
    small = with_cells(metric_children(), {A: metric_geom(A).difference(box(MX, MY + 195, MX + 5, MY + 200))},
                       add=[("410105001001005", box(MX, MY + 195, MX + 5, MY + 200), fixtures.M_COMMUNITIES[0])])
    sliver = one(check_level(small, metric_parents()), "sliver")
    assert sliver.area_m2 == pytest.approx(25.0) and sliver.width_m == pytest.approx(5.0, rel=0.01)
    assert check_level(small, metric_parents(), tol=Tolerances(sliver_area_m2=20.0)) == []


def test_a_two_part_cell_and_its_sliver_part():
    problems = check_level(fixtures.two_part(), metric_parents())
    assert [(p.type, p.codes) for p in problems] == [("multipart", (A,)), ("multipart", (B,))]
    assert "2 parts" in problems[0].detail
    crumb = box(MX + 120, MY + 199.5, MX + 170, MY + 200)   # 0.5 m × 50 m of B, given to A
    cells = with_cells(metric_children(), {A: MultiPolygon([metric_geom(A), crumb]),
                                           B: metric_geom(B).difference(crumb)})
    problems = check_level(cells, metric_parents())
    assert {p.type for p in problems} == {"multipart", "sliver"}
    sliver = one(problems, "sliver")
    assert sliver.codes == (A,) and sliver.geometry.equals(crumb) and "part of" in sliver.detail


def test_check_partition_checks_every_level_against_the_one_above():
    problems = check_partition({2: metric_parents(), 3: fixtures.gap_2m()})
    assert [(p.type, p.level) for p in problems] == [("gap", 3)]


# --- invalid and odd geometry ------------------------------------------------------------------------------

def test_a_bow_tie_is_invalid_with_its_reason_and_location():
    problems = check_level(with_cells(metric_children(), {A: fixtures.M_BOW_TIE}), metric_parents())
    invalid = one(problems, "invalid")
    assert invalid.codes == (A,)
    assert invalid.detail.startswith("Self-intersection at (500,050.00, 3,800,150.00)")
    assert invalid.geometry.equals(Point(MX + 50, MY + 150))
    # the fixed bow-tie (two triangles) still takes part: the two triangles A no longer covers are gaps
    gaps = only(problems, "gap")
    assert len(gaps) == 2 and sum(g.area_m2 for g in gaps) == pytest.approx(5000.0)


def test_empty_and_missing_geometries():
    cells = with_cells(metric_children(), {A: Polygon(), B: None})
    problems = check_level(cells, metric_parents())
    assert sorted(p.codes for p in only(problems, "empty")) == [(A,), (B,)]
    assert one(problems, "gap").area_m2 == pytest.approx(20_000.0)


def test_points_lines_and_collections_are_not_polygons():
    collection = shapely.GeometryCollection([metric_geom(A), LineString([(MX, MY), (MX + 1, MY + 1)])])
    cells = with_cells(metric_children(), {A: Point(MX + 50, MY + 150), B: LineString([(MX, MY), (MX + 5, MY)]),
                                           C: collection})
    problems = check_level(cells, metric_parents())
    details = {p.codes[0]: p.detail for p in only(problems, "invalid")}
    assert details == {A: "a Point, not a polygon", B: "a LineString, not a polygon",
                       C: "a GeometryCollection, not a polygon"}
    # C's polygon covers A's place; B's and C's places are open
    assert only(problems, "overlap") == []
    assert sorted(g.area_m2 for g in only(problems, "gap")) == pytest.approx([10_000.0, 10_000.0])


def test_garbage_in_the_geometry_array_is_reported_not_raised():
    cells = with_cells(metric_children(), {A: "POLYGON ((0 0, 1 0, 1 1, 0 0))", B: 42})
    problems = check_level(cells, metric_parents())
    assert {p.codes[0]: p.detail for p in only(problems, "invalid")} == {A: "a str, not a geometry",
                                                                          B: "a int, not a geometry"}


def test_degenerate_rings():
    flat = Polygon([(MX, MY + 100), (MX + 50, MY + 100), (MX + 100, MY + 100), (MX, MY + 100)])
    repeated = Polygon([(MX + 100, MY + 100)] * 3 + [(MX + 200, MY + 100), (MX + 200, MY + 100),
                                                     (MX + 200, MY + 200), (MX + 100, MY + 200)] * 1)
    nan = Polygon([(MX, MY), (MX + 1, MY), (MX, MY + 1)])
    nan = shapely.transform(nan, lambda c: np.where(c == MX + 1, np.nan, c))
    cells = with_cells(metric_children(), {A: flat, B: repeated, C: nan})
    problems = check_level(cells, metric_parents())
    invalid = {p.codes[0]: p.detail for p in only(problems, "invalid")}
    assert set(invalid) == {A, C}
    assert invalid[A] == "Self-intersection at (500,050.00, 3,800,100.00); nothing of it has an area"
    assert invalid[C].startswith("Invalid Coordinate")
    assert B not in invalid                              # repeated points are fine
    assert one(problems, "gap").area_m2 == pytest.approx(20_000.0)   # A's place and C's


def test_a_50000_vertex_cell_and_15_decimal_coordinates():
    rng = np.random.default_rng(5)
    dense = shapely.segmentize(metric_geom(A), 100 * 4 / 50_000)
    assert shapely.get_num_coordinates(dense) >= 50_000
    ring = shapely.get_coordinates(metric_geom(B)) + rng.uniform(-1e-9, 1e-9, (5, 2))
    ring[-1] = ring[0]
    wobbly = Polygon(ring)       # vertices a nanometre off its neighbours': noise
    assert ring[0, 0] != round(ring[0, 0], 6)
    cells = with_cells(metric_children(), {A: dense, B: wobbly})
    t0 = time.perf_counter()
    assert check_level(cells, metric_parents()) == []
    assert time.perf_counter() - t0 < 20    # a guard against hanging, not a benchmark
    zigzag = Polygon([(MX + x, MY + 100 + (0.0 if i % 2 else 0.5)) for i, x in enumerate(np.linspace(0, 100, 50_000))]
                     + [(MX + 100, MY + 200), (MX, MY + 200)])
    # 25,000 teeth 0.5 m deep, 4 mm wide at the base, between A and C: all noise, and no minutes spent
    t0 = time.perf_counter()
    assert check_level(with_cells(metric_children(), {A: zigzag}), metric_parents()) == []
    assert time.perf_counter() - t0 < 60


# --- codes and parents ------------------------------------------------------------------------------------

def test_orphans_and_a_parent_of_the_wrong_level():
    cells = with_cells(metric_children(), add=[
        ("410105001001005", box(MX - 10, MY, MX, MY + 10), None),
        ("410105001009001", box(MX - 20, MY, MX - 10, MY + 10), "410105001009"),
        ("410105001001006", box(MX - 30, MY, MX - 20, MY + 10), "410105001"),
    ])
    problems = check_level(cells, metric_parents(), other_levels={1: {"410105001"}, 2: set(fixtures.M_COMMUNITIES)})
    orphans = {p.codes[0]: p.detail for p in only(problems, "orphan")}
    assert orphans == {"410105001001005": "410105001001005 has no parent",
                       "410105001009001": "parent 410105001009 of 410105001009001 does not exist"}
    wrong = one(problems, "wrong_parent_level")
    assert wrong.codes == ("410105001001006",) and "level-1" in wrong.detail


def test_parents_found_by_location_when_the_cells_name_none():
    cells = metric_children()
    cells = Cells(cells.codes, cells.geoms, 3, None)
    assert check_level(cells, metric_parents()) == []
    moved = with_cells(metric_children(), add=[("410105001001005", box(MX - 50, MY, MX - 10, MY + 40), None)])
    moved = Cells(moved.codes, moved.geoms, 3, None)
    assert one(check_level(moved, metric_parents()), "orphan").detail == "410105001001005 lies in no parent"


def test_duplicate_codes():
    cells = with_cells(metric_children(), add=[(A, box(MX - 10, MY, MX, MY + 10), fixtures.M_COMMUNITIES[0])])
    dup = one(check_level(cells, metric_parents()), "duplicate_code")
    assert dup.codes == (A,) and dup.detail == f"code {A} is used by 2 cells"


@pytest.mark.parametrize("code, message", [
    ("41010500100100A", "digits only"),
    ("4101050010010011", "15 digits, not 16"),
    ("４１０１０５００１００１００５", "digits only"),   # full-width digits are not ASCII digits
    ("", "the cell has no code"),
])
def test_code_layout(code, message):
    cells = with_cells(metric_children(), add=[(code, box(MX - 10, MY, MX, MY + 10), fixtures.M_COMMUNITIES[0])])
    problems = check_level(cells, metric_parents())
    assert message in one(problems, "code_layout").detail


def test_code_layout_of_a_file_of_unknown_level_and_turned_off():
    cells = Cells(np.array(["410105", "410105001", "4101050", "US-06"], dtype=object),
                  np.array([box(MX + i * 10, MY, MX + i * 10 + 10, MY + 10) for i in range(4)], dtype=object))
    assert sorted(p.codes[0] for p in check_level(cells) if p.type == "code_layout") == ["4101050", "US-06"]
    assert check_level(cells, code_layout=False) == []


def test_code_prefix_and_the_development_zone_exception():
    districts = Cells(np.array(["410104", "410105"], dtype=object),
                      np.array([box(MX, MY, MX + 100, MY + 100), box(MX + 100, MY, MX + 200, MY + 100)],
                               dtype=object), 0)
    streets = cells_of([
        ("410104001", box(MX, MY, MX + 50, MY + 100), "410104"),
        ("410171001", box(MX + 50, MY, MX + 100, MY + 100), "410104"),   # 经开区 unit in 管城回族区: allowed
        ("410106001", box(MX + 100, MY, MX + 200, MY + 100), "410105"),  # not a development zone
    ], level=1)
    problems = check_level(streets, districts)
    assert [(p.type, p.codes) for p in problems] == [("code_prefix", ("410106001",))]
    assert "does not start with its parent's code 410105" in problems[0].detail
    assert check_level(streets, districts, code_prefix=False) == []
    # the exception is for street units (level 1) only, and within the same city
    streets = cells_of([("410171001001", box(MX, MY, MX + 100, MY + 100), "410104001"),
                        ("420171001", box(MX + 100, MY, MX + 200, MY + 100), "410105")], level=1)
    assert sorted(p.codes for p in check_level(streets, None) if p.type == "code_prefix") == [
        ("410171001001",), ("420171001",)]


# --- the incremental check ----------------------------------------------------------------------------------

def neighbours_and_parent(code=A):
    return metric_children(), Cells(np.array([fixtures.M_COMMUNITIES[0]], dtype=object),
                                    np.array([metric_parents().geoms[0]], dtype=object), 2)


def test_check_cell_unchanged_is_clean():
    cells, parent = neighbours_and_parent()
    assert check_cell(A, metric_geom(A), cells, parent) == []
    assert check_cell(A, metric_geom(A), cells, metric_parents()) == []


def test_check_cell_moved_into_its_neighbour():
    cells, parent = neighbours_and_parent()
    problems = check_cell(A, shapely.affinity.translate(metric_geom(A), xoff=9), cells, parent)
    assert one(problems, "overlap").codes == (A, B) and one(problems, "overlap").area_m2 == pytest.approx(900)
    gap = one(problems, "gap")
    assert gap.codes == (A, C) and gap.area_m2 == pytest.approx(900) and gap.width_m == pytest.approx(9, rel=0.01)


def test_check_cell_shrunk_grown_and_spilling():
    cells, parent = neighbours_and_parent()
    gap = one(check_cell(A, box(MX, MY + 100, MX + 98, MY + 200), cells, parent), "gap")
    assert gap.codes == (A, B, C) and gap.area_m2 == pytest.approx(200)
    problems = check_cell(B, box(MX + 100, MY + 100, MX + 203, MY + 200), cells, metric_parents())
    assert one(problems, "spill").area_m2 == pytest.approx(300) and one(problems, "spill").codes == (B,)
    assert one(problems, "overlap").codes == (B, E)


def test_check_cell_validity_and_slivers():
    cells, parent = neighbours_and_parent()
    problems = check_cell(A, fixtures.M_BOW_TIE, cells, parent)
    assert one(problems, "invalid").detail.startswith("Self-intersection at")
    assert one(check_cell(A, Polygon(), cells, parent), "empty")
    problems = check_cell("410105001001005", box(MX, MY + 100, MX + 0.5, MY + 200), cells, parent)
    assert one(problems, "sliver").width_m == pytest.approx(0.5, rel=0.01)
    assert one(problems, "overlap").codes == (A, "410105001001005")


def test_check_cell_of_a_new_cell_and_without_parents():
    cells, _ = neighbours_and_parent()
    problems = check_cell("410105001001009", box(MX + 50, MY + 50, MX + 150, MY + 150), cells, None)
    assert sorted(p.codes for p in only(problems, "overlap")) == [
        (A, "410105001001009"), (B, "410105001001009"), (C, "410105001001009"), (D, "410105001001009")]
    assert check_cell(A, box(MX, MY + 100, MX + 98, MY + 200), cells, None)[0].type == "gap"


def test_check_cell_is_fast():
    cells = Cells(*(lambda c: (c.codes, c.geoms))(fixtures.metric_children()), 3,
                  fixtures.metric_children().parent_codes)
    edited = shapely.affinity.translate(metric_geom(A), xoff=1)
    check_cell(A, edited, cells, metric_parents())
    t0 = time.perf_counter()
    for _ in range(20):
        check_cell(A, edited, cells, metric_parents())
    assert (time.perf_counter() - t0) / 20 < 0.5   # a guard against an accidental full check, not a benchmark


# --- summary, tolerances -----------------------------------------------------------------------------------

def test_summarize():
    problems = (check_level(fixtures.shifted(9.0), metric_parents())
                + check_level(fixtures.sliver_cell(), metric_parents()))
    assert summarize(problems) == {"overlap": {"count": 1, "area_m2": pytest.approx(900.0)},
                                   "gap": {"count": 1, "area_m2": pytest.approx(900.0)},
                                   "sliver": {"count": 1, "area_m2": pytest.approx(50.0)}}
    assert list(summarize(problems)) == ["overlap", "gap", "sliver"]
    assert summarize([]) == {}
    assert set(PROBLEM_TYPES) >= {p.type for p in problems}


def test_tolerances_must_be_non_negative():
    with pytest.raises(BadInput):
        Tolerances(noise_m=-1)
    with pytest.raises(BadInput):
        Tolerances(sliver_width_m=float("nan"))


def test_problem_is_a_plain_record():
    p = Problem("gap", 3, (A,), 1.0, 0.5, None, "gap")
    assert p.parent_code is None


# --- the demo partition ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo_levels():
    import pyogrio

    from gis.demo import build_demo

    gpkg = build_demo(Path(__file__).resolve().parent.parent / ".gridmap" / "demo")
    levels = {}
    for level in range(4):
        frame = pyogrio.read_dataframe(gpkg, layer=f"level{level}", columns=["code", "parent_code"])
        geoms = crs.transform_geometries(frame.geometry.to_numpy(), "EPSG:4326", "EPSG:4547")
        levels[level] = Cells(frame["code"].to_numpy(dtype=object), geoms, level,
                              frame["parent_code"].to_numpy(dtype=object) if level else None)
    return levels


def test_the_demo_partition_is_clean(demo_levels):
    assert sum(len(c.codes) for c in demo_levels.values()) > 25_000
    assert check_partition(demo_levels) == []
    assert check_level(demo_levels[3], None) == []     # its unit grids alone, as a file


def test_the_demo_with_defects(demo_levels):
    cells = demo_levels[3]
    geoms = cells.geoms.copy()
    geoms[100] = shapely.buffer(geoms[100], -2.0, join_style="mitre")
    geoms[5000] = shapely.buffer(geoms[5000], 3.0, join_style="mitre")
    broken = Cells(cells.codes, geoms, 3, cells.parent_codes)
    problems = check_level(broken, demo_levels[2])
    gaps = only(problems, "gap")
    assert len(gaps) == 1 and cells.codes[100] in gaps[0].codes
    assert gaps[0].width_m == pytest.approx(2.0, rel=0.2)
    overlaps = only(problems, "overlap")
    assert overlaps and all(cells.codes[5000] in p.codes for p in overlaps)
    assert all(p.width_m == pytest.approx(3.0, rel=0.2) for p in overlaps)


def test_the_callers_geometries_are_left_unprepared():
    cells, parents = fixtures.poke_5m(), metric_parents()
    check_level(cells, parents)
    check_cell(A, metric_geom(A), cells, parents)
    assert not shapely.is_prepared(cells.geoms).any() and not shapely.is_prepared(parents.geoms).any()


@pytest.mark.parametrize("width", [0.011, 0.015, 0.05])
def test_gaps_and_spills_just_above_the_noise_along_a_parents_border(width):
    cells = with_cells(metric_children(), {A: box(MX + width, MY + 100, MX + 100, MY + 200),
                                           C: box(MX - width, MY, MX + 100, MY + 100)})
    problems = check_level(cells, metric_parents())
    assert [(p.type, p.codes) for p in problems] == [("gap", (A, C)), ("spill", (C,))]   # C: the strip's foot
    assert all(p.width_m == pytest.approx(width, rel=0.01) for p in problems)
