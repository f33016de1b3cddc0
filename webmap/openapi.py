"""``/api/v1/openapi.json``: the OpenAPI 3.0 description of the native API, written next to the views it
describes so that a change to one is seen beside the other."""
from flask import Blueprint, jsonify

from gis.case_workflow import ACTIONS, UNIT_KINDS
from gis.density import MEASURES, SCHEMES
from gis.evaluation import LEVELS as EVALUATION_LEVELS
from gis.tiles import TILE_CRS
from gis.incidents import (CLOSED_STATES, LEVEL_NAMES, MAX_DESCRIPTION, MAX_MEDIA, OPEN_STATES, REPORTER_FIELDS,
                           ROUTING_STATUSES)

bp = Blueprint("openapi", __name__)

_ERROR = {"$ref": "#/components/responses/Error"}


def _query(name, schema, description):
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _path(name, schema, description):
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


REPORT_INPUT = {
    "type": "object",
    "required": ["lon", "lat", "category"],
    "additionalProperties": False,
    "properties": {
        "lon": {"type": "number", "description": "longitude, or easting for a projected CRS"},
        "lat": {"type": "number", "description": "latitude, or northing for a projected CRS"},
        "crs": {"type": "string", "default": "EPSG:4326",
                "description": "EPSG:<code>, wgs84, cgcs2000, gcj02 (AMap, Tencent) or bd09 (Baidu)"},
        "accuracy_m": {"type": "number", "minimum": 0, "maximum": 100000, "description": "GPS accuracy radius"},
        "category": {"type": "string", "description": "subclass code of the event classification, e.g. 0102"},
        "description": {"type": "string", "maxLength": MAX_DESCRIPTION},
        "address": {"type": "string", "maxLength": 500},
        "client_request_id": {"type": "string", "minLength": 1, "maxLength": 200,
                              "description": "the client's id: sending it again returns the same incident"},
        "reporter": {"type": "object", "additionalProperties": False,
                     "properties": {f: {"type": "string", "maxLength": 200} for f in REPORTER_FIELDS}},
        "reported_at": {"type": "string", "format": "date-time", "description": "default: when it arrives"},
        "media": {"type": "array", "maxItems": MAX_MEDIA, "items": {"type": "string", "format": "uri"}},
        "source": {"type": "string", "enum": ["field_app", "hotline"], "default": "field_app"},
    },
}

CELL = {"type": "object", "properties": {
    "level": {"type": "integer", "minimum": 0, "maximum": 3},
    "level_name": {"type": "string", "enum": list(LEVEL_NAMES)},
    "code": {"type": "string"}, "name": {"type": "string"}}}

INCIDENT = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": "public id: <date received, China time>-<number>"},
        "category": {"type": "object"},
        "description": {"type": "string"},
        "address": {"type": "string"},
        "location": {"type": "object", "description": "as routed, EPSG:4326"},
        "given_location": {"type": "object", "description": "as sent: x, y and crs"},
        "accuracy_m": {"type": "number", "nullable": True},
        "source": {"type": "string"},
        "reporter": {"type": "object"},
        "client_request_id": {"type": "string", "nullable": True},
        "reported_at": {"type": "string", "format": "date-time"},
        "received_at": {"type": "string", "format": "date-time"},
        "media": {"type": "array", "items": {"type": "string"}},
        "status": {"type": "string", "enum": list(OPEN_STATES + CLOSED_STATES)},
        "case": {"type": "object", "description": "the case: version, level, holder, unit, deadline, overdue, "
                                                  "counters; events and allowed actions from /api/v1/cases"},
        "duplicate_of": {"type": "string", "nullable": True,
                         "description": "an open incident of the same subclass this report may repeat"},
        "routing": {"type": "object", "properties": {
            "status": {"type": "string", "enum": list(ROUTING_STATUSES)},
            "version": {"type": "integer", "nullable": True},
            "cells": {"type": "array", "items": CELL},
            "candidates": {"type": "array", "items": {"type": "string"}},
            "snap_distance_m": {"type": "number", "nullable": True},
            "staff": {"type": "array", "items": {"type": "object"}}}},
    },
}


