"""Export the cells of one level of a version to GeoJSON, GeoPackage or Shapefile.

Field names are kept to ten characters so that a Shapefile holds the same columns as the other
formats, and the export imports back with ``--parent-field parent``.
"""
from pathlib import Path

import geopandas as gpd
import pyogrio
import shapely

from gis import grid_store
from gis.errors import BadInput

FORMATS = {"geojson": ("GeoJSON", ".geojson"), "gpkg": ("GPKG", ".gpkg"), "shp": ("ESRI Shapefile", ".shp")}


def export_cells(db, path, *, level, fmt, version_id=None):
    """Write one level of a version (the active one by default) to ``path``; return (version id, count)."""
    if fmt not in FORMATS:
        raise BadInput(f"format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    grid_store.check_level(level)
    path = Path(path)
    if not path.parent.is_dir():
        raise BadInput(f"{path.parent}: no such directory")
    if path.is_dir():
        raise BadInput(f"{path} is a directory: name the file to write")
    with db.cursor() as cur:
        version = grid_store.resolve_version(cur, version_id)
        cur.execute(
            """select c.code, c.name, c.level, p.code as parent, c.kind, c.population, c.area_m2,
                      ST_AsBinary(c.geom) as wkb
                 from grid_cell c left join grid_cell p on p.id = c.parent_id
                where c.version_id = %s and c.level = %s order by c.code""",
            (version["id"], level),
        )
        rows = cur.fetchall()
    if not rows:
        raise BadInput(f"version {version['id']} has no level-{level} cells")
    frame = gpd.GeoDataFrame(
        [{k: v for k, v in row.items() if k != "wkb"} for row in rows],
        geometry=shapely.from_wkb([bytes(row["wkb"]) for row in rows]),
        crs="EPSG:4326",
    )
    driver, _ = FORMATS[fmt]
    # Write next to the target and rename, so a failed export never leaves a half-written file behind.
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    _remove_dataset(tmp, fmt)
    pyogrio.write_dataframe(frame, tmp, driver=driver, layer=f"level{level}",
                            **({"encoding": "UTF-8"} if fmt == "shp" else {}))
    _remove_dataset(path, fmt)
    for part in _dataset_files(tmp, fmt):
        part.rename(path.with_suffix(part.suffix) if fmt == "shp" else path)
    return version["id"], len(frame)


def _dataset_files(path, fmt):
    if fmt != "shp":
        return [path] if path.exists() else []
    return [path.with_suffix(ext) for ext in (".shp", ".shx", ".dbf", ".prj", ".cpg") if path.with_suffix(ext).exists()]


def _remove_dataset(path, fmt):
    for part in _dataset_files(path, fmt):
        part.unlink()
