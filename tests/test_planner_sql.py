"""sql/011_planner.sql through plain SQL, as QGIS writes it: levels and parents derived, revisions counted, every
change logged with who, why and what, a parent's delete refused, history still read-only — and the partition
checks seeing what a QGIS edit did."""
from urllib.parse import quote

import psycopg2
import psycopg2.extensions
import pytest
import shapely
from shapely.geometry import MultiPolygon, box

import fixtures
from gis import partition_service
from test_grid_import import import_all

X0, Y0, XM, YM, X1, Y1 = fixtures.X0, fixtures.Y0, fixtures.XM, fixtures.YM, fixtures.X1, fixtures.Y1
XQ = (X0 + XM) / 2                     # the unit grids' boundary in the west street's communities
SW, SW2 = "410105001001001", "410105001001002"  # the south-west community's west and east unit grids
INSERT = "insert into grid_cell (version_id, code, name, geom) values (%s, %s, %s, ST_GeomFromWKB(%s, 4326))"
# A 2 m mitred inward buffer, in metres (CGCS2000 Gauss-Krüger, Zhengzhou's zone).
SHRINK = "ST_Transform(ST_Multi(ST_Buffer(ST_Transform(geom, 4547), -2.0, 'join=mitre')), 4326)"


def wkb(geom):
    """A geometry as QGIS sends it: WKB, MultiPolygon for this layer."""
    return psycopg2.Binary(shapely.to_wkb(MultiPolygon([geom]) if geom.geom_type == "Polygon" else geom))


def sql(conn, query, params=()):
    """One statement in its own transaction (committed, or rolled back on error); its rows, if any."""
    with conn, conn.cursor() as cur:
        cur.execute(query, params)
        return cur.fetchall() if cur.description else None


def one(conn, query, params=()):
    return sql(conn, query, params)[0]


@pytest.fixture
def qgis(db, database_url):
    """A plain connection, as QGIS opens one (the grid tables emptied by ``db``)."""
    conn = psycopg2.connect(database_url)
    yield conn
    conn.close()


@pytest.fixture
def draft(qgis):
    """A draft holding the fixture partition, each cell inserted with nothing but code, name and outline."""
    version = one(qgis, "insert into grid_version (created_by) values ('planner') returning id")[0]
    for level in range(4):
        for code, name, _, polygon in fixtures.cells(level):
            sql(qgis, INSERT, (version, code, name, wkb(polygon)))
    return version


def cell(conn, code):
    """``(level, parent code, revision, area_m2)`` of a cell."""
    return one(conn, """select c.level, p.code, c.revision, c.area_m2
                          from grid_cell c left join grid_cell p on p.id = c.parent_id where c.code = %s""", (code,))


def last_edit(conn):
    cols = "actor, operation, action, cell_code, cell_level, reason, before, after"
    return dict(zip(cols.split(", "), one(conn, f"select {cols} from grid_edit order by id desc limit 1")))


def edits(conn):
    return one(conn, "select count(*) from grid_edit")[0]


def session_user(conn):
    return one(conn, "select session_user")[0]


# --- level and parent ---------------------------------------------------------------------------------------

def test_code_name_and_outline_are_enough_the_level_and_parent_follow(qgis, draft):
    rows = sql(qgis, """select c.code, c.level, p.code, c.revision, c.area_m2
                          from grid_cell c left join grid_cell p on p.id = c.parent_id order by c.code""")
    expected = {code: (level, parent) for level in range(4) for code, _, parent, _ in fixtures.cells(level)}
    assert {code: (level, parent) for code, level, parent, _, _ in rows} == expected
    assert {revision for *_, revision, _ in rows} == {1}
    district = next(r for r in rows if r[0] == "410105")
    assert district[4] == pytest.approx(fixtures.geometry_area_m2(fixtures.cells(0)[0][3]), rel=1e-3)


def test_the_parent_holds_the_largest_share_and_ties_go_to_the_lower_code(qgis, draft):
    # 70 % in the north community of the west street, 30 % in the south one
    straddling = box(X0 + 0.001, YM - 0.003, X0 + 0.002, YM + 0.007)
    sql(qgis, INSERT, (draft, "410105001002009", "跨界网格", wkb(straddling)))
    assert cell(qgis, "410105001002009")[:2] == (3, "410105001002")
    # a second street drawn over the west one: a community inside both lies wholly in each; the lower code wins
    sql(qgis, INSERT, (draft, "410105003", "重叠街道", wkb(box(X0, Y0, XM, Y1))))
    sql(qgis, INSERT, (draft, "410105003009", "重叠社区", wkb(box(X0 + 0.01, Y0 + 0.01, X0 + 0.02, Y0 + 0.02))))
    assert cell(qgis, "410105003009")[:2] == (2, "410105001")


