"""Point tables from files: CSV, or any vector format GDAL reads (GeoJSON, GeoPackage, Shapefile).

Coordinates come from two named columns (``--lon``/``--lat``) or, for vector files, from the point
geometry; they are converted to WGS84 from ``crs`` (GCJ-02 and BD-09 included). Rows whose coordinates are
missing, not numbers, infinite or off the Earth are kept and flagged, never dropped.
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from gis import crs as gcrs
from gis.errors import BadInput
from gis.grid_import import read_frame


@dataclass(frozen=True, eq=False)
class PointTable:
    """The rows (without geometry), their coordinates as given (``x``, ``y`` in ``crs``) and in WGS84
    (``lon``, ``lat``: NaN where ``valid`` is False: missing, not numbers, infinite or off the Earth)."""

    frame: pd.DataFrame
    x: np.ndarray
    y: np.ndarray
    crs: str
    lon: np.ndarray
    lat: np.ndarray
    valid: np.ndarray


def read_points(path, *, lon_field=None, lat_field=None, crs=None, layer=None):
    """Read a point table from a CSV or vector file into a :class:`PointTable`."""
    path = Path(path)
    if path.suffix.lower() in (".csv", ".txt"):
        frame = _read_csv(path)
        geometry = None
    else:
        frame, file_crs = read_frame(path, layer=layer)
        geometry = frame.geometry
        frame = pd.DataFrame(frame.drop(columns=frame.geometry.name))
        if crs is None and not (lon_field or lat_field):
            crs = file_crs
    if bool(lon_field) != bool(lat_field):
        raise BadInput("give both --lon and --lat, or neither (to use the file's point geometry)")
    if lon_field:
        for name in (lon_field, lat_field):
            if name not in frame.columns:
                raise BadInput(f"{path}: no column {name!r}; columns are {', '.join(map(str, frame.columns))}")
        x = pd.to_numeric(frame[lon_field], errors="coerce").to_numpy(np.float64)
        y = pd.to_numeric(frame[lat_field], errors="coerce").to_numpy(np.float64)
    elif geometry is not None:
        kinds = set(shapely.get_type_id(geometry.dropna().to_numpy()).tolist())
        if not kinds <= {0}:
            raise BadInput(f"{path}: the geometries are not points; name the coordinate columns with --lon/--lat")
        x = shapely.get_x(geometry.to_numpy())
        y = shapely.get_y(geometry.to_numpy())
        x = np.where(pd.isna(geometry).to_numpy(), np.nan, x)
        y = np.where(pd.isna(geometry).to_numpy(), np.nan, y)
    else:
        raise BadInput(f"{path}: a CSV file needs --lon and --lat to name its coordinate columns")
    spec = gcrs.parse_crs(crs or "EPSG:4326")
    finite = np.isfinite(x) & np.isfinite(y)
    if spec.is_geographic:
        finite &= (np.abs(x) <= 180) & (np.abs(y) <= 90)
    lon = np.full(len(x), np.nan)
    lat = np.full(len(x), np.nan)
    if finite.any():
        lon[finite], lat[finite] = gcrs.to_wgs84(x[finite], y[finite], spec)
    with np.errstate(invalid="ignore"):
        valid = finite & np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 180) & (np.abs(lat) <= 90)
    lon[~valid] = np.nan
    lat[~valid] = np.nan
    return PointTable(frame, x, y, spec.name, lon, lat, valid)


def _read_csv(path):
    if not path.exists():
        raise BadInput(f"{path}: no such file")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise BadInput(f"{path}: cannot read it as a UTF-8 CSV file ({str(exc).splitlines()[0]})") from None


def write_csv_atomically(frame, out):
    """Write a CSV to a temporary name beside ``out`` and rename it: a reader never sees half a file."""
    out = Path(out)
    if not out.parent.is_dir():
        raise BadInput(f"{out.parent}: no such directory")
    tmp = out.with_name(f".{out.name}.partial")
    try:
        frame.to_csv(tmp, index=False, encoding="utf-8")
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)