CASE_ACTION = {
    "type": "object",
    "required": ["action", "version"],
    "additionalProperties": False,
    "properties": {
        "action": {"type": "string", "enum": list(ACTIONS)},
        "version": {"type": "integer", "minimum": 0, "description": "the case version acted on (case.version)"},
        "actor": {"type": "object", "additionalProperties": False,
                  "description": "the unit acting (by default the unit of the caller's scope); who acts is who "
                                 "is signed in, or the API key's name — a name sent here is not believed",
                  "properties": {"name": {"type": "string"},
                                 "unit": {"type": "string", "description": "kind:code of the acting unit"}}},
        "at": {"type": "string", "format": "date-time", "description": "when it was done; default now"},
        "note": {"type": "string", "maxLength": 2000},
        "location": {"type": "object", "required": ["lon", "lat"], "properties": {
            "lon": {"type": "number"}, "lat": {"type": "number"}, "accuracy_m": {"type": "number"}}},
        "unit_kind": {"type": "string", "enum": list(UNIT_KINDS), "description": "dispatch: to whom"},
        "unit": {"type": "string", "description": "dispatch: a cell or department code (default: the case's own)"},
        "reason": {"type": "string", "maxLength": 500, "description": "void, rework, escalate, extend"},
        "deadline": {"type": "string", "format": "date-time", "description": "extend: the new deadline"},
        "approved_by": {"type": "string", "maxLength": 500, "description": "extend: the approver, one level up"},
    },
}

_RATE = {"type": "number", "nullable": True, "description": "a fraction of the due cases; null when none fell due"}
STATS = {
    "summary": "Evaluation: indicators, composite score and rank of every unit of a level over a period",
    "parameters": [
        _query("level", {"type": "string", "enum": list(EVALUATION_LEVELS), "default": "street"},
               "areas (every cell of the active version), departments, or posts (one row per person)"),
        _query("period", {"type": "string", "default": "week"},
               "day, week, month, quarter (the last complete one, China time), YYYY-MM-DD, YYYY-Www, YYYY-MM "
               "or YYYY-Qn"),
        _query("from", {"type": "string", "format": "date"}, "instead of period: the first day (or an ISO time)"),
        _query("to", {"type": "string", "format": "date"}, "with from: the end, exclusive"),
        _query("within", {"type": "string"}, "a cell code: only the units under it (or it)"),
        _query("weights", {"type": "string"}, "e.g. closure_rate:0.5,on_time_rate:0.5 (those not named weigh 0); "
                                              "default: table score_weight"),
        _query("format", {"type": "string", "enum": ["json", "csv"], "default": "json"}, "CSV has a header row"),
    ],
    "responses": {
        "200": {"description": "the units, ranked", "content": {
            "application/json": {"schema": {"type": "object", "properties": {
                "level": {"type": "string"},
                "period": {"type": "object", "properties": {
                    "label": {"type": "string"}, "from": {"type": "string", "format": "date-time"},
                    "to": {"type": "string", "format": "date-time"}}},
                "as_of": {"type": "string", "format": "date-time", "description": "min(to, now): what was counted"},
                "weights": {"type": "object", "additionalProperties": {"type": "number"}},
                "rows": {"type": "array", "items": {"type": "object", "properties": {
                    "rank": {"type": "integer"}, "kind": {"type": "string"}, "code": {"type": "string"},
                    "name": {"type": "string"},
                    **{k: {"type": "integer"} for k in ("received", "opened", "voided", "due", "closed",
                                                         "escalations")},
                    **{k: _RATE for k in ("closure_rate", "on_time_rate", "rework_rate", "extension_rate")},
                    "handling_mean_h": {"type": "number", "nullable": True},
                    "handling_p90_h": {"type": "number", "nullable": True},
                    "score": {"type": "number", "nullable": True, "description": "0–100; null when none fell due"},
                }}}}}},
            "text/csv": {"schema": {"type": "string"}}}},
        "400": _ERROR, "404": _ERROR},
}