def test_a_cell_outside_every_cell_one_level_up_is_refused(qgis, draft):
    with pytest.raises(psycopg2.errors.CheckViolation, match="lies outside every level-2 cell of version"):
        sql(qgis, INSERT, (draft, "410105001001009", "飞地", wkb(box(X1 + 0.1, Y0, X1 + 0.2, Y0 + 0.1))))


def test_an_outline_edit_counts_a_revision_finds_the_parent_again_and_is_logged(qgis, draft):
    level, parent, revision, area = cell(qgis, SW)
    assert (level, parent, revision) == (3, "410105001001", 1)
    moved = box(X0, YM - 0.005, XQ, Y1)  # stretched north: now mostly in the north community
    sql(qgis, "update grid_cell set geom = ST_GeomFromWKB(%s, 4326) where version_id = %s and code = %s",
        (wkb(moved), draft, SW))
    level, parent, revision, new_area = cell(qgis, SW)
    assert (level, parent, revision) == (3, "410105001002", 2)
    assert new_area == pytest.approx(fixtures.geometry_area_m2(moved), rel=1e-3) and new_area > area

    edit = last_edit(qgis)
    assert edit["action"] == "update" and (edit["cell_code"], edit["cell_level"]) == (SW, 3)
    assert edit["actor"] == session_user(qgis)  # no gridmap.actor: the database user, as for a QGIS edit
    assert edit["operation"] is None and edit["reason"] is None
    before, after = edit["before"], edit["after"]
    assert set(before) == set(after) == {"geom", "parent", "revision", "area_m2"}  # what changed, nothing else
    assert (before["parent"], after["parent"]) == ("410105001001", "410105001002")
    assert (before["revision"], after["revision"]) == (1, 2)
    assert shapely.geometry.shape(before["geom"]).equals(box(X0, Y0, XQ, YM))
    assert shapely.geometry.shape(after["geom"]).equals(moved)


def test_a_parent_set_with_the_outline_is_kept_and_children_keep_theirs(qgis, draft):
    sql(qgis, """update grid_cell set geom = ST_GeomFromWKB(%s, 4326),
                                      parent_id = (select id from grid_cell where code = '410105002001')
                  where code = %s""", (wkb(box(X0, YM - 0.005, XQ, Y1)), SW))
    assert cell(qgis, SW)[1] == "410105002001"  # not the one holding most of it: the statement said so
    # the south-west community shrinks to its western half: its children are not moved by it
    sql(qgis, "update grid_cell set geom = ST_GeomFromWKB(%s, 4326) where code = '410105001001'",
        (wkb(box(X0, Y0, XQ, YM)),))
    assert cell(qgis, SW2)[1] == "410105001001"


def test_clearing_the_parent_asks_for_it_to_be_found(qgis, draft):
    sql(qgis, "update grid_cell set parent_id = (select id from grid_cell where code = '410105002001') where code = %s",
        (SW,))
    assert cell(qgis, SW)[1:3] == ("410105002001", 2)
    sql(qgis, "update grid_cell set parent_id = null where code = %s", (SW,))
    assert cell(qgis, SW)[1:3] == ("410105001001", 3)


def test_a_new_code_of_another_length_moves_the_cell_to_that_level(qgis, draft):
    sql(qgis, "update grid_cell set code = '410105001003' where code = %s", (SW2,))
    level, parent, revision, _ = cell(qgis, "410105001003")
    assert (level, parent, revision) == (2, "410105001", 2)
    # the pieces that routing uses follow the level, although the statement named only the code
    assert sql(qgis, """select distinct gp.level from grid_cell_part gp join grid_cell c on c.id = gp.cell_id
                         where c.code = '410105001003'""") == [(2,)]


# --- the revision ---------------------------------------------------------------------------------------------

def test_an_update_that_changes_nothing_is_no_revision_and_no_edit(qgis, draft):
    logged = edits(qgis)
    sql(qgis, "update grid_cell set name = name, geom = geom where code = %s", (SW,))
    sql(qgis, "update grid_cell set revision = 99 where code = %s", (SW,))  # the database owns the count
    assert cell(qgis, SW)[2] == 1 and edits(qgis) == logged
    sql(qgis, "update grid_cell set attributes = '{\"楼栋\": 12}', revision = 99 where code = %s", (SW,))
    assert cell(qgis, SW)[2] == 2 and edits(qgis) == logged + 1
    assert last_edit(qgis)["after"] == {"attributes": {"楼栋": 12}, "revision": 2}


