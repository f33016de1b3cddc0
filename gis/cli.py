"""The ``gridmap`` command.

Commands that write are dry runs unless given ``--commit``. Exit status: 0 done, 1 problems found,
2 the command could not run (bad input, missing file, database unreachable) — with a message, never a
traceback.
"""
import functools
import json
import sys
from pathlib import Path

import click
from psycopg2.extras import RealDictCursor

from gis import cases, event_classes, grid_export, grid_import, grid_store, partition_service, problem_report
from gis.db import Database, migrate
from gis.errors import BadInput, GridMapError
from gis.partition_checks import Tolerances
from gis.settings import Settings


class Context:
    def __init__(self):
        self.settings = Settings.from_env()
        self._db = None

    @property
    def db(self):
        if self._db is None:
            self._db = Database(self.settings.database_url)
        return self._db


def reports_errors(command):
    """Turn GridMap errors into a message on stderr and exit status 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except GridMapError as exc:
            click.echo(f"error: {exc.message}", err=True)
            for line in exc.details:
                click.echo(f"  {line}", err=True)
            sys.exit(2)

    return wrapper


pass_ctx = click.make_pass_decorator(Context, ensure=True)


def audited(action):
    """After a command that wrote (``--commit``): one line of the audit log, as the CLI's user."""

    def decorate(command):
        @functools.wraps(command)
        def wrapper(ctx, *args, **kwargs):
            result = command(ctx, *args, **kwargs)
            if kwargs.get("commit"):
                from gis import users
                with ctx.db.cursor() as cur:
                    users.audit(cur, ctx.settings.actor, "cli", action,
                                **{k: str(v) for k, v in kwargs.items() if v not in (None, False, (), "")})
            return result

        return wrapper

    return decorate


class FilePath(click.Path):
    """``click.Path``, but a NUL in the path is a usage error (exit 2) rather than a ValueError from the
    ``os.stat`` that click's check runs. (A shell cannot pass one; a script calling the commands can.)"""

    def convert(self, value, param, ctx):
        if "\x00" in str(value):
            self.fail(f"{str(value)!r} holds a NUL character, which no path may contain", param, ctx)
        return super().convert(value, param, ctx)


@click.group()
def main():
    """GridMap: grid-management GIS on PostGIS."""


# --- database ---------------------------------------------------------------------------------------

@main.group()
def db():
    """The database schema."""


@db.command("migrate")
@pass_ctx
@reports_errors
def db_migrate(ctx):
    """Apply the sql/ migrations not applied yet, in order, and load the event classification."""
    applied = migrate(ctx.db)
    click.echo(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""))
    count = event_classes.sync(ctx.db)
    click.echo(f"event classification: {count} subclasses in service ({event_classes.CLASSES_CSV.name})")
    added = cases.sync_calendar(ctx.db)
    click.echo(f"working calendar: {added} holiday or make-up working day(s) added ({cases.CALENDAR_CSV.name})")


# --- grids ------------------------------------------------------------------------------------------

@main.group()
def grid():
    """Grid versions: import, export, list, activate."""


@grid.command("import")
@click.argument("path", type=FilePath(path_type=Path))
@click.option("--level", type=click.IntRange(0, 3), required=True, help="0 district, 1 street, 2 community, 3 unit grid")
@click.option("--layer", help="layer to read when the file holds several")
@click.option("--code-field", default="code", show_default=True)
@click.option("--name-field", default="name", show_default=True)
@click.option("--parent-field", help="field with the parent's code; without it parents are found by containment")
@click.option("--src-crs", help="CRS of the coordinates: EPSG:n, wgs84, cgcs2000, gcj02 or bd09 (overrides the file's)")
@click.option("--version", "version_id", type=int, help="add to this draft version instead of starting a new one")
@click.option("--make-valid", is_flag=True, help="repair invalid geometries instead of refusing them")
@click.option("--note", default="", help="why this version exists")
@click.option("--commit", is_flag=True, help="write; without it nothing is written (dry run)")
@pass_ctx
@reports_errors
@audited("grid import")
def grid_import_cmd(ctx, path, commit, **opts):
    """Import grid cells of one level from a GeoJSON, GeoPackage or (zipped) Shapefile."""
    options = grid_import.ImportOptions(actor=ctx.settings.actor, **opts)
    report = grid_import.import_cells(ctx.db, path, options, commit=commit)
    for line in report.lines():
        click.echo(line)