LIVE = {
    "summary": "New reports, case actions and re-routings as server-sent events, as they commit",
    "description": "A text/event-stream. Each event: `id: <xact>-<id>`, `event: report|case|routing`, `data: <JSON>` "
                   "(the incident's public id, category, location, status or the action, its cells' ids; a "
                   "routing also its `previous` cells). It starts after the event named by Last-Event-ID (an "
                   "EventSource sends it when it reconnects) or `after`, else with the last `backlog` events, "
                   "and ends after a few minutes so that the client reconnects: nothing is missed or repeated.",
    "parameters": [
        {"name": "Last-Event-ID", "in": "header", "required": False, "schema": {"type": "string"},
         "description": "resume after this event id (<xact>-<id>)"},
        _query("after", {"type": "string", "pattern": "^[0-9]+-[0-9]+$"},
               "resume after this event id, for clients that cannot set the header (the header wins)"),
        _query("backlog", {"type": "integer", "minimum": 0, "maximum": 500, "default": 50},
               "without an event id: how many past events to send first"),
    ],
    "responses": {
        "200": {"description": "the stream", "content": {"text/event-stream": {"schema": {"type": "string"}}}},
        "400": _ERROR, "503": _ERROR},
}


# what the live map counts: the same in its tiles, classes and cards (gis.tiles.parse_filters)
MAP_FILTERS = [
    _query("since", {"type": "string"}, "reported at or after: ISO 8601 date or time, China time without offset"),
    _query("until", {"type": "string"}, "reported before (exclusive)"),
    _query("category", {"type": "string"}, "subclass (4 digits) or class (2 digits) codes, comma-separated"),
    _query("status", {"type": "string"}, "open, overdue, closed or workflow states, comma-separated: any matches"),
    _query("version", {"type": "integer", "minimum": 1}, "grid version; default: the active one"),
]
_LEVEL = {"type": "integer", "minimum": 0, "maximum": 3}

MAP_PATHS = {
    "/tiles/{level}/{z}/{x}/{y}.pbf": {"get": {
        "summary": "A Mapbox vector tile of a level's cells with their incident counts (built by PostGIS)",
        "description": "One layer `cells`: code, name, level, area_km2, population, count, per_km2, open, "
                       "overdue; feature id the cell id. Each level has a minimum zoom (400 below it).",
        "parameters": [
            _path("level", _LEVEL, "0 district … 3 unit grid"),
            _path("z", {"type": "integer", "minimum": 0, "maximum": 22}, "zoom"),
            _path("x", {"type": "integer", "minimum": 0}, "column"),
            _path("y", {"type": "integer", "minimum": 0}, "row"),
            *MAP_FILTERS,
            _query("crs", {"type": "string", "enum": list(TILE_CRS), "default": "wgs84"},
                   "gcj02: the tiling of GCJ-02 base maps (AMap), the cells shifted to match")],
        "responses": {
            "200": {"description": "the tile", "content": {"application/vnd.mapbox-vector-tile": {
                "schema": {"type": "string", "format": "binary"}}}},
            "204": {"description": "no cell of the level reaches this tile"},
            "400": _ERROR, "404": _ERROR}}},
    "/api/v1/map/classes": {"get": {
        "summary": "Class breaks of a level's density for the map's legend (mapclassify)",
        "parameters": [
            {**_query("level", _LEVEL, "0 district … 3 unit grid"), "required": True},
            _query("measure", {"type": "string", "enum": list(MEASURES), "default": "count"},
                   "reports, per km², or per 1,000 residents"),
            _query("scheme", {"type": "string", "enum": list(SCHEMES), "default": "quantiles"}, "the classifier"),
            _query("k", {"type": "integer", "minimum": 2, "maximum": 9, "default": 5}, "number of classes"),
            _query("parent", {"type": "string"}, "a cell code: classify only the cells under it"),
            *MAP_FILTERS],
        "responses": {"200": {"description": "breaks: the upper bounds of the classes, ascending",
                              "content": {"application/json": {"schema": {"type": "object"}}}},
                      "400": _ERROR, "404": _ERROR}}},
    "/api/v1/cells/{code}": {"get": {
        "summary": "A cell's card: staff with phones, counts by status, top categories, parents, extent",
        "parameters": [_path("code", {"type": "string", "pattern": "^[0-9]+$"}, "the cell's code"), *MAP_FILTERS],
        "responses": {"200": {"description": "the card", "content": {"application/json": {
            "schema": {"type": "object"}}}}, "400": _ERROR, "404": _ERROR}}},
}


_AS_OF = _query("as_of", {"type": "string"},
                "a date (YYYY-MM-DD, midnight China time) or an ISO date-time: the version active then "
                "(not with version)")

