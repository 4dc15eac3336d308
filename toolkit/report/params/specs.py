"""The declarations of the report parameters: one :class:`ParamSpec` per name, for both notebooks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

from ... import vocab
from ...errors import check_choice

ReportKind = Literal["incident", "weekly"]
KINDS: tuple[str, ...] = get_args(ReportKind)

# Old names kept as aliases so imports from this module keep working.
Method = vocab.Method
METHODS = vocab.METHODS  # the attribution's method names

Bucket = vocab.TimeBucket
BUCKETS = vocab.TIME_BUCKETS

#: Most quantile bins per numeric covariate (the attribution's limit).
MAX_BINS = 20


@dataclass(frozen=True)
class ParamSpec:
    """One notebook parameter: its type, default and one line of help."""

    name: str
    type: Literal["str", "list", "dict", "int", "bool"]
    default: Any
    help: str
    kinds: tuple[str, ...] = KINDS


#: The parameters of both notebooks (the notebooks' ``parameters`` cells
#: declare the same names; ``tests/report/test_report_params.py`` checks they agree).
SPECS: tuple[ParamSpec, ...] = (
    ParamSpec("store_path", "str", "vdrift.duckdb", "DuckDB store written by `vdrift ingest`"),
    ParamSpec("metric", "str", "mean:score", "metric spec: rate:<column>=<value>, mean:<column> or accuracy"),
    ParamSpec("baseline", "str", "", "baseline window FROM..TO (half-open, UTC)", ("incident",)),
    ParamSpec("comparison", "str", "", "comparison window FROM..TO (half-open, UTC)", ("incident",)),
    ParamSpec("week", "str", "", "first day of the reported week (YYYY-MM-DD, midnight in timezone); "
              "empty = last full ISO week", ("weekly",)),
    ParamSpec("filters", "dict", {}, "column -> value restricting the requests, e.g. {region: eu}"),
    ParamSpec("covariates", "list", [], "covariate columns for attribution; empty = all declared"),
    ParamSpec("methods", "list", list(METHODS), "attribution methods to compare"),
    ParamSpec("method", "str", "regression",
              "headline method (one of methods; default regression, else the first of methods): the split in the "
              "headline and waterfall, and the method that prices the causes"),
    ParamSpec("bins", "int", 5, f"quantile bins per numeric covariate of the attribution (1-{MAX_BINS})"),
    ParamSpec("timezone", "str", "UTC",
              "IANA time zone the report displays times in, e.g. Europe/Berlin (the store stays UTC); "
              "the weekly report's weeks start at local midnight"),
    ParamSpec("bucket", "str", "", "time bucket of census and trends: hour or day; empty = automatic"),
    ParamSpec("n_boot", "int", 200, "bootstrap replicates for the intervals"),
    ParamSpec("seed", "int", 0, "random seed of the bootstrap"),
    ParamSpec("title", "str", "", "report title; empty = a title from the kind and period"),
    ParamSpec("slug", "str", "", "folder name suffix reports/<date>-<slug>; empty = the kind"),
    ParamSpec("output_dir", "str", "", "folder of this run (set by `vdrift report`); figures/ go under it"),
)

#: Parameters the notebook receives (slug is only used to name the folder).
NOTEBOOK_ONLY_EXCLUDED = {"slug"}


def specs_for(kind: str) -> dict[str, ParamSpec]:
    """The parameter specs of one report kind, by name."""
    check_kind(kind)
    return {s.name: s for s in SPECS if kind in s.kinds}


def check_kind(kind: str) -> str:
    """Return ``kind`` if it is a report kind, else raise :class:`InputError`."""
    return check_choice(kind, KINDS, "report kind")