@grid.command("export")
@click.argument("path", type=FilePath(path_type=Path))
@click.option("--version", "version_id", type=int, help="default: the active version")
@click.option("--level", type=click.IntRange(0, 3), required=True)
@click.option("--format", "fmt", type=click.Choice(sorted(grid_export.FORMATS)), required=True)
@pass_ctx
@reports_errors
def grid_export_cmd(ctx, path, version_id, level, fmt):
    """Export one level of a version to a file."""
    vid, count = grid_export.export_cells(ctx.db, path, level=level, fmt=fmt, version_id=version_id)
    click.echo(f"exported {count} level-{level} cells of version {vid} to {path}")


@grid.command("versions")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
@reports_errors
def grid_versions_cmd(ctx, as_json):
    """List grid versions, newest first."""
    with ctx.db.cursor() as cur:
        rows = grid_store.list_versions(cur)
    if as_json:
        click.echo(json.dumps(rows, default=str, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("no grid versions yet: import one with 'gridmap grid import'")
    for row in rows:
        counts = " ".join(f"L{k}={v}" for k, v in sorted(row["counts"].items()))
        when = row["created_at"].strftime("%Y-%m-%d %H:%M")
        click.echo(f"{row['id']:>4}  {row['status']:<8} {when}  {row['created_by']:<12} {counts or 'empty':<32} {row['note']}")


@grid.command("activate")
@click.argument("version_id", type=int)
@click.option("--force", is_flag=True, help="activate although the partition check finds problems (needs --reason)")
@click.option("--reason", help="why; recorded with the activation")
@click.option("--snap-m", type=click.FloatRange(min=0), help="snapping distance (default: GRIDMAP_SNAP_M or 30)")
@click.option("--commit", is_flag=True, help="activate; without it only says what would happen")
@pass_ctx
@reports_errors
@audited("grid activate")
def grid_activate_cmd(ctx, version_id, force, reason, snap_m, commit):
    """Make a draft the active version, retire the active one and route the open incidents again against it,
    in one transaction. Refused when the partition check finds problems, unless --force --reason."""
    from gis import activation

    done = activation.activate(ctx.db, version_id, actor=ctx.settings.actor, force=force, reason=reason,
                               snap_m=_snap(ctx, snap_m), commit=commit)
    verb = "activated" if commit else "would activate (dry run; --commit activates)"
    retired = f"; version {done['retired']} retired" if done["retired"] else ""
    forced = f"; forced past {sum(done['problems'].values())} problem(s)" if done["forced"] else ""
    click.echo(f"{verb} version {done['activated']}{retired}{forced}")
    click.echo(f"{done['rerouted']:,} open incident(s) routed against version {done['activated']}, "
               f"{done['moved']:,} of them to other cells or routing status ({done['seconds']:.1f} s)")
    for status, count in sorted(done["by_status"].items(), key=lambda kv: -kv[1]):
        click.echo(f"  {status:<12} {count:>10,}")


@grid.command("impact")
@click.argument("version_id", type=int)
@click.option("--out", type=FilePath(dir_okay=False, writable=True, path_type=Path),
              help="write it to a .csv or .geojson file (one table or layer; a 'kind' per row)")
@click.option("--snap-m", type=click.FloatRange(min=0), help="snapping distance (default: GRIDMAP_SNAP_M or 30)")
@pass_ctx
@reports_errors
def grid_impact_cmd(ctx, version_id, out, snap_m):
    """What activating a version would change: the open incidents that move to other cells or other people,
    and the cells whose incident counts (closed ones included) would differ."""
    from gis import activation

    suffix = out and out.suffix.lower()
    if out is not None and suffix not in (".csv", ".geojson", ".json"):
        raise BadInput(f"--out must end in .csv or .geojson; got {out.name}")
    result = activation.impact(ctx.db, version_id, snap_m=_snap(ctx, snap_m),
                               with_geometry=suffix in (".geojson", ".json"))
    s = result["summary"]
    changed = ", ".join(f"{n} {level}" for level, n in s["cells_changed"].items() if n) or "none"
    click.echo(f"version {version_id} against the routing stored now (active version {result['active_version']}): "
               f"{s['moved']:,} of {s['open']:,} open incidents move to other cells, {s['staff_changed']:,} to other "
               f"people; {s['recounted']:,} of {s['incidents']:,} incidents count in other cells; cells whose "
               f"count changes: {changed} ({s['seconds']:.1f} s)")
    if out is None:
        for item in result["incidents"]:
            codes = ["/".join(c["code"] for c in item[when]["cells"]) or "-" for when in ("before", "after")]
            click.echo(f"  {item['id']}  {item['change']:<5}  {codes[0]} → {codes[1]}")
        for cell in result["cells"]:
            click.echo(f"  L{cell['level']} {cell['code']} {cell['name'] or ''}: "
                       f"{cell['before']:,} → {cell['after']:,} ({cell['difference']:+,})")
        return
    text = (activation.as_csv(result) if suffix == ".csv"
            else json.dumps(activation.as_geojson(result), ensure_ascii=False) + "\n")
    tmp = out.with_name(f".{out.name}.partial")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    click.echo(f"written to {out}")


# --- partition checks ---------------------------------------------------------------------------------

def tolerance_options(command):
    """--noise, --sliver-area and --sliver-width, turned into a Tolerances."""
    command = click.option("--noise", "noise_m", type=click.FloatRange(min=0), default=0.01, show_default=True,
                           help="metres: overlaps and gaps narrower than this are noise")(command)
    command = click.option("--sliver-area", "sliver_area_m2", type=click.FloatRange(min=0), default=100.0,
                           show_default=True, help="m²: a smaller cell or piece is a sliver")(command)
    command = click.option("--sliver-width", "sliver_width_m", type=click.FloatRange(min=0), default=1.0,
                           show_default=True, help="metres: a thinner cell or piece is a sliver")(command)
    return command


def _report(result, fmt, out):
    """Print or write the report; exit 1 when problems were found."""
    text = problem_report.render(result, fmt)
    if out is None:
        click.echo(text, nl=False)
    else:
        tmp = out.with_name(f".{out.name}.partial")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out)
        click.echo(problem_report.summary_line(result))
    sys.exit(1 if result.problems else 0)


@grid.command("check")
@click.option("--version", "version_id", type=int, help="default: the active version")
@click.option("--level", type=click.IntRange(0, 3), help="one level against its parent level; default: all")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "geojson"]), default="text", show_default=True)
@click.option("--out", type=FilePath(dir_okay=False, writable=True, path_type=Path), help="write the report here")
@tolerance_options
@pass_ctx
@reports_errors
def grid_check_cmd(ctx, version_id, level, fmt, out, **tol):
    """Find overlaps, gaps, slivers, nesting and code errors in a version. Exit 1 when problems were found."""
    result = partition_service.check_version(ctx.db, version_id, level=level, tol=Tolerances(**tol))
    _report(result, fmt, out)


