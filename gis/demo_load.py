"""Load the Zhengzhou demo into the store: build it once (cached), import its four levels and its
staff into one draft, and activate it — all in one transaction, so an interrupted load leaves nothing."""
from psycopg2.extras import RealDictCursor

from gis import grid_import, grid_store, users
from gis.access import Scope
from gis.demo import build_demo

DEMO_NOTE = "Zhengzhou demo"


def load_demo(db, settings, *, echo=print):
    """Make the demo the active version unless it already is; return what was done."""
    with db.cursor() as cur:
        active = grid_store.active_version(cur)
        if active is not None and active["note"] == DEMO_NOTE:
            added = add_demo_users(cur, settings.actor)
            return (f"the Zhengzhou demo is loaded already: version {active['id']} is active"
                    + (f"; {added} demo user(s) added" if added else ""))
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
        added = add_demo_users(cur, settings.actor)
    return f"the Zhengzhou demo is loaded: version {version_id} is active; {added} demo users (README)"


# One user of each role, for trying the platform out; they exist only where `gridmap demo load` ran, and the
# README lists them. Never in a real deployment: they share one published password.
DEMO_PASSWORD = "gridmap-demo"
DEMO_USERS = (
    # name, role, scope, department, display name
    ("demo-admin", "admin", None, None, "演示管理员"),
    ("demo-planner", "planner", None, None, "演示规划员"),
    ("demo-dispatcher", "dispatcher", None, None, "演示调度员"),
    ("demo-cgj", "handler", None, "CGJ", "城管局处置员"),
    ("demo-jinshui", "viewer", "410105", None, "金水区查看员"),
    ("demo-jinshui-planner", "planner", "410105", None, "金水区规划员"),
    ("demo-street", "dispatcher", "410105001", None, "经八路街道调度员"),
    ("demo-gridworker", "grid_worker", "410105001003001", None, "体育社区第1网格网格员"),
)


def add_demo_users(cur, actor):
    """Add the demo users that are missing; return how many were added."""
    added = 0
    for name, role, code, department, display in DEMO_USERS:
        cur.execute("select 1 from app_user where name = %s", (name,))
        if cur.fetchone() is None:
            users.add(cur, name, role=role, scope=Scope(code, department), password=DEMO_PASSWORD,
                      created_by=actor, display_name=display)
            added += 1
    return added
