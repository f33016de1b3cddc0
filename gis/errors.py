"""Errors of the spatial core, each carrying the HTTP status the web layer answers with.

The CLI prints the message and exits with status 2 (bad input) or 1 (problems found);
``webmap`` turns any :class:`GridMapError` into a JSON error response.
"""
from http import HTTPStatus


class GridMapError(Exception):
    """Base of every error that GridMap reports to a user."""

    http_status = HTTPStatus.INTERNAL_SERVER_ERROR
    http_headers = {}

    def __init__(self, message, *, details=None):
        super().__init__(message)
        self.message = message
        self.details = details or []

    def to_dict(self):
        body = {"error": type(self).__name__, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class BadInput(GridMapError):
    """The caller sent something that cannot be used: a wrong parameter, file, CRS or geometry."""

    http_status = HTTPStatus.BAD_REQUEST


class Unauthorized(GridMapError):
    """Nobody is signed in and no valid API key came with the request."""

    http_status = HTTPStatus.UNAUTHORIZED


class Forbidden(GridMapError):
    """The caller may not do this: no key, a revoked key, or outside its rights."""

    http_status = HTTPStatus.FORBIDDEN


class NotFound(GridMapError):
    """The named version, cell or file does not exist."""

    http_status = HTTPStatus.NOT_FOUND


class Conflict(GridMapError):
    """The request clashes with the current state (e.g. activating a version that is not a draft)."""

    http_status = HTTPStatus.CONFLICT


class DatabaseUnavailable(GridMapError):
    """PostGIS cannot be reached or is not set up."""

    http_status = HTTPStatus.SERVICE_UNAVAILABLE
    http_headers = {"Retry-After": "1"}  # a restart takes seconds: clients send the same request again soon


class ClusterUnavailable(GridMapError):
    """The Dask cluster asked for cannot be reached, has no workers or lost them."""

    http_status = HTTPStatus.SERVICE_UNAVAILABLE
