"""route_point(): the SQL function that gives a point its cell at every level, with an explicit tie-break."""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fixtures
from test_grid_import import import_all, run

X0, Y0, X1, Y1, XM, YM = fixtures.X0, fixtures.Y0, fixtures.X1, fixtures.Y1, fixtures.XM, fixtures.YM


@pytest.fixture
def active(db, runner, tmp_path):
    import_all(runner, tmp_path)
    assert run(runner, "grid", "activate", 1, "--commit").exit_code == 0
    return db


def route(db, lon, lat, version=None):
    with db.cursor() as cur:
        cur.execute("select * from route_point(%s, %s, %s)", (lon, lat, version))
        return cur.fetchall()


def test_a_point_inside_a_unit_grid_gets_the_whole_chain(active):
    rows = route(active, X0 + 0.01, Y0 + 0.01)
    assert [r["level"] for r in rows] == [0, 1, 2, 3]
    assert [r["code"] for r in rows] == ["410105", "410105001", "410105001001", "410105001001001"]
    assert rows[3]["name"] == "西街道南社区第1网格"
    assert all(len(r["candidates"]) == 1 for r in rows)


def test_a_point_on_a_shared_edge_goes_to_the_lower_code_and_says_so(active):
    # the edge between the two unit grids of the south-west community
    rows = route(active, (X0 + XM) / 2, Y0 + 0.01)
    assert rows[3]["code"] == "410105001001001"
    assert rows[3]["candidates"] == ["410105001001001", "410105001001002"]
    assert rows[2]["candidates"] == ["410105001001"]


def test_a_vertex_shared_by_four_cells(active):
    rows = route(active, XM, YM)  # the centre: four communities and four unit grids meet here
    assert len(rows[3]["candidates"]) == 4 and len(rows[2]["candidates"]) == 4
    assert rows[3]["code"] == min(rows[3]["candidates"])
    # the levels above are the chosen cell's own ancestors, never another tie's
    assert rows[2]["code"] == rows[3]["code"][:12] and rows[1]["code"] == rows[3]["code"][:9]


def test_just_outside_the_city_routes_nowhere(active):
    assert route(active, X1 + 1e-6, Y0 + 0.01) == []
    assert route(active, X1, Y0 + 0.01)[3]["code"] == "410105002001002"  # on the outline: still covered


def test_a_draft_is_routed_only_when_named(db, runner, tmp_path):
    import_all(runner, tmp_path)
    assert route(db, X0 + 0.01, Y0 + 0.01) == []
    assert len(route(db, X0 + 0.01, Y0 + 0.01, version=1)) == 4


def test_pieces_follow_the_cells(active):
    with active.cursor() as cur:
        cur.execute("select count(distinct cell_id) as cells, count(*) as parts from grid_cell_part")
        row = cur.fetchone()
    assert row["cells"] == 15 and row["parts"] >= 15


coordinate = st.one_of(
    st.floats(min_value=X0 - 0.01, max_value=X1 + 0.01),
    st.sampled_from([X0, (X0 + XM) / 2, XM, (XM + X1) / 2, X1]),  # on the grid's own lines
)
latitude = st.one_of(st.floats(min_value=Y0 - 0.01, max_value=Y1 + 0.01), st.sampled_from([Y0, YM, Y1]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lon=coordinate, lat=latitude)
def test_routing_agrees_with_st_covers(active, lon, lat):
    rows = route(active, lon, lat)
    with active.cursor() as cur:
        cur.execute("""select level, array_agg(code order by code) as codes from grid_cell
                        where ST_Covers(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326)) group by level order by level""",
                    (lon, lat))
        oracle = {r["level"]: r["codes"] for r in cur.fetchall()}
    assert {r["level"]: r["candidates"] for r in rows} == oracle
    if rows:
        assert rows[-1]["code"] == oracle[3][0]


def test_pieces_follow_an_edited_cell(db, runner, tmp_path):
    import_all(runner, tmp_path)  # a draft, so its cells may change
    with db.connection() as conn, conn.cursor() as cur:
        # the south-west unit grid takes its east neighbour's land
        cur.execute("""update grid_cell set geom = ST_Multi(ST_MakeEnvelope(%s, %s, %s, %s, 4326))
                        where code = '410105001001001'""", (X0, Y0, XM, YM))
        cur.execute("delete from grid_cell where code = '410105001001002'")
    rows = route(db, (X0 + XM) / 2 + 0.01, Y0 + 0.01, version=1)
    assert rows[3]["code"] == "410105001001001" and rows[3]["candidates"] == ["410105001001001"]