@grid.command("check-file")
@click.argument("path", type=FilePath(path_type=Path))
@click.option("--layer")
@click.option("--code-field", default="code", show_default=True)
@click.option("--name-field")
@click.option("--src-crs", help="CRS of the coordinates: EPSG:n, wgs84, cgcs2000, gcj02 or bd09 (overrides the file's)")
@click.option("--level", type=click.IntRange(0, 3), help="check codes against this level's layout")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "geojson"]), default="text", show_default=True)
@click.option("--out", type=FilePath(dir_okay=False, writable=True, path_type=Path))
@tolerance_options
@reports_errors
def grid_check_file_cmd(path, layer, code_field, name_field, src_crs, level, fmt, out, **tol):
    """The same checks on a polygon file, before anything is imported."""
    result = partition_service.check_file(path, layer=layer, code_field=code_field, name_field=name_field,
                                          src_crs=src_crs, level=level, tol=Tolerances(**tol))
    _report(result, fmt, out)


@grid.command("repair")
@click.option("--version", "version_id", type=int, required=True)
@click.option("--level", type=click.IntRange(1, 3), help="default: levels 1 to 3, from the top")
@click.option("--commit", is_flag=True, help="write the repairs to the draft; without it only proposes them")
@tolerance_options
@pass_ctx
@reports_errors
@audited("grid repair")
def grid_repair_cmd(ctx, version_id, level, commit, **tol):
    """Propose repairs of gaps, overlaps and slivers: a gap goes to the neighbour (same parent) with the
    longest shared edge, an overlap is cut from the cell that pokes into the other, a sliver is merged into
    its neighbour with the longest shared edge."""
    proposed, after = partition_service.repair_version(ctx.db, version_id, level=level, commit=commit,
                                                       tol=Tolerances(**tol))
    for repair in proposed.repairs:
        p = repair.problem
        area = "" if p.area_m2 is None else f" ({p.area_m2:,.2f} m²)"
        click.echo(f"L{p.level} {p.type} {' × '.join(p.codes)}{area}: {repair.action}")
    verb = "repaired" if commit else "dry run: would repair"
    click.echo(f"{verb} {len(proposed.repairs)} problem(s) of version {version_id}; "
               f"afterwards: {problem_report.summary_line(after)}")
    if not commit and proposed.repairs:
        click.echo("nothing was written; --commit writes the repairs")


