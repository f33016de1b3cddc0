"""Front-end libraries installed from the npm registry, served by the app itself (no CDN)."""
from flask import Blueprint, abort, current_app, send_from_directory

bp = Blueprint("vendor", __name__, url_prefix="/vendor")

# package name → the folder of it that pages may load
PACKAGES = {
    "leaflet": "leaflet/dist",
    "leaflet.vectorgrid": "leaflet.vectorgrid/dist",
    "leaflet.markercluster": "leaflet.markercluster/dist",
    "leaflet-geoman": "@geoman-io/leaflet-geoman-free/dist",
}


@bp.get("/<package>/<path:filename>")
def asset(package, filename):
    folder = PACKAGES.get(package)
    if folder is None:
        abort(404)
    root = current_app.config["NODE_MODULES"] / folder
    return send_from_directory(root, filename, max_age=86400)  # refuses paths that leave root
