"""Parameter validation for the report notebooks, before anything executes.

Every report parameter is declared once here (name, type, default, help)
for both notebooks; :func:`validate` turns user input (CLI ``--param``
strings, a YAML file, or a Python dict) into a checked, typed
:class:`ReportParams`, so that a bad window, an unknown metric or a missing
store fails with a message that says what to fix *before* papermill starts a
kernel. Output locations are confined to the reports folder.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Literal, get_args

import yaml

from ..errors import InputError, StoreError
from ..timeutil import Window, last_full_week, parse_time, parse_window

ReportKind = Literal["incident", "weekly"]
KINDS: tuple[str, ...] = get_args(ReportKind)

Method = Literal["regression", "matched", "standardization"]
METHODS: tuple[str, ...] = get_args(Method)  # the attribution's method names

Bucket = Literal["hour", "day"]
BUCKETS: tuple[str, ...] = get_args(Bucket)

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class ParamSpec:
    """One notebook parameter: its type, default and one line of help."""

    name: str
    type: Literal["str", "list", "dict", "int", "bool"]
    default: Any
    help: str
    kinds: tuple[str, ...] = KINDS


#: The parameters of both notebooks (the notebooks' ``parameters`` cells
#: declare the same names; ``tests/test_report_params.py`` checks they agree).
SPECS: tuple[ParamSpec, ...] = (
    ParamSpec("store_path", "str", "vdrift.duckdb", "DuckDB store written by `vdrift ingest`"),
    ParamSpec("metric", "str", "mean:score", "metric spec: rate:<column>=<value>, mean:<column> or accuracy"),
    ParamSpec("baseline", "str", "", "baseline window FROM..TO (half-open, UTC)", ("incident",)),
    ParamSpec("comparison", "str", "", "comparison window FROM..TO (half-open, UTC)", ("incident",)),
    ParamSpec("week", "str", "", "first day of the reported week (YYYY-MM-DD); empty = last full ISO week",
              ("weekly",)),
    ParamSpec("filters", "dict", {}, "column -> value restricting the requests, e.g. {region: eu}"),
    ParamSpec("covariates", "list", [], "covariate columns for attribution; empty = all declared"),
    ParamSpec("methods", "list", list(METHODS), "attribution methods to compare"),
    ParamSpec("bucket", "str", "", "time bucket of census and trends: hour or day; empty = automatic"),
    ParamSpec("n_boot", "int", 200, "bootstrap replicates for the intervals"),
    ParamSpec("seed", "int", 0, "random seed of the bootstrap"),
    ParamSpec("title", "str", "", "report title; empty = a title from the kind and period"),
    ParamSpec("slug", "str", "", "folder name suffix reports/<date>-<slug>; empty = the kind"),
    ParamSpec("output_dir", "str", "", "folder of this run (set by `vdrift report`); figures/ go under it"),
)

#: Parameters the notebook receives (slug is only used to name the folder).
_NOTEBOOK_ONLY_EXCLUDED = {"slug"}


def specs_for(kind: str) -> dict[str, ParamSpec]:
    """The parameter specs of one report kind, by name."""
    check_kind(kind)
    return {s.name: s for s in SPECS if kind in s.kinds}


def check_kind(kind: str) -> str:
    """Return ``kind`` if it is a report kind, else raise :class:`InputError`."""
    if kind not in KINDS:
        raise InputError(f"unknown report kind {kind!r}: use one of {', '.join(KINDS)}")
    return kind


@dataclass(frozen=True)
class ReportParams:
    """Validated parameters of one report run.

    Attributes
    ----------
    kind
        ``incident`` or ``weekly``.
    baseline, comparison
        The two windows compared (for a weekly report: the previous week and
        the reported week).
    run_dir
        The folder of this run, inside ``out_dir``.
    notebook
        The values injected into the notebook's ``parameters`` cell.
    """

    kind: str
    store_path: Path
    metric: str
    baseline: Window
    comparison: Window
    title: str
    slug: str
    out_dir: Path
    run_dir: Path
    notebook: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_kind(self.kind)
        if self.run_dir.resolve().parent != self.out_dir.resolve():
            raise InputError(f"report folder {self.run_dir} is not directly inside {self.out_dir}")

    @property
    def date(self) -> dt.date:
        """The date that names the run folder (first day of the comparison window)."""
        return self.comparison.start.date()


# -- parsing of raw values ----------------------------------------------------
def parse_cli_params(pairs: list[str] | None) -> dict[str, str]:
    """``["NAME=VALUE", ...]`` -> dict of raw strings (typed later by :func:`coerce`)."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise InputError(f"--param {pair!r}: write it as NAME=VALUE, e.g. --param metric=approval_rate")
        name, value = pair.split("=", 1)
        name = name.strip()
        if not name:
            raise InputError(f"--param {pair!r}: the name before '=' is empty")
        out[name] = value
    return out


