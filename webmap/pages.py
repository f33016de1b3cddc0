"""The pages, and ``/health``."""
from flask import Blueprint, jsonify, render_template

from gis import grid_store
from gis.errors import DatabaseUnavailable
from webmap import get_db

bp = Blueprint("pages", __name__)


@bp.get("/")
def index():
    return render_template("index.html")


@bp.get("/health")
def health():
    """Green when the database answers, PostGIS is there and a grid version is active."""
    try:
        with get_db().cursor() as cur:
            info = grid_store.health(cur)
    except DatabaseUnavailable as exc:
        return jsonify({"status": "unavailable", "message": exc.message}), 503
    status = "ok" if info["active_version"] is not None else "no active grid version"
    return jsonify({"status": status, **info}), 200 if status == "ok" else 503