# --- who, why and what --------------------------------------------------------------------------------------

def test_who_why_and_what_come_from_the_settings_of_the_transaction(qgis, draft):
    with qgis, qgis.cursor() as cur:
        cur.execute("set local gridmap.actor = '张三'")
        cur.execute("set local gridmap.reason = '按街道调整边界'")
        cur.execute("set local gridmap.operation = 'move-vertex'")
        cur.execute("update grid_cell set name = '西南一网格' where code = %s", (SW,))
    edit = last_edit(qgis)
    assert (edit["actor"], edit["reason"], edit["operation"]) == ("张三", "按街道调整边界", "move-vertex")
    assert edit["before"] == {"name": fixtures.cells(3)[0][1], "revision": 1}
    assert edit["after"] == {"name": "西南一网格", "revision": 2}
    # the next transaction sets nothing: the settings are empty again, and the database user is recorded
    sql(qgis, "update grid_cell set population = 1200 where code = %s", (SW,))
    edit = last_edit(qgis)
    assert (edit["actor"], edit["reason"], edit["operation"]) == (session_user(qgis), None, None)


def test_imports_are_logged_too(db, runner, tmp_path, qgis):
    import_all(runner, tmp_path)
    assert sql(qgis, "select action, count(*), count(distinct cell_id) from grid_edit group by action") == \
        [("insert", 15, 15)]
    assert "geom" not in last_edit(qgis)["after"]  # an insert's outline is the cell's own: not copied


def test_the_reason_can_come_with_the_connection_as_the_readme_shows(qgis, draft, database_url, tmp_path,
                                                                     monkeypatch):
    options = r"-c gridmap.reason=redraw\ the\ 金水\ boundary -c gridmap.actor=张三"
    # a URI with &options=..., percent-encoded (database_url may be key=value: rebuilt as a URI here)
    dsn = psycopg2.extensions.parse_dsn(database_url)
    uri = (f"postgresql://{dsn['user']}@/{dsn['dbname']}?host={dsn['host']}&port={dsn.get('port', 5432)}"
           f"&options={quote(options, safe='')}")
    assert "options=-c%20gridmap.reason%3Dredraw%5C%20the%5C%20%E9%87%91%E6%B0%B4%5C%20boundary" in uri
    conn = psycopg2.connect(uri)
    sql(conn, "update grid_cell set name = 'A' where code = %s", (SW,))
    conn.close()
    assert (last_edit(qgis)["actor"], last_edit(qgis)["reason"]) == ("张三", "redraw the 金水 boundary")
    # a pg_service.conf entry, which QGIS's connection dialog takes as "Service"
    (tmp_path / "pg_service.conf").write_text(
        f"[gridmap-draft]\nhost={dsn['host']}\nport={dsn['port']}\ndbname={dsn['dbname']}\nuser={dsn['user']}\n"
        "options=-c gridmap.reason=new\\ school\\ district\n", encoding="utf-8")
    monkeypatch.setenv("PGSERVICEFILE", str(tmp_path / "pg_service.conf"))
    conn = psycopg2.connect("service=gridmap-draft")
    sql(conn, "update grid_cell set name = 'B' where code = %s", (SW,))
    conn.close()
    assert (last_edit(qgis)["actor"], last_edit(qgis)["reason"]) == (session_user(qgis), "new school district")


def test_the_log_is_append_only(qgis, draft):
    with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="append-only"):
        sql(qgis, "update grid_edit set actor = 'nobody'")
    with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="append-only"):
        sql(qgis, "delete from grid_edit")


# --- what is refused ----------------------------------------------------------------------------------------

def test_a_cell_with_children_is_not_deleted(qgis, draft):
    with pytest.raises(psycopg2.errors.ForeignKeyViolation, match="cell 410105001001 of version .* has 2 child cell"):
        sql(qgis, "delete from grid_cell where code = '410105001001'")
    sql(qgis, "delete from grid_cell where code in (%s, %s)", (SW, SW2))
    sql(qgis, "delete from grid_cell where code = '410105001001'")
    edit = last_edit(qgis)
    assert (edit["action"], edit["cell_code"], edit["after"]) == ("delete", "410105001001", None)
    assert shapely.geometry.shape(edit["before"]["geom"]).equals(box(X0, Y0, XM, YM))  # what was lost is kept
    assert edit["before"]["parent"] == "410105001"


