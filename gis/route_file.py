"""``gridmap route-file``: route a file of points against a file of cells, no database needed.

For planners' what-if questions and for checking other cities' data: every input row comes out with
the code of its cell and how it was routed. The cells may be any polygon layer, gaps and overlaps
included: a point in two cells says so (``overlap``) and lists both codes.
"""
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gis.batch_routing import SHARED_EDGE, STATUSES, UNROUTED, GridRouter
from gis.errors import BadInput
from gis.grid_import import read_frame, to_wgs84
from gis.point_files import read_points, write_csv_atomically


@dataclass(frozen=True)
class RouteFileReport:
    rows: int
    by_status: dict
    seconds: float
    out: str

    def lines(self):
        rate = self.rows / self.seconds if self.seconds else float("inf")
        yield f"routed {self.rows:,} points in {self.seconds:.2f} s ({rate:,.0f} points/s) → {self.out}"
        for status, count in sorted(self.by_status.items(), key=lambda kv: -kv[1]):
            yield f"  {status:<12} {count:>10,}"


def route_file(*, cells_path, code_field, points_path, lon_field, lat_field, crs=None, out,
               snap_m=30.0, cells_layer=None, points_layer=None):
    cells, cells_crs = read_frame(cells_path, layer=cells_layer)
    if code_field not in cells.columns:
        raise BadInput(f"{cells_path}: no field {code_field!r}; fields are "
                       f"{', '.join(c for c in cells.columns if c != cells.geometry.name)}")
    polygonal = cells.geometry.notna() & cells.geometry.geom_type.isin(["Polygon", "MultiPolygon"])
    if not polygonal.any():
        raise BadInput(f"{cells_path}: no polygons to route into")
    cells = cells[polygonal & cells[code_field].notna()]
    codes = cells[code_field].astype(str).to_numpy()
    geoms = to_wgs84(cells_path, cells.geometry.to_numpy(), codes, cells_crs)
    points = read_points(points_path, lon_field=lon_field, lat_field=lat_field, crs=crs, layer=points_layer)
    frame, lon, lat, valid = points.frame, points.lon, points.lat, points.valid

    started = time.perf_counter()
    router = GridRouter.from_polygons(geoms, codes)
    routed = router.route(lon[valid], lat[valid], None, snap_m)
    seconds = time.perf_counter() - started

    status = np.full(len(frame), "invalid", dtype=object)
    names = np.array(STATUSES, dtype=object)[routed.status]
    names[(routed.status == SHARED_EDGE) & routed.inside_several] = "overlap"
    status[valid] = names
    code = np.full(len(frame), "", dtype=object)
    has_cell = routed.status != UNROUTED  # an unrouted point belongs to no cell of the file
    code_valid = np.where(has_cell, router.codes[np.maximum(routed.chosen, 0)], "")
    code[valid] = code_valid
    candidates = np.full(len(frame), "", dtype=object)
    candidates[valid] = [";".join(c) for c in router.candidate_codes(routed)]
    snap = np.full(len(frame), np.nan)
    snap[valid] = routed.snap_distance_m

    result = frame.copy()
    result["cell_code"] = code
    result["routing_status"] = status
    result["candidates"] = candidates
    result["snap_distance_m"] = pd.Series(snap).round(2)
    write_csv_atomically(result, out)
    return RouteFileReport(len(frame), pd.Series(status).value_counts().to_dict(), seconds, str(out))
