"""Parameter validation for the report notebooks, before anything executes.

Every report parameter is declared once (:mod:`.specs`: name, type, default,
help) for both notebooks; :func:`validate` (:mod:`.validate`) turns user input
(CLI ``--param`` strings, a YAML file, or a Python dict; read by :mod:`.parse`)
into a checked, typed :class:`ReportParams`, so that a bad window, an unknown
metric or a missing store (:mod:`.store`) fails with a message that says what
to fix *before* papermill starts a kernel. Output locations are confined to the
reports folder (:mod:`.locations`); :mod:`.zone` holds the display time zone.
"""

from .locations import check_relative_name, check_slug, confined
from .parse import coerce, load_params_file, parse_cli_params
from .specs import (
    BUCKETS,
    KINDS,
    MAX_BINS,
    METHODS,
    SPECS,
    Bucket,
    Method,
    ParamSpec,
    ReportKind,
    check_kind,
    specs_for,
)
from .store import check_against_store, require_store_file
from .validate import ReportParams, last_full_week_start, validate
from .zone import DisplayZone, check_timezone

__all__ = [
    "BUCKETS", "KINDS", "MAX_BINS", "METHODS", "SPECS", "Bucket", "DisplayZone", "Method", "ParamSpec",
    "ReportKind", "ReportParams", "check_against_store", "check_kind", "check_relative_name", "check_slug",
    "check_timezone", "coerce", "confined", "last_full_week_start", "load_params_file", "parse_cli_params",
    "require_store_file", "specs_for", "validate",
]