def load_params_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML (or JSON) mapping of parameters."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"parameters file {str(p)!r} does not exist")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InputError(f"parameters file {str(p)!r} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"parameters file {str(p)!r} must hold a mapping NAME: VALUE, not {type(data).__name__}")
    return {str(k): v for k, v in data.items()}


def _as_text(value: Any) -> str:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return str(value)


def coerce(spec: ParamSpec, value: Any) -> Any:
    """Turn a raw value (CLI string or YAML value) into the spec's type."""
    name = spec.name
    if spec.type == "str":
        if value is None:
            return ""
        if isinstance(value, (list, dict)):
            raise InputError(f"parameter {name} must be a single value, not {type(value).__name__}")
        return _as_text(value)
    if spec.type == "int":
        if isinstance(value, bool):
            raise InputError(f"parameter {name} must be an integer, got {value!r}")
        try:
            return int(str(value).strip())
        except ValueError:
            raise InputError(f"parameter {name} must be an integer, got {value!r}") from None
    if spec.type == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"true", "yes", "1"}:
            return True
        if text in {"false", "no", "0"}:
            return False
        raise InputError(f"parameter {name} must be true or false, got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        if spec.type == "list":
            if not text:
                return []
            if text.startswith("["):
                value = _yaml_value(name, text)
            else:
                return [part.strip() for part in text.split(",") if part.strip()]
        else:
            value = _yaml_value(name, text) if text else {}
    if spec.type == "list":
        if value is None:
            return []
        if not isinstance(value, (list, tuple)):
            raise InputError(f"parameter {name} must be a list, e.g. {name}=a,b or {name}='[a, b]'")
        return [_as_text(v) for v in value]
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"parameter {name} must be a mapping, e.g. {name}='{{region: eu}}'")
    out: dict[str, Any] = {}
    for k, v in value.items():
        if isinstance(v, (list, tuple, dict)) or v is None:
            raise InputError(f"parameter {name}: the value of {k!r} must be one value, e.g. {name}='{{region: eu}}'")
        out[str(k)] = _as_text(v)
    return out


def _yaml_value(name: str, text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"parameter {name}: cannot read {text!r} ({exc.__class__.__name__})") from None


# -- output locations ---------------------------------------------------------
def check_relative_name(value: str, *, what: str) -> str:
    """Reject absolute paths, ``..`` and separators-with-escape in a name."""
    text = str(value)
    if not text or "\x00" in text:
        raise InputError(f"{what} is empty")
    if (
        PurePosixPath(text).is_absolute()
        or PureWindowsPath(text).is_absolute()
        or PureWindowsPath(text).drive
        or text.startswith(("~", "/", "\\"))
    ):
        raise InputError(f"{what} {text!r} is an absolute path: give a name inside the reports folder")
    parts = re.split(r"[\\/]+", text)
    if any(part == ".." for part in parts):
        raise InputError(f"{what} {text!r} contains '..': reports stay inside the reports folder")
    return text


