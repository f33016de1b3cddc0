"""Import grid cells from GeoJSON, GeoPackage or Shapefile (plain or zipped) into a draft version.

The whole import is one transaction. A dry run does every step — reading, checking, reprojecting,
finding parents in PostGIS, inserting — and then rolls back, so what it reports is exactly what
``--commit`` would write.
"""
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from psycopg2.extras import RealDictCursor, execute_values
from shapely.geometry.base import GEOMETRY_TYPES

from gis import crs as gcrs
from gis import grid_store
from gis.errors import BadInput
from gis.partition_geometry import as_multipolygon

POLYGONAL = {"Polygon", "MultiPolygon"}
# A cell must lie at least this much inside the parent found for it by containment.
MIN_PARENT_SHARE = 0.5
# Area (m²) outside its parent above which a cell is reported as spilling over.
SPILL_TOLERANCE_M2 = 1.0


@dataclass
class ImportOptions:
    level: int
    layer: str | None = None
    code_field: str = "code"
    name_field: str = "name"
    parent_field: str | None = None
    src_crs: str | None = None
    version_id: int | None = None
    make_valid: bool = False
    note: str = ""
    actor: str = "unknown"


@dataclass
class ImportReport:
    """What an import wrote, or would write on a dry run."""

    version_id: int
    new_version: bool
    level: int
    count: int
    area_km2: float
    source_crs: str
    committed: bool
    repaired: list = field(default_factory=list)
    spilling: list = field(default_factory=list)  # (code, parent code, m² outside)

    def lines(self):
        verb = "wrote" if self.committed else "dry run: would write"
        if self.new_version:  # a dry run's version number is not kept, so it is not shown
            where = f"new draft version {self.version_id}" if self.committed else "a new draft version"
        else:
            where = f"draft version {self.version_id}"
        out = [
            f"{verb} {self.count} level-{self.level} cells ({grid_store.LEVEL_NAMES[self.level]}) "
            f"to {where}, {self.area_km2:,.2f} km² in all, read in {self.source_crs}",
        ]
        if not self.committed:
            out.append("nothing was written; --commit writes it")
        if self.repaired:
            out.append(f"repaired {len(self.repaired)} invalid geometries (--make-valid): {', '.join(self.repaired[:10])}")
        if self.spilling:
            out.append(f"{len(self.spilling)} cells spill over their parent by more than {SPILL_TOLERANCE_M2} m²:")
            out += [f"  {code} is {m2:,.1f} m² outside {parent}" for code, parent, m2 in self.spilling[:20]]
        else:
            out.append("every cell lies inside its parent" if self.level else "districts have no parent")
        return out


def read_frame(path, *, layer=None, src_crs=None):
    """Open one layer of a polygon file: ``(GeoDataFrame, CrsSpec of its coordinates)``.

    Raises :class:`BadInput` for a missing, empty or unreadable file, an ambiguous or unknown layer, and
    coordinates whose CRS is unknown.
    """
    path = Path(path)
    if not path.exists():
        raise BadInput(f"{path}: no such file")
    if path.is_file() and path.stat().st_size == 0:
        raise BadInput(f"{path}: the file is empty")
    source = f"/vsizip/{path}" if path.suffix.lower() == ".zip" else str(path)
    layer = _pick_layer(source, path, layer)
    try:
        frame = pyogrio.read_dataframe(source, layer=layer)
    except Exception as exc:  # pyogrio raises several error types for unreadable data
        raise BadInput(f"{path}: cannot read it as GeoJSON, GeoPackage or Shapefile ({_first_line(exc)})") from exc
    if len(frame) == 0:
        raise BadInput(f"{path}: the layer {layer!r} has no features")
    if not isinstance(frame, gpd.GeoDataFrame):  # a table without geometries: a .dbf alone, a zip without its .shp
        raise BadInput(f"{path}: the layer {layer!r} has no geometries (a Shapefile without its .shp?)")
    return frame, _source_crs(path, frame, src_crs)


def to_wgs84(path, geoms, codes, src):
    """Reproject to EPSG:4326, refusing coordinates that cannot be in ``src`` (e.g. metres in a file that says
    degrees: a file of mixed CRSs)."""
    try:
        out = gcrs.transform_geometries(geoms, src, "EPSG:4326")
    except Exception as exc:  # pyproj refuses some inputs outright
        raise BadInput(f"{path}: cannot transform from {src.name} ({_first_line(exc)})") from exc
    bounds = shapely.bounds(out)
    present = ~np.isnan(bounds).all(axis=1)  # empty geometries have no bounds
    with np.errstate(invalid="ignore"):
        bad = present & ~(np.isfinite(bounds).all(axis=1) & (bounds[:, 0] >= -180) & (bounds[:, 2] <= 180)
                          & (bounds[:, 1] >= -90) & (bounds[:, 3] <= 90))
    if bad.any():
        raise BadInput(f"{path}: {int(bad.sum())} feature(s) have coordinates that cannot be {src.name} "
                       "(a file of mixed CRSs? give --src-crs, or fix those features)",
                       details=[str(codes[i]) for i in np.flatnonzero(bad)[:50]])
    return out