# --- staff ------------------------------------------------------------------------------------------

@main.group()
def staff():
    """People answerable for cells."""


@staff.command("import")
@click.argument("path", type=FilePath(exists=True, dir_okay=False, path_type=Path))
@click.option("--version", "version_id", type=int, required=True, help="the draft version whose cells they serve")
@click.option("--commit", is_flag=True)
@pass_ctx
@reports_errors
@audited("staff import")
def staff_import_cmd(ctx, path, version_id, commit):
    """Assign staff from a CSV with columns cell_code, post, name, phone."""
    records = grid_store.read_staff_csv(path)
    with ctx.db.connection() as conn, conn.cursor(cursor_factory=RealDictCursor) as cur:
        n = grid_store.assign_staff(cur, version_id, records)
        if not commit:
            conn.rollback()
    click.echo(f"{'assigned' if commit else 'would assign (dry run)'} {n} post(s) in version {version_id}")


# --- incidents --------------------------------------------------------------------------------------

@main.group()
def incidents():
    """Field reports: import files of them, route them again."""


@incidents.command("import")
@click.argument("path", type=FilePath(path_type=Path))
@click.option("--lon", "lon_field", help="column of longitudes / eastings (default: the file's point geometry)")
@click.option("--lat", "lat_field", help="column of latitudes / northings")
@click.option("--crs", help="CRS of the coordinates: EPSG:n, wgs84, cgcs2000, gcj02 or bd09 (default EPSG:4326)")
@click.option("--category-field", default="category", show_default=True)
@click.option("--description-field", default="description", show_default=True)
@click.option("--time-field", default="reported_at", show_default=True)
@click.option("--accuracy-field", default="accuracy_m", show_default=True)
@click.option("--id-field", default="client_request_id", show_default=True,
              help="the source system's id: importing the same file twice adds nothing")
@click.option("--snap-m", type=click.FloatRange(min=0), help="snapping distance (default: GRIDMAP_SNAP_M or 30)")
@click.option("--commit", is_flag=True, help="write; without it nothing is written (dry run)")
@pass_ctx
@reports_errors
@audited("incidents import")
def incidents_import_cmd(ctx, path, lon_field, lat_field, crs, category_field, description_field, time_field,
                         accuracy_field, id_field, snap_m, commit):
    """Import a CSV, GeoJSON or GeoPackage of reports, checked row by row and routed in bulk."""
    from gis import incident_import

    fields = incident_import.ImportFields(
        lon=lon_field, lat=lat_field, crs=crs, category=category_field, description=description_field,
        reported_at=time_field, accuracy=accuracy_field, client_request_id=id_field)
    report = incident_import.import_incidents(ctx.db, path, fields, snap_m=_snap(ctx, snap_m), commit=commit)
    for line in report.lines():
        click.echo(line)