VERSION_DIFF = {
    "summary": "What changed from version a to version b: cells added, removed, reshaped, renamed, modified",
    "description": "Cells are matched by code and level. Reshaped: a piece of the area gained or lost covers "
                   "at least 1 m² and is on average wider than 1 cm (2·area/perimeter), so that noise from a "
                   "re-projection is not a change. Each changed cell is a feature; a reshaped one is followed by "
                   "its `gained` and `lost` pieces (area_change_m2: the piece's area, + or −).",
    "parameters": [_path("a", {"type": "integer"}, "the earlier version"),
                   _path("b", {"type": "integer"}, "the later version"),
                   _query("level", {"type": "integer", "minimum": 0, "maximum": 3}, "one level")],
    "responses": {"200": {"description": "the changes, with `versions`, `level` and `counts` per change",
                          "content": {"application/geo+json": {"schema": {"allOf": [
                              {"$ref": "#/components/schemas/FeatureCollection"},
                              {"type": "object", "properties": {
                                  "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
                                  "features": {"type": "array", "items": {"type": "object", "properties": {
                                      "properties": {"type": "object", "properties": {
                                          "change": {"type": "string", "enum": [
                                              "added", "removed", "reshaped", "renamed", "modified", "gained",
                                              "lost"]},
                                          "code": {"type": "string"}, "name": {"type": "string"},
                                          "level": {"type": "integer"},
                                          **{k: {"type": "number", "nullable": True} for k in (
                                              "area_before_m2", "area_after_m2", "area_change_m2",
                                              "area_change_pct", "gained_m2", "lost_m2")},
                                          "changed": {"type": "object", "description":
                                                      "{field: [before, after]} of name, kind, population, "
                                                      "parent_code"}}}}}}}}]}}}},
                  "400": _ERROR, "404": _ERROR},
}


ACTIVATION_PATHS = {
    "/api/v1/versions/{version}/impact": {"get": {
        "summary": "What activating a version would change: the open incidents that move to another cell or other "
                   "people, and the cells whose incident counts (closed ones included) change",
        "parameters": [
            _path("version", {"type": "integer"}, "version id (normally a draft)"),
            _query("format", {"type": "string", "enum": ["json", "csv", "geojson"], "default": "json"},
                   "csv or geojson: a file to download, one table or layer with a `kind` per row (incident, cell)")],
        "responses": {
            "200": {"description": "version, active_version, summary, incidents (change: cell or staff; cells and "
                                   "staff before and after), cells (level, code, name, before, after, difference)",
                    "content": {"application/json": {"schema": {"type": "object"}},
                                "text/csv": {"schema": {"type": "string"}},
                                "application/geo+json": {
                                    "schema": {"$ref": "#/components/schemas/FeatureCollection"}}}},
            "400": _ERROR, "404": _ERROR}}},
    "/api/v1/versions/{version}/activate": {"post": {
        "summary": "Activate a draft: checked, made active, the previous version retired and the open incidents "
                   "routed again, in one transaction; announced on the live feed",
        "parameters": [_path("version", {"type": "integer"}, "version id of a draft")],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "additionalProperties": False,
            "properties": {"actor": {"type": "string", "maxLength": 100,
                                     "description": "ignored: who activates is who is signed in"},
                           "force": {"type": "boolean", "default": False,
                                     "description": "activate although the partition check finds problems"},
                           "reason": {"type": "string", "maxLength": 2000,
                                      "description": "why; required with force"}}}}}},
        "responses": {
            "200": {"description": "activated, retired, rerouted, moved, by_status, problems, forced, seconds",
                    "content": {"application/json": {"schema": {"type": "object"}}}},
            "400": _ERROR, "404": _ERROR,
            "409": {"description": "not a draft, another activation under way, or partition problems (counted by "
                                   "type in `problems`) without force",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "413": _ERROR}}},
}

# The planners' editor (webmap/planner.py): every edit names who (and why), and the revisions it was made on.
_WHO = {"actor": {"type": "string", "description": "ignored: who edits is who is signed in (or the key's name)"},
        "reason": {"type": "string", "maxLength": 2000}}
_GEOMETRY = {"type": "object", "description": "GeoJSON Polygon or MultiPolygon, EPSG:4326"}
_EDITED = {"200": {"description": "cells (as they are now, with revisions), removed (codes), problems (GeoJSON)",
                   "content": {"application/json": {"schema": {"type": "object"}}}},
           "400": _ERROR, "404": _ERROR,
           "409": {"description": "a revision moved on (details: the cells as they are now), not a draft, or the "
                                  "database refused", "content": {"application/json": {
                                      "schema": {"$ref": "#/components/schemas/Error"}}}}}


