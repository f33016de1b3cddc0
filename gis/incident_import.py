"""``gridmap incidents import``: a file of reports (hotline exports, old systems) into the store, routed.

Every row is checked as the API checks a report; one bad row and nothing is written, with the list of
what is wrong by row. Rows whose client_request_id is stored already with the same content are skipped,
so an interrupted import can simply be run again.
"""
import dataclasses
import io
import json
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gis import batch_routing, incidents
from gis.errors import BadInput, Conflict
from gis.point_files import read_points

MAX_LISTED = 50


@dataclass(frozen=True)
class ImportFields:
    lon: str | None = None
    lat: str | None = None
    crs: str | None = None
    category: str = "category"
    description: str = "description"
    reported_at: str = "reported_at"
    accuracy: str = "accuracy_m"
    client_request_id: str = "client_request_id"
    address: str = "address"


@dataclass(frozen=True)
class ImportReport:
    rows: int
    new: int
    skipped: int
    by_status: dict
    seconds: float
    committed: bool

    def lines(self):
        verb = "imported" if self.committed else "would import (dry run; --commit to write)"
        yield (f"{verb} {self.new:,} of {self.rows:,} reports in {self.seconds:.1f} s; "
               f"{self.skipped:,} were imported before")
        for status, count in sorted(self.by_status.items(), key=lambda kv: -kv[1]):
            yield f"  {status:<12} {count:>10,}"


def import_incidents(db, path, fields=ImportFields(), *, snap_m=30.0, commit=False):
    started = time.perf_counter()
    points = read_points(path, lon_field=fields.lon, lat_field=fields.lat, crs=fields.crs)
    frame = points.frame
    if fields.category not in frame.columns:
        raise BadInput(f"{path}: no column {fields.category!r} with the subclass codes (give --category-field)")
    reports, problems = _reports(points, fields)
    with db.connection() as conn, conn.cursor() as cur:
        cur.execute("select code from event_subclass where in_service")
        known = {r[0] for r in cur.fetchall()}
        problems += [f"row {i + 2}: unknown category {r.category!r}" for i, r in enumerate(reports)
                     if r is not None and r.category not in known]
        if problems:
            raise BadInput(f"{path}: {len(problems)} row(s) cannot be imported; nothing was written",
                           details=problems[:MAX_LISTED])
        reports, skipped = _new_reports(cur, path, reports)
        if not reports:
            return ImportReport(len(frame), 0, skipped, {}, time.perf_counter() - started, commit)
        router = batch_routing.GridRouter.from_database(cur)
        if commit:
            cur.execute("set local gridmap.live = off")  # a file of past reports is not news for the live feed
            ids = _insert(cur, reports)
            counts = batch_routing.route_stored(
                cur, router, ids, [r.lon for r in reports], [r.lat for r in reports],
                np.array([r.accuracy_m or 0 for r in reports], dtype=float), reason="import",
                snap_m=snap_m)["by_status"]
        else:
            routed = router.route(np.array([r.lon for r in reports]), np.array([r.lat for r in reports]),
                                  np.array([r.accuracy_m or 0 for r in reports], dtype=float), snap_m)
            counts = routed.status_counts()
            conn.rollback()
    return ImportReport(len(frame), len(reports), skipped, counts, time.perf_counter() - started, commit)


def _reports(points, fields):
    """One checked Report (or None) per row, and the problems found, by 1-based file row (header = 1)."""
    frame = points.frame
    columns = {name: getattr(fields, name) for name in ("description", "reported_at", "client_request_id", "address")}
    columns["accuracy_m"] = fields.accuracy
    present = {key: col for key, col in columns.items() if col in frame.columns}
    reports, problems = [], []
    records = frame.to_dict("records")
    for i, record in enumerate(records):
        if not points.valid[i]:
            reports.append(None)
            problems.append(f"row {i + 2}: missing, non-numeric or out-of-range coordinates")
            continue
        data = {"lon": float(points.lon[i]), "lat": float(points.lat[i]),
                "category": _text(record.get(fields.category))}
        for key, col in present.items():
            value = _text(record.get(col))
            if value is not None:
                data[key] = value
        try:
            report = incidents.parse_report(data, source="import")
        except BadInput as exc:
            reports.append(None)
            problems.append(f"row {i + 2}: {exc.message}")
            continue
        # checked in WGS84 (converted once for the whole file); stored as given
        reports.append(dataclasses.replace(report, x=float(points.x[i]), y=float(points.y[i]), crs=points.crs))
    ids = pd.Series([r.client_request_id if r else None for r in reports]).dropna()
    for cid in ids[ids.duplicated()].unique():
        problems.append(f"client_request_id {cid!r} appears more than once in the file")
    return reports, problems


def _text(value):
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def _new_reports(cur, path, reports):
    """Leave out reports stored before (same client_request_id and content); a clash is a Conflict."""
    ids = [r.client_request_id for r in reports if r.client_request_id]
    if not ids:
        return reports, 0
    cur.execute("select client_request_id, request_sha256 from incident where client_request_id = any(%s)", (ids,))
    stored = dict(cur.fetchall())
    clashes = [r.client_request_id for r in reports
               if r.client_request_id in stored and stored[r.client_request_id] != r.content_sha256()]
    if clashes:
        raise Conflict(f"{path}: {len(clashes)} client_request_id(s) were used before for different reports; "
                       "nothing was written", details=clashes[:MAX_LISTED])
    new = [r for r in reports if r.client_request_id not in stored]
    return new, len(reports) - len(new)


def _insert(cur, reports):
    """COPY the reports in; return their ids in the same order."""
    cur.execute("select nextval(pg_get_serial_sequence('incident', 'id')) from generate_series(1, %s)",
                (len(reports),))
    ids = [r[0] for r in cur.fetchall()]
    rows = pd.DataFrame([{
        "id": ids[n], "category": r.category, "description": r.description, "address": r.address,
        "x": r.x, "y": r.y, "crs": r.crs, "lon": r.lon, "lat": r.lat, "accuracy_m": r.accuracy_m,
        "reporter": json.dumps(r.reporter, ensure_ascii=False), "client_request_id": r.client_request_id,
        "sha": r.content_sha256(), "reported_at": r.reported_at.isoformat() if r.reported_at else None,
    } for n, r in enumerate(reports)])
    buffer = io.StringIO()
    rows.to_csv(buffer, index=False, header=False, na_rep="\\N")
    buffer.seek(0)
    cur.execute("create temp table import_in (id bigint, category text, description text, address text,"
                " x double precision, y double precision, crs text, lon double precision, lat double precision,"
                " accuracy_m real, reporter jsonb, client_request_id text, sha text, reported_at timestamptz)"
                " on commit drop")
    cur.copy_expert("copy import_in from stdin with (format csv, null '\\N')", buffer)
    cur.execute(
        "insert into incident (id, category, description, address, given_x, given_y, given_crs, geom, accuracy_m,"
        " source, reporter, client_request_id, request_sha256, reported_at)"
        " overriding system value select id, category, description, address, x, y, crs, ST_SetSRID(ST_MakePoint(lon, lat), 4326), accuracy_m,"
        "        'import', reporter, client_request_id, sha, coalesce(reported_at, now())"
        "   from import_in")
    return ids

