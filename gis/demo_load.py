"""Load the Zhengzhou demo into the store: build it once (cached), import its four levels and its
staff into one draft, and activate it — all in one transaction, so an interrupted load leaves nothing."""
from psycopg2.extras import RealDictCursor

from gis import grid_import, grid_store
from gis.demo import build_demo

DEMO_NOTE = "Zhengzhou demo"


def load_demo(db, settings, *, echo=print):
    """Make the demo the active version unless it already is; return what was done."""
    with db.cursor() as cur:
        active = grid_store.active_version(cur)
    if active is not None and active["note"] == DEMO_NOTE:
        return f"the Zhengzhou demo is loaded already: version {active['id']} is active"
    out_dir = settings.state_dir / "demo"
    out_dir.mkdir(parents=True, exist_ok=True)
    echo(f"building the Zhengzhou demo partition under {out_dir} (once) ...")
    gpkg = build_demo(out_dir)
    staff_csv = gpkg.with_name("zhengzhou_staff.csv")
    with db.connection() as conn, conn.cursor(cursor_factory=RealDictCursor) as cur:
        version_id = None
        for level in grid_store.LEVELS:
            options = grid_import.ImportOptions(
                level=level, layer=f"level{level}", parent_field="parent_code" if level else None,
                version_id=version_id, note=DEMO_NOTE, actor=settings.actor,
            )
            cells, _, _ = grid_import.read_cells(gpkg, options)
            report = grid_import.write_cells(cur, cells, options, source=gpkg.name, committed=True)
            version_id = report.version_id
            echo(f"  level {level}: {report.count} cells, {report.area_km2:,.1f} km²")
        posts = grid_store.assign_staff(cur, version_id, grid_store.read_staff_csv(staff_csv))
        echo(f"  staff: {posts} posts")
        grid_store.activate(cur, version_id, actor=settings.actor)
    return f"the Zhengzhou demo is loaded: version {version_id} is active"
