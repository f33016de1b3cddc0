"""gis.density: counts per cell (the tiles' counts, by another road), measures and class breaks, over the
fixture partition and reports made through the API (tests/test_tiles.py)."""
from urllib.parse import parse_qsl

import mapclassify
import numpy as np
import pyogrio
import pytest

import fixtures
from gis import density, tiles
from gis.errors import BadInput, NotFound
from test_grid_import import import_level, run
from test_routing import active  # noqa: F401  (fixture: the fixture partition, active)
from test_tiles import FRIDAY, NE_GRID, SW_GRID, features, report, reports  # noqa: F401  (reports: fixture)

ALLOWED = "quantiles, fisher_jenks, natural_breaks, equal_interval"


def counts(db, level, query="", **kwargs):
    """``{code: (count, open, overdue)}`` of cell_counts, with the filters of a tile query string."""
    filters = tiles.parse_filters(dict(parse_qsl(query.lstrip("?"))))
    with db.cursor() as cur:
        rows = density.cell_counts(cur, level, filters, **kwargs)
    assert [r["code"] for r in rows] == sorted(r["code"] for r in rows)
    return {r["code"]: (r["count"], r["open"], r["overdue"]) for r in rows}


def tile_counts(client, level, query=""):
    return {code: (p["count"], p["open"], p["overdue"]) for code, p in features(client, level, query).items()}


# the tiles' own filter cases (tests/test_tiles.py) and a few more
QUERIES = ["", "?category=01", "?category=0102", "?category=0101,04", "?status=overdue", "?status=dispatched",
           "?status=reported", "?status=open", "?status=closed", "?status=overdue,reported", "?since=2026-11-20",
           "?until=2026-11-20", "?since=2026-11-20T09:30", "?since=2026-11-20T01:30Z&until=2026-11-20T02:30Z",
           "?since=2026-11-20&category=01&status=reported"]


@pytest.mark.parametrize("query", QUERIES)
def test_counts_are_the_tiles_counts_at_every_level(db, client, reports, query):  # noqa: F811
    for level in range(4):
        assert counts(db, level, query) == tile_counts(client, level, query)


def test_counts_by_hand(db, reports):  # noqa: F811
    with db.cursor() as cur:
        rows = density.cell_counts(cur, 3)
    assert len(rows) == 8
    sw = next(r for r in rows if r["code"] == SW_GRID)
    assert set(sw) == {"id", "code", "name", "level", "area_km2", "population", "count", "open", "overdue"}
    assert (sw["name"], sw["level"], sw["population"]) == ("西街道南社区第1网格", 3, None)
    assert 10 < sw["area_km2"] < 14  # 0.025° × 0.05° at 34.7° N
    assert (sw["count"], sw["open"], sw["overdue"]) == (3, 3, 1)
    assert counts(db, 3)[NE_GRID] == (1, 1, 0)
    assert sum(c for c, _, _ in counts(db, 3).values()) == 4
    assert counts(db, 1) == {"410105001": (3, 3, 1), "410105002": (1, 1, 0)}
    assert counts(db, 0) == {"410105": (4, 4, 1)}
    assert counts(db, 3, "?category=04") == {**dict.fromkeys(counts(db, 3), (0, 0, 0)), SW_GRID: (1, 1, 0)}


def test_parent_code_restricts_to_the_cells_under_it(db, reports):  # noqa: F811
    assert counts(db, 3, parent_code="410105001001") == {SW_GRID: (3, 3, 1), "410105001001002": (0, 0, 0)}
    assert set(counts(db, 3, parent_code="410105001")) == {
        "410105001001001", "410105001001002", "410105001002001", "410105001002002"}
    assert counts(db, 2, parent_code="410105002") == {"410105002001": (0, 0, 0), "410105002002": (1, 1, 0)}
    assert len(counts(db, 3, parent_code="410105")) == 8  # three levels down
    assert counts(db, 3, "?category=0101", parent_code="410105001") == {
        "410105001001001": (1, 1, 0), "410105001001002": (0, 0, 0),
        "410105001002001": (0, 0, 0), "410105001002002": (0, 0, 0)}


def test_bad_level_parent_or_version(db, active):  # noqa: F811
    with db.cursor() as cur:
        with pytest.raises(BadInput, match="level must be between 0 .district. and 3 .unit grid.; got 4"):
            density.cell_counts(cur, 4, tiles.TileFilters())
        with pytest.raises(BadInput, match="cell 410105001001 is at level 2: it has no cells of level 2 under it"):
            density.cell_counts(cur, 2, tiles.TileFilters(), parent_code="410105001001")
        with pytest.raises(NotFound, match="no cell 410105009 in grid version 1"):
            density.cell_counts(cur, 3, tiles.TileFilters(), parent_code="410105009")
        with pytest.raises(NotFound, match="grid version 9 does not exist"):
            density.cell_counts(cur, 3, tiles.TileFilters(), version_id=9)