@incidents.command("reroute")
@click.option("--version", "version_id", type=int, help="the grid version to route against (default: the active one)")
@click.option("--all", "everything", is_flag=True, help="closed incidents too (default: open ones only)")
@click.option("--snap-m", type=click.FloatRange(min=0), help="snapping distance (default: GRIDMAP_SNAP_M or 30)")
@click.option("--dask-scheduler", envvar="GRIDMAP_DASK_SCHEDULER", metavar="ADDRESS",
              help="route on this Dask cluster (tcp://HOST:PORT; default: GRIDMAP_DASK_SCHEDULER, else in this "
                   "process); the database is still read and written from here")
@click.option("--chunk-size", type=click.IntRange(min=1), metavar="N",
              help="points per Dask task (default 100,000; needs --dask-scheduler)")
@click.option("--dask-timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="how long to try to reach the scheduler and find a worker (default 10)")
@click.option("--commit", is_flag=True, help="write; without it nothing is written (dry run)")
@pass_ctx
@reports_errors
@audited("incidents reroute")
def incidents_reroute_cmd(ctx, version_id, everything, snap_m, dask_scheduler, chunk_size, dask_timeout, commit):
    """Route incidents again; those whose cells change get a new routing record (history is kept)."""
    from gis import batch_routing

    if chunk_size is not None and not dask_scheduler:
        raise BadInput("--chunk-size is for routing on a Dask cluster: give --dask-scheduler too")
    cluster = None
    if dask_scheduler:  # connect first: an unreachable cluster is reported before any work
        from gis import dask_routing
        cluster = dask_routing.connect(dask_scheduler, chunk_size=chunk_size or dask_routing.DEFAULT_CHUNK_SIZE,
                                       timeout=dask_timeout or dask_routing.DEFAULT_TIMEOUT_S)
    try:
        result = batch_routing.reroute(ctx.db, version_id=version_id, snap_m=_snap(ctx, snap_m),
                                       open_only=not everything, commit=commit, cluster=cluster)
    finally:
        if cluster is not None:
            cluster.close()
    if cluster is not None:
        run = cluster.last_run
        click.echo(f"routed on the Dask cluster at {dask_scheduler}: {run['chunks']:,} chunk(s) of at most "
                   f"{cluster.chunk_size:,} points on {run['workers']} worker(s)")
    click.echo(f"{result['moved']:,} of {result['considered']:,} incidents move to other cells in version "
               f"{result['version']}; {result['written']:,} new routing records"
               + ("" if commit else " would be written (dry run; --commit to write)"))
    for status, count in sorted(result["by_status"].items(), key=lambda kv: -kv[1]):
        click.echo(f"  {status:<12} {count:>10,}")


def _snap(ctx, snap_m):
    return ctx.settings.snap_m if snap_m is None else snap_m


@main.command("route-file")
@click.option("--cells", "cells_path", type=FilePath(path_type=Path), required=True, help="polygon layer")
@click.option("--code-field", required=True, help="field of the cells' codes")
@click.option("--cells-layer", help="layer of the cells file, when it has several")
@click.option("--points", "points_path", type=FilePath(path_type=Path), required=True,
              help="CSV, GeoJSON, GeoPackage or Shapefile of points")
@click.option("--points-layer")
@click.option("--lon", "lon_field", help="column of longitudes / eastings (default: the point geometry)")
@click.option("--lat", "lat_field", help="column of latitudes / northings")
@click.option("--crs", help="CRS of the points: EPSG:n, wgs84, cgcs2000, gcj02 or bd09 (default EPSG:4326)")
@click.option("--snap-m", type=click.FloatRange(min=0), default=30, show_default=True)
@click.option("--out", type=FilePath(dir_okay=False, path_type=Path), required=True, help="CSV to write")
@reports_errors
def route_file_cmd(**options):
    """Route points against cells from files, without the database: every row with its cell code."""
    from gis.route_file import route_file

    report = route_file(**options)
    for line in report.lines():
        click.echo(line)


# --- API keys ---------------------------------------------------------------------------------------

# --- demo -------------------------------------------------------------------------------------------

@main.group()
def demo():
    """The Zhengzhou demo."""


@demo.command("load")
@pass_ctx
@reports_errors
def demo_load_cmd(ctx):
    """Build (once, cached under .gridmap/) and load the Zhengzhou demo as the active version."""
    from gis import demo_load

    message = demo_load.load_demo(ctx.db, ctx.settings, echo=click.echo)
    click.echo(message)


@demo.command("history")
@click.option("--count", type=click.IntRange(min=1), default=100_000, show_default=True,
              help="How many incidents to generate.")
@click.option("--seed", type=int, default=None, help="Random seed (default: the demo's own, 20261123).")
@click.option("--days", type=click.IntRange(min=1), default=90, show_default=True,
              help="Spread over this many days before 2026-11-23 00:00 China time.")
@pass_ctx
@reports_errors
def demo_history_cmd(ctx, count, seed, days):
    """Load a deterministic history of demo incidents into the active version, once, and route them."""
    from gis import demo_history

    seed = demo_history.DEFAULT_SEED if seed is None else seed
    message = demo_history.load(ctx.db, ctx.settings, count=count, seed=seed, days=days, echo=click.echo)
    click.echo(message)


# --- cases ------------------------------------------------------------------------------------------

@main.command("tick")
@click.option("--every", type=click.FloatRange(min=1), default=None,
              help="Keep ticking, every this many seconds (the demo runs it so in the background).")
@pass_ctx
@reports_errors
def tick_cmd(ctx, every):
    """Escalate cases overdue by more than GRIDMAP_ESCALATE_H hours, one level up; print what was done."""
    rules = cases.Rules.from_settings(ctx.settings)
    if every:
        cases.run_ticks(ctx.db, rules, every, echo=click.echo)
        return
    result = cases.tick(ctx.db, rules)
    click.echo(f"{result.overdue} case(s) overdue; escalated {len(result.escalated)}"
               + (f": {', '.join(result.escalated[:10])}" if result.escalated else "")
               + (f" and {len(result.escalated) - 10} more" if len(result.escalated) > 10 else "")
               + (f"; {result.skipped} changed meanwhile, left for the next tick" if result.skipped else ""))


@main.command("overdue")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@pass_ctx
@reports_errors
def overdue_cmd(ctx, limit):
    """Open cases past their deadline, most overdue first (right whether or not the tick has run)."""
    with ctx.db.cursor() as cur:
        rows = cases.overdue(cur, limit=limit)
    for row in rows:
        click.echo(f"{row['public_id']}  due {row['due_at'].astimezone(cases.CHINA_TIME):%Y-%m-%d %H:%M}  "
                   f"{row['status']:<11}  {row['holder']}")
    click.echo(f"{len(rows)} overdue case(s)" + (" shown (--limit)" if len(rows) == limit else ""))


# --- evaluation -------------------------------------------------------------------------------------

@main.command("report")
@click.option("--level", default="street", show_default=True,
              help="grid, community, street, district, department or post")
@click.option("--period", help="day, week, month, quarter (the last complete one), YYYY-MM-DD, YYYY-Www, YYYY-MM "
                               "or YYYY-Qn; default week")
@click.option("--from", "start", help="instead of --period: the first day, YYYY-MM-DD (China time)")
@click.option("--to", "end", help="with --from: the day after the last (the end is exclusive)")
@click.option("--within", help="a cell code: only the units under it")
@click.option("--weights", help="score weights, e.g. closure_rate:0.5,on_time_rate:0.5 (default: table score_weight)")
@click.option("--out", type=FilePath(dir_okay=False, path_type=Path), help="also write the rows to a .csv or .xlsx")
@pass_ctx
@reports_errors
def report_cmd(ctx, level, period, start, end, within, weights, out):
    """Indicators, composite score and ranking of every unit of a level over a period (综合评价)."""
    from gis import evaluation

    if out is not None and out.suffix.lower() not in (".csv", ".xlsx"):
        raise BadInput(f"--out must name a .csv or .xlsx file; got {out.name!r}")
    span = evaluation.parse_period(period, start=start, end=end)
    with ctx.db.cursor() as cur:
        result = evaluation.evaluate(cur, level, span, within=within, weights=weights)
    china = evaluation.CHINA
    weights_text = ", ".join(f"{k} {v:g}" for k, v in result.weights.items())
    click.echo(f"{level} ranking, {span.label}: {span.start:%Y-%m-%d %H:%M} to {span.end:%Y-%m-%d %H:%M} China time, "
               f"as of {result.as_of.astimezone(china):%Y-%m-%d %H:%M}; weights {weights_text}")
    click.echo(evaluation.format_table(result.rows, level), nl=False)
    if out is not None:
        tmp = out.with_name(f".{out.name}.partial{out.suffix}")
        if out.suffix.lower() == ".csv":
            tmp.write_text(evaluation.to_csv(result.rows, level), encoding="utf-8")
        else:
            evaluation.write_xlsx(result.rows, level, tmp, title=f"{level} {span.label}")
        tmp.replace(out)
        click.echo(f"wrote {len(result.rows)} row(s) to {out}")


@main.command("simulate")
@click.option("--url", default="http://127.0.0.1:8000", show_default=True, help="The running GridMap server.")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), default=20.0, show_default=True,
              help="Reports per second.")