def check_slug(slug: str) -> str:
    """A folder-name slug: lower-case letters, digits, '-' and '_'."""
    check_relative_name(slug, what="slug")
    if not _SLUG.match(slug):
        raise InputError(
            f"slug {slug!r} is not allowed: use 1-63 lower-case letters, digits, '-' or '_' "
            "(it names the folder reports/<date>-<slug>)"
        )
    return slug


def confined(out_dir: Path, name: str, *, what: str) -> Path:
    """``out_dir / name`` after checking that it stays inside ``out_dir``."""
    check_relative_name(name, what=what)
    base = out_dir.resolve()
    target = (base / name).resolve()
    if target == base or base not in target.parents:
        raise InputError(f"{what} {name!r} would leave the reports folder {str(out_dir)!r}")
    return target


# -- metrics and store ---------------------------------------------------------
def check_against_store(
    store_path: Path,
    metric: str,
    filters: dict[str, Any],
    covariates: list[str],
    windows: tuple[tuple[str, Window], ...] = (),
) -> None:
    """Check the store against the parameters before anything runs.

    It must have the columns the metric, filters and covariates read, and
    predictions in every window.
    """
    from ..attribution.metrics import VIEW, parse_metric
    from ..sqlutil import one_row, table_columns
    from ..store import Store

    m = parse_metric(metric)
    with Store(store_path, read_only=True) as store:
        m.check(store.con)
        cols = table_columns(store.con, VIEW)
        n, first, last = one_row(store.con, "SELECT count(*), min(ts), max(ts) FROM predictions")
        in_window = {
            what: one_row(store.con, "SELECT count(*) FROM predictions WHERE ts >= ? AND ts < ?", [w.start, w.end])[0]
            for what, w in windows
        }
    if n == 0:
        raise InputError(
            f"store {str(store_path)!r} has no predictions: ingest some first "
            f"(`vdrift ingest predictions FILE --db {store_path}`)"
        )
    for what, count in in_window.items():
        if count == 0:
            w = dict(windows)[what]
            raise InputError(
                f"the {what} {w} has no predictions in store {str(store_path)!r}, which covers "
                f"{first:%Y-%m-%d %H:%M}..{last:%Y-%m-%d %H:%M} UTC: pick windows inside that range"
                + (" (--week YYYY-MM-DD picks the reported week)" if "week" in what else "")
            )
    for what, names in (("filter column", list(filters)), ("covariate", covariates)):
        for name in names:
            if name not in cols:
                raise InputError(
                    f"unknown {what} {name!r}: the predictions have {', '.join(sorted(cols))}"
                )


def _check_store(path: Path) -> None:
    if not path.is_file():
        raise StoreError(
            f"store {str(path)!r} does not exist: build it with "
            f"`vdrift ingest predictions FILE --db {path}` or pass the right --db / store_path"
        )