def _edit(summary, properties, required=(), path=()):
    return {"summary": summary, "parameters": [_path("version", {"type": "integer"}, "a draft version"), *path],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": list(required), "properties": {**_WHO, **properties}}}}},
            "responses": _EDITED}


_CODE = _path("code", {"type": "string", "pattern": "^[0-9]+$"}, "the cell's code")
_REVISION = {"revision": {"type": "integer", "description": "the revision the edit was made on"}}
EDITOR_PATHS = {
    "/api/v1/versions/{version}/cells": {
        "get": {"summary": "Cells of a version with their revisions, for the editor",
                "parameters": [_path("version", {"type": "integer"}, "version id"),
                               _query("codes", {"type": "string"}, "comma-separated codes"),
                               _query("level", {"type": "integer", "minimum": 0, "maximum": 3}, "with bbox"),
                               _query("bbox", {"type": "string"}, "min_lon,min_lat,max_lon,max_lat"),
                               _query("limit", {"type": "integer", "minimum": 1, "maximum": 20000}, "default 5,000")],
                "responses": {"200": {"description": "cells", "content": {"application/geo+json": {
                    "schema": {"$ref": "#/components/schemas/FeatureCollection"}}}}, "400": _ERROR, "404": _ERROR}},
        "post": _edit("A new cell (level from its code, parent from its place unless given)", {
            "code": {"type": "string"}, "name": {"type": "string"}, "geometry": _GEOMETRY,
            "kind": {"type": "string", "enum": ["regular", "special"]}, "population": {"type": "integer"},
            "parent_code": {"type": "string"}}, ("code", "name", "geometry"))},
    "/api/v1/versions/{version}/cells/{code}": {
        "put": _edit("Save one cell", {**_REVISION, "geometry": _GEOMETRY, "name": {"type": "string"},
                                       "kind": {"type": "string", "enum": ["regular", "special"]},
                                       "population": {"type": "integer", "minimum": 0}, "code": {"type": "string"},
                                       "staff": {"type": "array", "items": {"type": "object"}}},
                     ("revision",), (_CODE,)),
        "delete": _edit("Delete a cell (refused while it has children); answers the gap it leaves", _REVISION,
                        ("revision",), (_CODE,))},
    "/api/v1/versions/{version}/cells/{code}/split": {"post": _edit(
        "Cut a cell in two along a line", {**_REVISION, "line": {"type": "object", "description": "GeoJSON LineString"},
                                          "new_code": {"type": "string"}, "new_name": {"type": "string"}},
        ("revision", "line"), (_CODE,))},
    "/api/v1/versions/{version}/merge": {"post": _edit(
        "Merge cells of one level and parent", {"revisions": {"type": "object", "additionalProperties": {
            "type": "integer"}}, "keep": {"type": "string"}}, ("revisions",))},
    "/api/v1/versions/{version}/move-vertex": {"post": _edit(
        "Move a vertex in every cell of the version that has it (a shared boundary moves for all)", {
            "from": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
            "to": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
            "revisions": {"type": "object", "additionalProperties": {"type": "integer"}}}, ("from", "to"))},
    "/api/v1/versions/{version}/edits": {"get": {
        "summary": "The version's edit log, newest first",
        "parameters": [_path("version", {"type": "integer"}, "version id"),
                       _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "default 100")],
        "responses": {"200": {"description": "edits", "content": {"application/json": {"schema": {"type": "array"}}}},
                      "404": _ERROR}}},
}


