"""GridMap's web app: a thin Flask layer over ``gis``.

Each view parses its input, calls one ``gis`` function and turns the result, or a ``gis`` error, into
a response.
"""
from flask import Flask, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from gis import incidents
from gis.cases import Rules as CaseRules
from gis.db import Database
from gis.errors import GridMapError
from gis.settings import Settings
from gis.worker_router import WorkerRouter


def create_app(test_config=None):
    """Build the app. ``test_config`` overrides settings, e.g. ``{"DATABASE_URL": ...}``."""
    app = Flask(__name__)
    settings = Settings.from_env()
    app.config.update(
        DATABASE_URL=settings.database_url,
        NODE_MODULES=settings.node_modules,
        JSON_SORT_KEYS=False,
        MAX_CONTENT_LENGTH=64 * 1024 * 1024,
        BASEMAP=settings.basemap,
    )
    if test_config:
        app.config.update(test_config)
    # as many connections as a gunicorn worker has threads (make run: 16), so that a busy worker never gets
    # "all database connections are busy"; live streams hold one only while they read
    app.extensions["gridmap_db"] = Database(app.config["DATABASE_URL"], maxconn=app.config.get("DB_POOL_SIZE", 16))
    app.extensions["gridmap_routing"] = app.config.get("ROUTING") or incidents.Routing.from_settings(settings)
    # reports are routed in this process once its router is built (on the first report); in SQL till then
    app.extensions["gridmap_router"] = (WorkerRouter(app.extensions["gridmap_db"])
                                        if app.config.get("ROUTE_IN_WORKER", settings.worker_router) else None)

    app.extensions["gridmap_case_rules"] = app.config.get("CASE_RULES") or CaseRules.from_settings(settings)

    from webmap import (activation, api, auth, case_pages, cases, i18n, live, map_page, open311, openapi, pages,
                        planner, reports, security, stats, tiles, vendor, versions)

    i18n.init_app(app)
    # a blueprint's body limit is set before anything reads a body: a session's CSRF check reads the form, and
    # a stream once opened keeps the limit it was opened with (the app's 64 MB)
    body_limits = {"reports": reports.MAX_BODY, "open311": reports.MAX_BODY, "cases": cases.MAX_BODY,
                   "activation": activation.MAX_BODY}

    @app.before_request
    def limit_body():
        if request.blueprint in body_limits:
            request.max_content_length = body_limits[request.blueprint]

    security.init_app(app)
    auth.init_app(app, settings)
    app.register_blueprint(pages.bp)
    app.register_blueprint(map_page.bp)
    app.register_blueprint(planner.bp)
    app.register_blueprint(case_pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(activation.bp)
    app.register_blueprint(reports.bp)
    app.register_blueprint(cases.bp)
    app.register_blueprint(stats.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(open311.bp)
    app.register_blueprint(vendor.bp)
    app.register_blueprint(tiles.bp)
    app.register_blueprint(live.bp)
    app.register_blueprint(versions.bp)

    @app.errorhandler(GridMapError)
    def gridmap_error(exc):
        return jsonify(exc.to_dict()), exc.http_status, exc.http_headers

    @app.errorhandler(HTTPException)
    def http_error(exc):
        if request.path.startswith("/api/"):
            return jsonify({"error": exc.name, "message": exc.description}), exc.code
        return exc

    return app


def get_db():
    return current_app.extensions["gridmap_db"]


def principal():
    """Who is asking (set by webmap.auth before every view that is not public)."""
    return g.principal


def scope():
    """The scope every query of this request obeys."""
    return g.principal.scope


def submit_report(report):
    """Store and route a checked report with this app's settings: ``(incident, created)``; Forbidden when it
    lies outside the reporter's scope."""
    ext = current_app.extensions
    if not scope().is_city:
        with get_db().cursor() as cur:
            scope().require_point(cur, report.lon, report.lat, ext["gridmap_routing"].snap_m)
    return incidents.submit(ext["gridmap_db"], report, ext["gridmap_routing"], ext["gridmap_router"])