# -- the entry point -----------------------------------------------------------
def validate(
    kind: str,
    params: dict[str, Any] | None,
    *,
    out_dir: str | Path = "reports",
    today: dt.date | None = None,
    check_store: bool = True,
) -> ReportParams:
    """Check and type the parameters of one report run.

    Parameters
    ----------
    kind
        ``"incident"`` or ``"weekly"``.
    params
        Raw values by name (strings from the CLI, YAML values, or Python
        values). Unknown names are an error.
    out_dir
        The reports folder; the run folder is ``out_dir/<date>-<slug>``.
    today
        Reference date for the default week (the last full ISO week).
    check_store
        Open the store and check the metric against it.

    Raises
    ------
    InputError
        For an unknown parameter or metric, an empty or inverted window, or an
        output location outside the reports folder.
    StoreError
        If the store file is missing or cannot be opened.
    """
    check_kind(kind)
    specs = specs_for(kind)
    raw = dict(params or {})
    unknown = sorted(set(raw) - set(specs))
    if unknown:
        raise InputError(
            f"unknown parameter(s) for the {kind} report: {', '.join(unknown)}; "
            f"known: {', '.join(sorted(specs))}"
        )
    values = {name: coerce(spec, raw[name]) if name in raw else _copy(spec.default) for name, spec in specs.items()}

    store_path = Path(values["store_path"]).expanduser()
    if check_store:
        _check_store(store_path)
    values["store_path"] = str(store_path.resolve()) if store_path.exists() else str(store_path)

    if kind == "incident":
        if not values["baseline"] or not values["comparison"]:
            raise InputError(
                "the incident report needs both windows: --param baseline=FROM..TO "
                "--param comparison=FROM..TO (e.g. 2026-11-02..2026-11-09)"
            )
        baseline = parse_window(values["baseline"], what="baseline window")
        comparison = parse_window(values["comparison"], what="comparison window")
    else:
        if values["week"]:
            start = parse_time(values["week"], what="week")
            if start != dt.datetime.combine(start.date(), dt.time()):
                raise InputError(f"week {values['week']!r} must be a date (YYYY-MM-DD), not a time")
            comparison = Window(start, start + dt.timedelta(days=7))
        else:
            comparison = last_full_week(today)
        baseline = Window(comparison.start - dt.timedelta(days=7), comparison.start)
        values["week"] = comparison.start.date().isoformat()
        values["baseline"] = str(baseline)
        values["comparison"] = str(comparison)
    if kind == "incident":
        values["baseline"] = str(baseline)
        values["comparison"] = str(comparison)

    bad_methods = [m for m in values["methods"] if m not in METHODS]
    if bad_methods or not values["methods"]:
        raise InputError(
            f"unknown or missing method(s) {', '.join(map(repr, bad_methods)) or '(none given)'}: "
            f"use some of {', '.join(METHODS)}"
        )
    if values["bucket"] and values["bucket"] not in BUCKETS:
        raise InputError(f"bucket {values['bucket']!r} is not allowed: use hour or day (or leave it empty)")
    if values["n_boot"] < 0 or values["n_boot"] > 10000:
        raise InputError(f"n_boot={values['n_boot']} is out of range: use 0..10000 (0 = no intervals)")

    if not values["metric"]:
        raise InputError(
            "no metric given: pass --param metric=SPEC, e.g. rate:prediction=approved, mean:score or accuracy"
        )
    from ..attribution.metrics import parse_metric

    values["metric"] = parse_metric(values["metric"]).spec
    if check_store:
        windows = (("baseline window", baseline), ("comparison window", comparison))
        if kind == "weekly":
            windows = (("previous week", baseline), ("reported week", comparison))
        check_against_store(store_path, values["metric"], values["filters"], values["covariates"], windows)

    slug = check_slug(values["slug"] or kind)
    values["slug"] = slug
    out = Path(out_dir).expanduser()
    if values["output_dir"]:
        run_dir = confined(out, values["output_dir"], what="output_dir")
        if run_dir.parent != out.resolve():
            raise InputError(
                f"output_dir {values['output_dir']!r} must be a single folder name inside {str(out)!r}"
            )
    else:
        run_dir = confined(out, f"{comparison.start.date().isoformat()}-{slug}", what="report folder")
    values["output_dir"] = str(run_dir)
    if not values["title"]:
        values["title"] = _default_title(kind, values["metric"], baseline, comparison)

    notebook = {k: v for k, v in values.items() if k not in _NOTEBOOK_ONLY_EXCLUDED}
    return ReportParams(
        kind=kind,
        store_path=Path(values["store_path"]),
        metric=values["metric"],
        baseline=baseline,
        comparison=comparison,
        title=values["title"],
        slug=slug,
        out_dir=out.resolve(),
        run_dir=run_dir,
        notebook=notebook,
    )


def _copy(value: Any) -> Any:
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value


def _default_title(kind: str, metric: str, baseline: Window, comparison: Window) -> str:
    if kind == "weekly":
        return f"Weekly version-drift report, week of {comparison.start.date().isoformat()} ({metric})"
    return (
        f"Incident report: {metric}, {comparison.start.date().isoformat()}..{comparison.end.date().isoformat()} "
        f"vs {baseline.start.date().isoformat()}..{baseline.end.date().isoformat()}"
    )