def read_cells(path, options):
    """Read and check a polygon file; return a GeoDataFrame in EPSG:4326 and the source CRS name.

    Raises :class:`BadInput` listing what is wrong, before anything touches the database.
    """
    grid_store.check_level(options.level)
    frame, src = read_frame(path, layer=options.layer, src_crs=options.src_crs)
    codes = _codes(path, frame, options)
    names = _text_column(path, frame, options.name_field, "--name-field")
    geoms = frame.geometry.to_numpy()
    geoms, repaired = _checked_geometries(path, geoms, codes, options.make_valid)
    geoms = np.array([as_multipolygon(g) for g in to_wgs84(path, geoms, codes, src)], dtype=object)

    cells = pd.DataFrame({"code": codes, "name": names})
    cells["parent_code"] = (
        _text_column(path, frame, options.parent_field, "--parent-field") if options.parent_field else None
    )
    cells["kind"] = _kinds(path, frame, codes)
    cells["population"] = pd.Series(_populations(path, frame, codes), dtype=object)  # None stays None, not NaN
    used = {options.code_field, options.name_field, options.parent_field, "kind", "population", "geometry"}
    extra = [c for c in frame.columns if c not in used]
    cells["attributes"] = [
        {k: _jsonable(v) for k, v in rec.items() if _jsonable(v) is not None} for rec in frame[extra].to_dict("records")
    ] if extra else [{} for _ in range(len(frame))]
    cells["geometry"] = geoms
    return cells, src.name, [codes[i] for i in repaired]


def import_cells(db, path, options, *, commit=False):
    """Import one level of cells from ``path``; a dry run unless ``commit``. Returns an :class:`ImportReport`."""
    cells, src_name, repaired = read_cells(path, options)
    with db.connection() as conn, conn.cursor(cursor_factory=RealDictCursor) as cur:
        report = write_cells(cur, cells, options, source=Path(path).name, committed=commit)
        report.source_crs, report.repaired = src_name, repaired
        if not commit:
            conn.rollback()
    return report


def write_cells(cur, cells, options, *, source, committed):
    """Write checked cells (from :func:`read_cells`) inside the caller's transaction."""
    grid_store.edits_by(cur, options.actor, "import", options.note)
    if options.version_id is None:
        version = grid_store.create_draft(cur, created_by=options.actor, note=options.note, source=source)
        options.version_id, new_version = version["id"], True
    else:
        version = grid_store.require_draft(cur, options.version_id)
        new_version = False
    vid = version["id"]
    taken = grid_store.existing_codes(cur, vid, cells["code"])
    if taken:
        raise BadInput(f"{len(taken)} code(s) already exist in version {vid}", details=sorted(taken)[:50])
    cells = cells.assign(parent_id=_parent_ids(cur, vid, cells, options))
    cells["wkb"] = [shapely.to_wkb(g) for g in cells["geometry"]]
    grid_store.insert_cells(cur, vid, options.level, cells.to_dict("records"))
    spilling = _spilling(cur, vid, options.level, list(cells["code"])) if options.level > 0 else []
    cur.execute("select coalesce(sum(area_m2), 0) as a from grid_cell where version_id = %s and code = any(%s)",
                (vid, list(cells["code"])))
    area_km2 = cur.fetchone()["a"] / 1e6
    return ImportReport(vid, new_version, options.level, len(cells), area_km2, "", committed, [], spilling)


# --- reading ------------------------------------------------------------------------------------------

def _pick_layer(source, path, layer):
    try:
        layers = [name for name, _ in pyogrio.list_layers(source)]
    except Exception as exc:
        raise BadInput(f"{path}: not a readable GeoJSON, GeoPackage or Shapefile ({_first_line(exc)})") from exc
    if not layers:
        raise BadInput(f"{path}: the file holds no layer")
    if layer is None:
        if len(layers) > 1:
            raise BadInput(f"{path} holds several layers; choose one with --layer: {', '.join(layers)}")
        return layers[0]
    if layer not in layers:
        raise BadInput(f"{path} has no layer {layer!r}; its layers: {', '.join(layers)}")
    return layer