def document():
    geojson = {"application/geo+json": {"schema": {"$ref": "#/components/schemas/FeatureCollection"}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "GridMap API", "version": "1",
                 "description": "Grid-management GIS: grids, field reports routed to their cells, partition checks."},
        "paths": {
            "/api/v1/reports": {
                "post": {
                    "summary": "Report a problem: stored, routed to its cells and people",
                    "requestBody": {"required": True, "content": {
                        "application/json": {"schema": REPORT_INPUT},
                        "application/x-www-form-urlencoded": {"schema": REPORT_INPUT}}},
                    "responses": {
                        "201": {"description": "the new incident",
                                "content": {"application/json": {"schema": INCIDENT}}},
                        "200": {"description": "the incident first made with this client_request_id",
                                "content": {"application/json": {"schema": INCIDENT}}},
                        "400": _ERROR, "409": _ERROR, "413": _ERROR, "415": _ERROR},
                },
                "get": {
                    "summary": "Incidents as GeoJSON, newest first",
                    "parameters": [
                        _query("bbox", {"type": "string"}, "min_lon,min_lat,max_lon,max_lat"),
                        _query("cell", {"type": "string"}, "a grid code: incidents routed into that cell"),
                        _query("level", {"type": "integer", "minimum": 0, "maximum": 3},
                               "without cell: incidents routed down to this level and no further"),
                        _query("category", {"type": "string"}, "subclass or class codes, comma-separated"),
                        _query("status", {"type": "string"},
                               "workflow states, 'open' or 'overdue', comma-separated"),
                        _query("routing", {"type": "string"}, "routing statuses, comma-separated"),
                        _query("since", {"type": "string", "format": "date-time"}, "reported at or after"),
                        _query("until", {"type": "string", "format": "date-time"}, "reported before"),
                        _query("after", {"type": "integer", "minimum": 1}, "the previous page's 'next'"),
                        _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                               "page size"),
                    ],
                    "responses": {"200": {"description": "a page of incidents", "content": geojson},
                                  "400": _ERROR},
                },
            },
            "/api/v1/reports/{id}": {"get": {
                "summary": "One incident",
                "parameters": [_path("id", {"type": "string"}, "the public id")],
                "responses": {"200": {"description": "the incident",
                                      "content": {"application/json": {"schema": INCIDENT}}},
                              "404": _ERROR}}},
            "/api/v1/cases/{id}": {"get": {
                "summary": "One case: the incident with its case (holder, deadline, events, allowed actions)",
                "parameters": [_path("id", {"type": "string"}, "the incident's public id")],
                "responses": {"200": {"description": "the case",
                                      "content": {"application/json": {"schema": INCIDENT}}},
                              "404": _ERROR}}},
            "/api/v1/cases/{id}/actions": {"post": {
                "summary": "Act on a case (open, void, dispatch, start, handle, close, rework, extend, escalate)",
                "parameters": [_path("id", {"type": "string"}, "the incident's public id")],
                "requestBody": {"required": True, "content": {"application/json": {"schema": CASE_ACTION}}},
                "responses": {"200": {"description": "the case after the action",
                                      "content": {"application/json": {"schema": INCIDENT}}},
                              "400": _ERROR, "404": _ERROR, "409": _ERROR, "413": _ERROR}}},
            "/api/v1/cases": {"get": {
                "summary": "A unit's worklist, overdue first; or every overdue case",
                "parameters": [
                    _query("unit", {"type": "string"}, "kind:code, e.g. street:410102001, department:CGJ, city"),
                    _query("scope", {"type": "string", "enum": ["mine", "level"], "default": "mine"},
                           "mine: the cases the unit must act on; level: every open case its level owns"),
                    _query("overdue", {"type": "string", "enum": ["0", "1"]}, "1: overdue cases only"),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}, "at most")],
                "responses": {"200": {"description": "cases", "content": {"application/json": {
                    "schema": {"type": "object"}}}}, "400": _ERROR}}},
            "/api/v1/grids": {"get": {
                "summary": "Cells of a version as GeoJSON",
                "parameters": [
                    _query("level", {"type": "integer", "minimum": 0, "maximum": 3}, "0 district … 3 unit grid"),
                    _query("bbox", {"type": "string"}, "min_lon,min_lat,max_lon,max_lat"),
                    _query("version", {"type": "integer", "minimum": 1}, "default: the active version"),
                    _AS_OF,
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 20000}, "at most 20,000")],
                "responses": {"200": {"description": "cells", "content": geojson}, "400": _ERROR, "404": _ERROR}}},
            "/api/v1/versions": {"post": {
                "summary": "A draft copied from a version (the active one by default): cells, parents, staff",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "properties": {
                        **_WHO, "from": {"type": "integer"}, "note": {"type": "string"}}}}}},
                "responses": {"201": {"description": "the draft", "content": {"application/json": {
                    "schema": {"type": "object"}}}}, "400": _ERROR, "404": _ERROR}}, "get": {
                "summary": "Grid versions, newest first; with as_of the one version active then",
                "parameters": [_AS_OF],
                "responses": {"200": {"description": "versions (an array), or with as_of one version (an object)",
                                      "content": {"application/json": {"schema": {"oneOf": [
                                          {"type": "array", "items": {"type": "object"}}, {"type": "object"}]}}}},
                              "400": _ERROR, "404": _ERROR}}},
            "/api/v1/versions/{a}/diff/{b}": {"get": VERSION_DIFF},
            **EDITOR_PATHS,
            "/api/v1/versions/{version}/problems": {"get": {
                "summary": "Every partition problem of a version (overlaps, gaps, slivers, …) as GeoJSON",
                "parameters": [_path("version", {"type": "integer"}, "version id"),
                               _query("level", {"type": "integer", "minimum": 0, "maximum": 3}, "one level")],
                "responses": {"200": {"description": "problems", "content": geojson},
                              "400": _ERROR, "404": _ERROR}}},
            "/api/v1/versions/{version}/check-cell": {"post": {
                "summary": "The problems one edited cell takes part in",
                "parameters": [_path("version", {"type": "integer"}, "version id")],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["code", "geometry"],
                    "properties": {"code": {"type": "string"}, "geometry": {"type": "object"},
                                   "level": {"type": "integer"}, "parent_code": {"type": "string"}}}}}},
                "responses": {"200": {"description": "problems", "content": geojson},
                              "400": _ERROR, "404": _ERROR}}},
            "/api/v1/stats": {"get": STATS},
            "/api/v1/live": {"get": LIVE},
            **MAP_PATHS,
            **ACTIVATION_PATHS,
        },
        "components": {
            "schemas": {
                "FeatureCollection": {"type": "object", "required": ["type", "features"], "properties": {
                    "type": {"type": "string", "enum": ["FeatureCollection"]},
                    "features": {"type": "array", "items": {"type": "object"}},
                    "next": {"type": "integer", "nullable": True}}},
                "Error": {"type": "object", "required": ["error", "message"], "properties": {
                    "error": {"type": "string"}, "message": {"type": "string"},
                    "details": {"type": "array", "items": {"description": "a line or an object saying more"}}}},
            },
            "responses": {"Error": {"description": "what is wrong, in words",
                                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
        },
    }


# Who may call what (webmap/auth.py, gis/access.py): an API key, or a browser session; the role's permission
# and the scope decide (403: the role may not; 404: the thing is outside the scope).
SECURITY_SCHEMES = {
    "bearerKey": {"type": "http", "scheme": "bearer", "description": "an API key (gridmap key create)"},
    "headerKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "session": {"type": "apiKey", "in": "cookie", "name": "gridmap_session",
                "description": "a browser session from /login; writes also need the X-CSRFToken header"},
}
PUBLIC_PATHS = ("/api/v1/openapi.json",)