def test_no_active_version_is_not_found(db):
    with db.cursor() as cur, pytest.raises(NotFound, match="no grid version is active"):
        density.classes(cur, 3, tiles.TileFilters())


def test_incidents_routed_against_another_version_count_by_code(db, runner, reports, tmp_path):  # noqa: F811
    for level in range(4):  # the same partition again, as version 2, made active
        path = fixtures.write(tmp_path / f"v2_l{level}.geojson", level)
        import_level(runner, path, level, *(["--version", 2] if level else []))
    assert run(runner, "grid", "activate", 2, "--commit").exit_code == 0
    assert counts(db, 3)[SW_GRID] == (3, 3, 1)  # version 2's cell; the incidents name version 1's
    assert counts(db, 3, parent_code="410105001001") == {SW_GRID: (3, 3, 1), "410105001001002": (0, 0, 0)}
    assert counts(db, 1, "?category=01", version_id=1) == {"410105001": (2, 2, 1), "410105002": (1, 1, 0)}


@pytest.fixture
def populated(db, client, runner, tmp_path):
    """The fixture partition with populations on the unit grids (none known for the north-east one),
    active, and three reports: two in the south-west unit grid, one in the north-east one."""
    for level in range(3):
        import_level(runner, fixtures.write(tmp_path / f"l{level}.geojson", level), level,
                     *(["--version", 1] if level else []))
    # the north-east unit grid from a file of its own, without a population column (a column with a gap
    # in it is refused at import: grid_import turns the gap into NaN)
    grids = fixtures.frame(3)
    known = grids[grids["code"] != NE_GRID].assign(
        population=[2000 if code == SW_GRID else 500 for code in grids["code"] if code != NE_GRID])
    pyogrio.write_dataframe(known, tmp_path / "l3.geojson")
    pyogrio.write_dataframe(grids[grids["code"] == NE_GRID], tmp_path / "l3_ne.geojson")
    for path in ("l3.geojson", "l3_ne.geojson"):
        import_level(runner, tmp_path / path, 3, "--version", 1)
    assert run(runner, "grid", "activate", 1, "--commit").exit_code == 0
    sw, ne = (fixtures.X0 + 0.01, fixtures.Y0 + 0.01), (fixtures.X1 - 0.01, fixtures.Y1 - 0.01)
    for lon, lat in (sw, sw, ne):
        report(client, "0101", lon, lat, FRIDAY)
    return db


def test_per_1000_residents_leaves_out_cells_without_a_population(populated):
    with populated.cursor() as cur:
        rows = density.cell_counts(cur, 3)
        answer = density.classes(cur, 3, tiles.TileFilters(), "per_1000", "quantiles", 5)
    by_code = {r["code"]: r for r in rows}
    assert by_code[SW_GRID]["population"] == 2000 and by_code[NE_GRID]["population"] is None
    per_1000 = dict(zip(by_code, density.measure_values(rows, "per_1000")))
    assert per_1000[SW_GRID] == 1.0  # 2 incidents, 2,000 residents
    assert per_1000[NE_GRID] is None  # 1 incident, population unknown
    assert {v for code, v in per_1000.items() if code not in (SW_GRID, NE_GRID)} == {0.0}
    assert answer == {"level": 3, "measure": "per_1000", "scheme": "quantiles", "k": 5, "breaks": [0.0, 1.0],
                      "counts": [6, 1], "cells": 8, "classified": 7, "total": 3, "max": 1.0}


def test_measures_by_hand():
    rows = [{"count": 4, "area_km2": 2.0, "population": 8000}, {"count": 0, "area_km2": 0.5, "population": None},
            {"count": 3, "area_km2": 0.0, "population": 0}]
    assert density.measure_values(rows, "count") == [4, 0, 3]
    assert density.measure_values(rows, "per_km2") == [2.0, 0.0, None]
    assert density.measure_values(rows, "per_1000") == [0.5, None, None]
    with pytest.raises(BadInput, match="measure 'per_ha' is not one of count, per_km2, per_1000"):
        density.measure_values(rows, "per_ha")