def _source_crs(path, frame, src_crs):
    # --src-crs wins over the file: GCJ-02 and BD-09 data always claim to be EPSG:4326.
    if src_crs:
        return gcrs.parse_crs(src_crs)
    if frame.crs is None:
        raise BadInput(f"{path} does not say which CRS its coordinates are in; give --src-crs "
                       "(EPSG:n, wgs84, cgcs2000, gcj02 or bd09)")
    epsg = frame.crs.to_epsg()
    if epsg is None:
        raise BadInput(f"{path}: its CRS has no EPSG code ({frame.crs.name}); give --src-crs")
    return gcrs.parse_crs(f"EPSG:{epsg}")


def _codes(path, frame, options):
    if options.code_field not in frame.columns:
        raise BadInput(f"{path} has no field {options.code_field!r} for the codes; give --code-field, one of: "
                       f"{', '.join(c for c in frame.columns if c != 'geometry')}")
    raw = frame[options.code_field]
    if pd.api.types.is_float_dtype(raw):  # Shapefiles often store codes as doubles
        codes = [None if pd.isna(v) else (str(int(v)) if float(v).is_integer() else str(v)) for v in raw]
    else:
        codes = [None if pd.isna(v) else str(v).strip() for v in raw]
    blank = [i + 1 for i, c in enumerate(codes) if not c]
    if blank:
        raise BadInput(f"{path}: {len(blank)} feature(s) have no code", details=[f"feature {i}" for i in blank[:50]])
    bad = [c for c in codes if not c.isdigit()]
    if bad:
        raise BadInput(f"{path}: codes must be digits only", details=bad[:50])
    expected = grid_store.CODE_LENGTH[options.level]
    wrong = [c for c in codes if len(c) != expected]
    if wrong:
        lengths = sorted({len(c) for c in wrong})
        guess = [lvl for lvl, n in grid_store.CODE_LENGTH.items() if n in lengths]
        hint = f" (they look like level {guess[0]}: wrong --level?)" if len(guess) == 1 else ""
        raise BadInput(f"{path}: level-{options.level} codes have {expected} digits; {len(wrong)} have "
                       f"{'/'.join(map(str, lengths))}{hint}", details=wrong[:50])
    seen, dups = set(), []
    for c in codes:
        if c in seen:
            dups.append(c)
        seen.add(c)
    if dups:
        raise BadInput(f"{path}: {len(set(dups))} code(s) appear more than once", details=sorted(set(dups))[:50])
    return codes


def _text_column(path, frame, name, option):
    if name not in frame.columns:
        raise BadInput(f"{path} has no field {name!r}; give {option}, one of: "
                       f"{', '.join(c for c in frame.columns if c != 'geometry')}")
    values = [None if pd.isna(v) else str(v).strip() for v in frame[name]]
    if option == "--name-field":
        missing = [i + 1 for i, v in enumerate(values) if not v]
        if missing:
            raise BadInput(f"{path}: {len(missing)} feature(s) have no name", details=[f"feature {i}" for i in missing[:50]])
    return values


def _kinds(path, frame, codes):
    if "kind" not in frame.columns:
        return ["regular"] * len(frame)
    kinds = [("regular" if pd.isna(v) or not str(v).strip() else str(v).strip()) for v in frame["kind"]]
    bad = [f"{c}: {k!r}" for c, k in zip(codes, kinds) if k not in ("regular", "special")]
    if bad:
        raise BadInput(f"{path}: kind must be 'regular' or 'special'", details=bad[:50])
    return kinds


def _populations(path, frame, codes):
    if "population" not in frame.columns:
        return [None] * len(frame)
    values = pd.to_numeric(frame["population"], errors="coerce")
    bad = [c for c, raw, v in zip(codes, frame["population"], values)
           if not pd.isna(raw) and (pd.isna(v) or v < 0 or not float(v).is_integer())]
    if bad:
        raise BadInput(f"{path}: population must be a whole number ≥ 0", details=bad[:50])
    return [None if pd.isna(v) else int(v) for v in values]