def with_security(doc):
    """Every operation but the public ones needs a key or a session, and may answer 401, 403 and 429."""
    doc["components"]["securitySchemes"] = SECURITY_SCHEMES
    doc["security"] = [{"bearerKey": []}, {"headerKey": []}, {"session": []}]
    for path, operations in doc["paths"].items():
        if path in PUBLIC_PATHS:
            continue
        for operation in operations.values():
            operation["responses"].setdefault("401", _ERROR)
            operation["responses"].setdefault("403", _ERROR)
            operation["responses"].setdefault("429", _ERROR)
    doc["paths"]["/api/v1/me"] = {"get": {
        "summary": "Who is asking: name, role, scope, department, permissions",
        "responses": {"200": {"description": "the caller", "content": {"application/json": {
            "schema": {"type": "object"}}}}, "401": _ERROR}}}
    doc["paths"]["/api/v1/audit"] = {"get": {
        "summary": "The newest lines of the audit log (city-wide admins)",
        "parameters": [_query("actor", {"type": "string"}, "one user's or key's lines"),
                       _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "default 100")],
        "responses": {"200": {"description": "lines, newest first", "content": {"application/json": {
            "schema": {"type": "array"}}}}, "400": _ERROR, "401": _ERROR, "403": _ERROR}}}
    return doc


@bp.get("/api/v1/openapi.json")
def openapi():
    return jsonify(with_security(document()))