def test_classes_of_the_fixture(db, reports):  # noqa: F811
    with db.cursor() as cur:
        # three distinct counts (0 ×6, 1, 3): each gets a class of its own
        assert density.classes(cur, 3, tiles.TileFilters()) == {
            "level": 3, "measure": "count", "scheme": "quantiles", "k": 5, "breaks": [0, 1, 3],
            "counts": [6, 1, 1], "cells": 8, "classified": 8, "total": 4, "max": 3}
        # the median of 0, 0, 0, 0, 0, 0, 1, 3 is 0
        two = density.classes(cur, 3, tiles.TileFilters(), "count", "quantiles", 2)
        assert (two["breaks"], two["counts"]) == ([0, 3], [6, 2])
        area = density.classes(cur, 1, tiles.parse_filters({"category": "01"}), "per_km2", "equal_interval", 2)
        rows = density.cell_counts(cur, 1, tiles.TileFilters())
    west, east = (r["area_km2"] for r in rows)  # by code
    assert area["breaks"] == pytest.approx([1 / east, 2 / west]) and area["counts"] == [1, 1]
    assert area["max"] == pytest.approx(2 / west) and area["total"] == 3


@pytest.mark.parametrize("values, scheme, k, breaks", [
    (range(1, 11), "quantiles", 5, [2, 4, 6, 8, 10]),  # 2.8, 4.6, … rounded down: the same classes of whole numbers
    (np.arange(10) + 0.5, "quantiles", 5, [2.3, 4.1, 5.9, 7.7, 9.5]),
    (range(11), "equal_interval", 5, [2, 4, 6, 8, 10]),
    ([0.0, 2.5, 10.0], "equal_interval", 2, [5.0, 10.0]),
    ([1, 1, 2, 10, 11, 12, 50, 51], "fisher_jenks", 3, [2, 12, 51]),
    ([1, 1, 2, 10, 11, 12, 50, 51], "natural_breaks", 3, [2, 12, 51]),
    ([0] * 90 + list(range(1, 11)), "quantiles", 5, [0, 10]),  # the quantiles coincide at 0: two classes
    ([0, 0, 5, 5, 5], "fisher_jenks", 3, [0, 5]),  # fewer distinct values than classes: one class each
    ([None, 2, None, 1], "quantiles", 2, [1, 2]),
    ([0, 0, 0], "quantiles", 5, [0]),
    ([], "fisher_jenks", 5, [0]),
    ([None], "natural_breaks", 5, [0]),
])
def test_class_breaks_by_hand(values, scheme, k, breaks):
    assert density.class_breaks(values, scheme, k) == pytest.approx(breaks)


def test_fisher_jenks_samples_many_values_and_always_gives_the_same_answer(monkeypatch):
    rng = np.random.default_rng(7)
    values = np.concatenate([rng.uniform(0, 1, 3000), rng.uniform(10, 11, 3000), rng.uniform(20, 21, 3000)])
    sampled = []
    monkeypatch.setattr(mapclassify, "FisherJenksSampled",
                        lambda y, k: sampled.append(len(y)) or mapclassify.classifiers.FisherJenksSampled(y, k))
    before = np.random.get_state()[1].copy()
    breaks = density.class_breaks(list(values), "fisher_jenks", 3)
    assert sampled == [9000]
    assert breaks[0] < 1 and 10 < breaks[1] < 11 and breaks[2] == values.max()
    assert density.class_breaks(list(values), "fisher_jenks", 3) == breaks  # seeded: no random map
    assert (np.random.get_state()[1] == before).all()  # numpy's global random state is left as it was
    density.class_breaks(list(values[:5000]), "fisher_jenks", 3)
    assert sampled == [9000, 9000]  # 5,000 values are classified exactly


@pytest.mark.parametrize("scheme, k, message", [
    ("jenks", 5, f"scheme 'jenks' is not one of {ALLOWED}"),
    ("", 5, f"scheme '' is not one of {ALLOWED}"),
    ("quantiles", 1, "k must be a whole number from 2 to 9; got 1"),
    ("quantiles", 10, "k must be a whole number from 2 to 9; got 10"),
    ("quantiles", 2.5, "k must be a whole number from 2 to 9; got 2.5"),
    ("quantiles", "5", "k must be a whole number from 2 to 9; got '5'"),
])
def test_bad_scheme_or_k(scheme, k, message):
    with pytest.raises(BadInput) as error:
        density.class_breaks([1, 2, 3], scheme, k)
    assert error.value.message == message


def test_classes_checks_its_arguments_before_the_database(db):  # no grid at all: BadInput comes first
    with db.cursor() as cur:
        for args, message in [(("count", "jenks", 5), "scheme 'jenks'"), (("count", "quantiles", 12), "k must"),
                              (("density", "quantiles", 5), "measure 'density'")]:
            with pytest.raises(BadInput, match=message):
                density.classes(cur, 3, tiles.TileFilters(), *args)