@click.option("--duration", type=click.FloatRange(min=0), default=None, help="Stop after this many seconds.")
@click.option("--count", type=click.IntRange(min=0), default=None, help="Stop after this many reports.")
@click.option("--seed", type=int, default=None, help="Random seed for places and categories.")
@click.option("--key", "api_key", envvar="GRIDMAP_API_KEY", default=None,
              help="API key to post with (default: $GRIDMAP_API_KEY).")
@reports_errors
def simulate_cmd(url, rate, duration, count, seed, api_key):
    """Post live field reports to a running server at a steady rate until --duration, --count or Ctrl-C.

    Exit status 1 when some reports failed (after three retries each)."""
    from gis import simulate

    summary = simulate.simulate(url, rate=rate, duration=duration, count=count, seed=seed, echo=click.echo,
                                api_key=api_key)
    if summary["errors"]:
        sys.exit(1)


# --- maps -------------------------------------------------------------------------------------------

@main.group("map")
def map_group():
    """Maps for reports."""


# measure, scheme and k are checked by gis.density, which holds the one list of what is allowed (and is
# imported, with folium, only when a map is made)
@map_group.command("export")
@click.option("--level", type=click.IntRange(0, 3), required=True,
              help="0 district, 1 street, 2 community, 3 unit grid")
