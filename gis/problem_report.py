"""Partition problems as a readable report, JSON, or GeoJSON (one feature a problem, EPSG:4326)."""
import dataclasses
import json

from gis.partition_checks import PROBLEM_TYPES, summarize

TITLES = {
    "invalid": "invalid geometries", "empty": "empty geometries", "multipart": "cells in several parts",
    "overlap": "overlaps", "gap": "gaps", "spill": "cells spilling over their parent", "orphan": "cells with no parent",
    "wrong_parent_level": "parents of the wrong level", "sliver": "slivers", "duplicate_code": "duplicate codes",
    "code_layout": "codes off the national layout", "code_prefix": "codes not starting with the parent's code",
}


def problem_dicts(result):
    """The problems as dicts, ordered, with geometries in EPSG:4326 (reprojected in one call)."""
    problems = _ordered(result.problems)
    geometries = result.geometries_wgs84(problems)
    return [_problem_dict(p, g) for p, g in zip(problems, geometries)]


def _problem_dict(problem, geometry):
    return {
        "type": problem.type,
        "level": problem.level,
        "codes": list(problem.codes),
        "area_m2": None if problem.area_m2 is None else round(float(problem.area_m2), 3),
        "width_m": None if problem.width_m is None else round(float(problem.width_m), 3),
        "detail": problem.detail,
        "geometry": None if geometry is None else geometry.__geo_interface__,
    }


def _ordered(problems):
    rank = {t: i for i, t in enumerate(PROBLEM_TYPES)}
    return sorted(problems, key=lambda p: (rank.get(p.type, 99), -(p.area_m2 or 0), p.codes))


def _summary(result):
    return {t: {"count": v["count"], "area_m2": round(float(v["area_m2"]), 3)} for t, v in summarize(result.problems).items()}


def as_geojson(result):
    features = []
    for d in problem_dicts(result):
        geometry = d.pop("geometry")
        features.append({"type": "Feature", "geometry": geometry, "properties": d})
    return {"type": "FeatureCollection", "subject": result.subject, "noise_m": result.tol.noise_m,
            "summary": _summary(result), "features": features}


def as_json(result):
    return {"subject": result.subject, "levels": result.levels, "cells": result.cell_count,
            "tolerances": dataclasses.asdict(result.tol),
            "summary": _summary(result), "problems": problem_dicts(result)}


def as_text(result):
    """Grouped by type, largest first, with a summary line at the end."""
    lines = [f"Partition check of {result.subject} (noise below {result.tol.noise_m} m ignored)"]
    counts = summarize(result.problems)
    current = None
    for p in _ordered(result.problems):
        if p.type != current:
            current = p.type
            lines.append(f"\n{TITLES.get(p.type, p.type)} ({counts[p.type]['count']}):")
        size = []
        if p.area_m2 is not None:
            size.append(f"{p.area_m2:,.2f} m²")
        if p.width_m is not None:
            size.append(f"{p.width_m:,.2f} m wide")
        level = "" if p.level is None else f"L{p.level} "
        lines.append(f"  {level}{' × '.join(p.codes) or '—'}  {', '.join(size)}  {p.detail}".rstrip())
    lines.append("")
    lines.append(summary_line(result))
    return "\n".join(lines)


def summary_line(result):
    if not result.problems:
        return f"clean: no problems in {result.subject}"
    parts = [f"{v['count']} {TITLES.get(t, t)}" + (f" ({v['area_m2']:,.1f} m²)" if v["area_m2"] else "")
             for t, v in sorted(_summary(result).items(), key=lambda kv: PROBLEM_TYPES.index(kv[0]))]
    return f"{len(result.problems)} problem(s) in {result.subject}: " + "; ".join(parts)


def render(result, fmt):
    if fmt == "text":
        return as_text(result) + "\n"
    body = as_geojson(result) if fmt == "geojson" else as_json(result)
    return json.dumps(body, ensure_ascii=False, indent=1) + "\n"