def test_active_and_retired_versions_still_refuse_every_edit(qgis, draft):
    sql(qgis, "update grid_version set status = 'active', activated_at = now(), activated_by = 't' where id = %s",
        (draft,))
    logged = edits(qgis)
    for statement, params in [
        ("update grid_cell set geom = ST_GeomFromWKB(%s, 4326) where code = %s", (wkb(box(X0, Y0, XQ, Y1)), SW)),
        (INSERT, (draft, "410105001001009", "新网格", wkb(box(X0, Y0, X0 + 0.001, Y0 + 0.001)))),
        ("delete from grid_cell where code = '410105001001'", ()),  # has children: the version speaks first
    ]:
        with pytest.raises(psycopg2.errors.CheckViolation, match="grid version is active: only drafts can be edited"):
            sql(qgis, statement, params)
    assert edits(qgis) == logged and cell(qgis, SW)[2] == 1


def test_a_polygon_is_refused_by_the_column_type_st_multi_makes_it_one(qgis, draft):
    """A BEFORE trigger cannot promote it: geometry(MultiPolygon, 4326) refuses a Polygon before triggers run.
    QGIS promotes what it writes to the layer's type itself; plain SQL wraps it in ST_Multi."""
    polygon = psycopg2.Binary(shapely.to_wkb(box(X0, Y0, X0 + 0.001, Y0 + 0.001)))
    with pytest.raises(psycopg2.errors.InvalidParameterValue, match=r"Geometry type \(Polygon\) does not match"):
        sql(qgis, INSERT, (draft, "410105001001009", "新网格", polygon))
    sql(qgis, "insert into grid_cell (version_id, code, name, geom) "
              "values (%s, '410105001001009', '新网格', ST_Multi(ST_GeomFromWKB(%s, 4326)))", (draft, polygon))
    assert one(qgis, "select GeometryType(geom) from grid_cell where code = '410105001001009'") == ("MULTIPOLYGON",)
    assert cell(qgis, "410105001001009")[:2] == (3, "410105001001")


def test_codes_of_the_wrong_length_are_refused(qgis, draft):
    with pytest.raises(psycopg2.errors.CheckViolation, match="has 10 digits; codes have 6 .level 0., 9"):
        sql(qgis, INSERT, (draft, "4101050010", "x", wkb(box(X0, Y0, X0 + 0.001, Y0 + 0.001))))
    with pytest.raises(psycopg2.errors.CheckViolation, match="has 12 digits; level 3 codes have 15"):
        sql(qgis, "insert into grid_cell (version_id, level, code, name, geom) "
                  "values (%s, 3, '410105001009', 'x', ST_GeomFromWKB(%s, 4326))",
            (draft, wkb(box(X0, Y0, X0 + 0.001, Y0 + 0.001))))
    with pytest.raises(psycopg2.errors.CheckViolation, match="has 14 digits; level 3 codes have 15"):
        sql(qgis, "update grid_cell set code = '41010500100100' where code = %s", (SW,))


def test_an_invalid_outline_is_refused_by_the_geometry_check_with_its_reason(qgis, draft):
    bow_tie = shapely.Polygon([(X0, Y0), (XQ, YM), (XQ, Y0), (X0, YM), (X0, Y0)])
    with pytest.raises(psycopg2.errors.CheckViolation) as refused:
        sql(qgis, INSERT, (draft, "410105001001009", "x", wkb(bow_tie)))
    assert refused.value.diag.constraint_name == "grid_cell_geom_check"
    assert "violates check constraint" in refused.value.diag.message_primary
    assert "Self-intersection" in refused.value.diag.message_detail


# --- the checks see a QGIS edit -----------------------------------------------------------------------------

def test_the_checks_see_a_gap_made_in_qgis(db, qgis, draft):
    sql(qgis, f"update grid_cell set geom = {SHRINK} where version_id = %s and code = %s", (draft, SW))

    result = partition_service.check_version(db, draft, level=3)
    gaps = [p for p in result.problems if p.type == "gap"]
    assert gaps and all(SW in p.codes for p in gaps)

    stored = shapely.from_wkb(bytes(one(qgis, "select ST_AsBinary(geom) from grid_cell where code = %s", (SW,))[0]))
    edited = partition_service.check_edited_cell(db, draft, SW, stored)
    assert any(p.type == "gap" and SW in p.codes for p in edited.problems)


def test_an_import_is_logged_as_the_importer(runner, db, tmp_path):
    from test_grid_import import import_level

    import_level(runner, fixtures.write(tmp_path / "districts.geojson", 0), 0)
    with db.cursor() as cur:
        cur.execute("select actor, operation, action, cell_code from grid_edit")
        assert [tuple(r.values()) for r in cur.fetchall()] == [("tester", "import", "insert", "410105")]