@click.option("--period", default="7d", show_default=True,
              help="1h, today, 7d, 30d (up to now) or YYYY-MM-DD..YYYY-MM-DD (both days included); China time")
@click.option("--out", type=FilePath(dir_okay=False, path_type=Path), required=True, help="the .html file to write")
@click.option("--measure", default="count", show_default=True, help="count, per_km2 or per_1000 (residents)")
@click.option("--scheme", default="fisher_jenks", show_default=True,
              help="quantiles, fisher_jenks, natural_breaks or equal_interval")
@click.option("--k", type=int, default=5, show_default=True, help="number of classes, 2 to 9")
@click.option("--category", help="subclass (4-digit) or class (2-digit) codes, comma-separated")
@click.option("--status", help="open, overdue, closed or workflow states, comma-separated")
@click.option("--title", help="default: the level's name and 'incident density'")
@click.option("--version", "version_id", type=int, help="default: the active version")
@click.option("--within", help="a cell code: only the cells under it")
@click.option("--tiles", "tiles_url", help="a base map's tile URL with {z}, {x}, {y}; none by default, so that "
                                           "the file opens offline")
@click.option("--attribution", help="the base map's attribution (HTML); needed with --tiles")
@pass_ctx
@reports_errors
def map_export_cmd(ctx, out, **options):
    """Write the incident density of a level's cells as one self-contained HTML map, for the daily bulletin."""
    from gis import map_export

    result = map_export.export_map(ctx.db, out, node_modules=ctx.settings.node_modules, **options)
    click.echo(f"wrote {out} ({result['bytes'] / 1e6:.1f} MB): {result['cells']:,} level-{options['level']} "
               f"cells, {result['total']:,} incidents, {result['period'].label}; class bounds "
               + ", ".join(f"{b:g}" for b in result["breaks"]))


if __name__ == "__main__":
    main()


# users, API keys and the audit log: gis/cli_access.py (imported last: it builds on the helpers above)
from gis import cli_access  # noqa: E402

main.add_command(cli_access.user)
main.add_command(cli_access.key)
main.add_command(cli_access.audit)