def _checked_geometries(path, geoms, codes, make_valid):
    missing = [codes[i] for i in np.flatnonzero(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    if missing:
        raise BadInput(f"{path}: {len(missing)} feature(s) have no geometry", details=missing[:50])
    types = shapely.get_type_id(geoms)
    not_polygons = np.flatnonzero(~np.isin(types, [3, 6]))  # Polygon, MultiPolygon
    if len(not_polygons):
        kinds = sorted({shapely.get_type_id(geoms[i]) for i in not_polygons})
        raise BadInput(f"{path}: grid cells must be polygons; {len(not_polygons)} feature(s) are "
                       f"{', '.join(GEOMETRY_TYPES[k] for k in kinds)}",
                       details=[codes[i] for i in not_polygons[:50]])
    invalid = np.flatnonzero(~shapely.is_valid(geoms))
    if len(invalid) and not make_valid:
        details = []
        for i in invalid[:50]:
            reason = shapely.is_valid_reason(geoms[i])
            details.append(f"{codes[i]}: {reason}")
        raise BadInput(f"{path}: {len(invalid)} invalid geometr{'y' if len(invalid) == 1 else 'ies'} "
                       "(reason and location below, in the file's coordinates); fix them or pass --make-valid",
                       details=details)
    if len(invalid):
        geoms = geoms.copy()
        repaired = shapely.make_valid(geoms[invalid], method="structure", keep_collapsed=False)
        geoms[invalid] = [as_multipolygon(g) for g in repaired]
        lost = [codes[i] for i in invalid if shapely.is_empty(geoms[i])]
        if lost:
            raise BadInput(f"{path}: {len(lost)} geometr(ies) have no area left after repair", details=lost[:50])
    return geoms, list(invalid)


# --- parents --------------------------------------------------------------------------------------

def _parent_ids(cur, version_id, cells, options):
    level = options.level
    if level == 0:
        return [None] * len(cells)
    parent_level = level - 1
    counts = grid_store.cell_counts(cur, version_id)
    if not counts.get(parent_level):
        raise BadInput(f"version {version_id} has no level-{parent_level} cells to be parents of level-{level} cells; "
                       f"import level {parent_level} first (or check --level)")
    if options.parent_field:
        wanted = {c for c in cells["parent_code"] if c}
        ids = grid_store.cell_ids_by_code(cur, version_id, parent_level, wanted)
        orphans = [f"{code}: parent {p!r}" for code, p in zip(cells["code"], cells["parent_code"]) if p not in ids]
        if orphans:
            raise BadInput(f"{len(orphans)} cell(s) name a parent that is not a level-{parent_level} cell "
                           f"of version {version_id}", details=orphans[:50])
        return [ids[p] for p in cells["parent_code"]]
    return _parents_by_containment(cur, version_id, parent_level, cells)


def _parents_by_containment(cur, version_id, parent_level, cells):
    """The parent of each cell is the cell one level up that holds the largest share of its area."""
    cur.execute("create temp table import_geom (code text primary key, geom geometry) on commit drop")
    execute_values(cur, "insert into import_geom values %s",
                   [(c, shapely.to_wkb(g)) for c, g in zip(cells["code"], cells["geometry"])],
                   template="(%s, ST_SetSRID(ST_GeomFromWKB(%s), 4326))", page_size=1000)
    cur.execute(
        """select i.code, best.id, best.share
             from import_geom i
             left join lateral (
                 select p.id,
                        case when ST_Covers(p.geom, i.geom) then 1.0
                             else ST_Area(ST_Intersection(p.geom, i.geom)::geography) / ST_Area(i.geom::geography)
                        end as share
                   from grid_cell p
                  where p.version_id = %s and p.level = %s and p.geom && i.geom and ST_Intersects(p.geom, i.geom)
                  order by share desc, p.code       -- ties go to the lower code: documented, deterministic
                  limit 1) best on true""",
        (version_id, parent_level),
    )
    found = {row["code"]: (row["id"], row["share"]) for row in cur.fetchall()}
    cur.execute("drop table import_geom")
    orphans = [f"{code}: {0 if found[code][1] is None else found[code][1]:.0%} inside the best candidate"
               for code in cells["code"] if found[code][0] is None or found[code][1] < MIN_PARENT_SHARE]
    if orphans:
        raise BadInput(f"{len(orphans)} cell(s) lie mostly outside every level-{parent_level} cell of version "
                       f"{version_id}: their parent does not exist (or check --level)", details=orphans[:50])
    return [found[code][0] for code in cells["code"]]


def _spilling(cur, version_id, level, codes):
    cur.execute(
        """select c.code, p.code as parent, ST_Area(ST_Difference(c.geom, p.geom)::geography) as outside
             from grid_cell c join grid_cell p on p.id = c.parent_id
            where c.version_id = %s and c.level = %s and c.code = any(%s) and not ST_Covers(p.geom, c.geom)""",
        (version_id, level, codes),
    )
    rows = [(r["code"], r["parent"], r["outside"]) for r in cur.fetchall() if r["outside"] > SPILL_TOLERANCE_M2]
    return sorted(rows, key=lambda r: -r[2])


# --- helpers --------------------------------------------------------------------------------------

def _jsonable(value):
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (pd.Timestamp,)):
        return value.isoformat()
    if isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _first_line(exc):
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
