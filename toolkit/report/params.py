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
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Literal, get_args

import yaml

from .. import vocab
from ..errors import InputError, StoreError, check_choice
from ..timeutil import Window, parse_time, parse_window

ReportKind = Literal["incident", "weekly"]
KINDS: tuple[str, ...] = get_args(ReportKind)

# Old names kept as aliases so imports from this module keep working.
Method = vocab.Method
METHODS = vocab.METHODS  # the attribution's method names

Bucket = vocab.TimeBucket
BUCKETS = vocab.TIME_BUCKETS

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")

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
#: declare the same names; ``tests/test_report_params.py`` checks they agree).
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
_NOTEBOOK_ONLY_EXCLUDED = {"slug"}


def specs_for(kind: str) -> dict[str, ParamSpec]:
    """The parameter specs of one report kind, by name."""
    check_kind(kind)
    return {s.name: s for s in SPECS if kind in s.kinds}


def check_kind(kind: str) -> str:
    """Return ``kind`` if it is a report kind, else raise :class:`InputError`."""
    return check_choice(kind, KINDS, "report kind")


# -- the display time zone ------------------------------------------------------
def check_timezone(name: Any) -> str:
    """Return ``name`` if it is an IANA time zone (``UTC``, ``Europe/Berlin``), else raise :class:`InputError`."""
    text = "" if name is None else str(name).strip()
    try:
        if not text:
            raise ValueError("empty")
        zoneinfo.ZoneInfo(text)
        import polars as pl  # the charts convert with polars' own zone database: it must know the name too

        pl.Series([dt.datetime(2026, 1, 1)]).dt.replace_time_zone("UTC").dt.convert_time_zone(text)
    except Exception:  # ZoneInfoNotFoundError, ValueError (absolute or '..' keys), polars' ComputeError
        known = {z.lower(): z for z in zoneinfo.available_timezones()}
        import difflib

        close = [known[k] for k in difflib.get_close_matches(text.lower(), list(known), n=3, cutoff=0.6)]
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise InputError(
            f"unknown time zone {text!r} for parameter timezone{hint}: use an IANA name such as UTC, "
            "Europe/Berlin or America/New_York"
        ) from None
    return text


_TIME_IN_TEXT = re.compile(r"\b(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2})(?::\d{2}(?:\.\d+)?)?(?: UTC\b)?")
_SPAN_IN_TEXT = re.compile(r"\b(\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?)\.\."
                           r"(\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?)\b")


@dataclass(frozen=True)
class DisplayZone:
    """The time zone a report displays times in; the store and the analyses stay in naive UTC.

    With ``UTC`` every method returns its input unchanged (the report reads as
    before the parameter existed). Otherwise times are shown as local wall-clock
    time and labelled: tables and sentences with the zone's abbreviation
    (``CET``), axis titles and headers with the IANA name.
    """

    name: str = "UTC"

    def __post_init__(self) -> None:
        check_timezone(self.name)

    @property
    def is_utc(self) -> bool:
        """True for ``UTC``: nothing is converted."""
        return self.name == "UTC"

    @property
    def info(self) -> zoneinfo.ZoneInfo:
        """The :class:`zoneinfo.ZoneInfo`."""
        return zoneinfo.ZoneInfo(self.name)

    @property
    def label(self) -> str:
        """What axis titles and headers call the zone: ``UTC`` or the IANA name."""
        return self.name

    def local(self, ts: dt.datetime) -> dt.datetime:
        """Naive UTC -> naive local wall-clock time."""
        if self.is_utc:
            return ts
        return ts.replace(tzinfo=dt.UTC).astimezone(self.info).replace(tzinfo=None)

    def aware(self, ts: dt.datetime) -> dt.datetime:
        """Naive UTC -> aware local time."""
        return ts.replace(tzinfo=dt.UTC).astimezone(self.info)

    def to_utc(self, wall: dt.datetime) -> dt.datetime:
        """Naive local wall-clock time -> naive UTC (the earlier instant of a repeated hour)."""
        if self.is_utc:
            return wall
        return wall.replace(tzinfo=self.info).astimezone(dt.UTC).replace(tzinfo=None)

    def midnight(self, day: dt.date) -> dt.datetime:
        """Local midnight of ``day``, as naive UTC."""
        return self.to_utc(dt.datetime.combine(day, dt.time()))

    def abbrev(self, ts: dt.datetime) -> str:
        """The zone's abbreviation at the (naive UTC) instant ``ts``: ``CET``, ``CEST``, ``UTC``."""
        return "UTC" if self.is_utc else (self.aware(ts).tzname() or self.name)

    def offsets(self, start: dt.datetime, end: dt.datetime) -> str:
        """The zone's UTC offsets over ``[start, end)``, e.g. ``UTC+01:00`` or ``UTC+02:00/+01:00``."""
        if self.is_utc:
            return "UTC+00:00"
        seen: list[str] = []
        t = start
        while True:
            off = self.aware(min(t, end)).strftime("%z")
            text = f"{off[:3]}:{off[3:]}"
            if text not in seen:
                seen.append(text)
            if t >= end:
                break
            t += dt.timedelta(hours=6)
        return "UTC" + "/".join(seen)

    def fmt(self, ts: dt.datetime | None, pattern: str = "%Y-%m-%d %H:%M") -> str:
        """A (naive UTC) time as local text; empty for ``None``."""
        return "" if ts is None else self.local(ts).strftime(pattern)

    def stamp(self, ts: dt.datetime) -> str:
        """``2026-11-09 11:00 CET`` (``... UTC`` in UTC)."""
        return f"{self.fmt(ts)} {self.abbrev(ts)}"

    def window(self, w: Window) -> str:
        """A window as text: ISO UTC as before in UTC, else :meth:`span` with the zone's abbreviation."""
        if self.is_utc:
            return str(w)
        return self.span(w, label=True)

    def span(self, w: Window, *, label: bool = False) -> str:
        """A short window text in the zone: dates only when both ends are local midnights.

        ``2026-11-09..2026-11-16``, ``2026-11-09 01:00..2026-11-16 01:00``; with
        ``label`` the abbreviation follows (one for both ends, or one each when
        a DST change lies between them: ``... CEST..... CET``).
        """
        a, b = self.local(w.start), self.local(w.end)
        if a.time() == dt.time() and b.time() == dt.time():
            text_a, text_b = f"{a:%Y-%m-%d}", f"{b:%Y-%m-%d}"
        else:
            text_a, text_b = f"{a:%Y-%m-%d %H:%M}", f"{b:%Y-%m-%d %H:%M}"
        if not label:
            return f"{text_a}..{text_b}"
        abbr_a, abbr_b = self.abbrev(w.start), self.abbrev(w.end)
        if abbr_a == abbr_b:
            return f"{text_a}..{text_b} {abbr_a}"
        return f"{text_a} {abbr_a}..{text_b} {abbr_b}"

    def text(self, value: str) -> str:
        """Rewrite the UTC times of an analysis' sentence in the zone, each labelled with its abbreviation.

        Times (``2026-11-10 15:00``, ``... UTC``) and windows (``A..B``) are
        rewritten; in UTC the text is returned unchanged.
        """
        if self.is_utc or not value:
            return value

        def span(m: re.Match) -> str:
            try:
                w = Window(parse_time(m.group(1)), parse_time(m.group(2)))
            except InputError:
                return m.group(0)
            return self.span(w, label=True)

        def one(m: re.Match) -> str:
            try:
                ts = dt.datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}")
            except ValueError:
                return m.group(0)
            return self.stamp(ts)

        out = []
        pos = 0
        for m in _SPAN_IN_TEXT.finditer(value):  # windows first, so their ends are not rewritten one by one
            out.append(_TIME_IN_TEXT.sub(one, value[pos:m.start()]))
            out.append(span(m))
            pos = m.end()
        out.append(_TIME_IN_TEXT.sub(one, value[pos:]))
        return "".join(out)

    def frame(self, frame: Any, *columns: str) -> Any:
        """A polars frame with the naive UTC ``columns`` as naive local wall-clock times (unchanged in UTC)."""
        if self.is_utc:
            return frame
        import polars as pl

        return frame.with_columns(
            pl.col(c).dt.replace_time_zone("UTC").dt.convert_time_zone(self.name).dt.replace_time_zone(None)
            for c in columns if c in frame.columns
        )

    def axis(self, what: str = "time") -> str:
        """An axis title: ``time (UTC)``, ``time (Europe/Berlin)``."""
        return f"{what} ({self.label})"


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
    timezone
        The display time zone (IANA name); the windows are naive UTC.
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
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        check_kind(self.kind)
        if self.run_dir.resolve().parent != self.out_dir.resolve():
            raise InputError(f"report folder {self.run_dir} is not directly inside {self.out_dir}")

    @property
    def zone(self) -> DisplayZone:
        """The display time zone."""
        return DisplayZone(self.timezone)

    @property
    def date(self) -> dt.date:
        """The date that names the run folder (first day of the comparison window, in the display zone)."""
        return self.zone.local(self.comparison.start).date()


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

    zone = DisplayZone(check_timezone(values["timezone"]))
    values["timezone"] = zone.name
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
            first = start.date()
        else:
            first = last_full_week_start(today, zone)
        # weeks start at local midnight of the display zone (a week over a DST change is 167 or 169 hours)
        comparison = Window(zone.midnight(first), zone.midnight(first + dt.timedelta(days=7)))
        baseline = Window(zone.midnight(first - dt.timedelta(days=7)), comparison.start)
        values["week"] = first.isoformat()
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
    if "method" not in raw and values["method"] not in values["methods"]:
        values["method"] = values["methods"][0]  # the default headline method is one of the compared methods
    check_choice(values["method"], METHODS, "headline method")
    if values["method"] not in values["methods"]:
        raise InputError(
            f"headline method {values['method']!r} is not among the compared methods "
            f"({', '.join(values['methods'])}): add it to methods or pick one of them"
        )
    if not 1 <= values["bins"] <= MAX_BINS:
        raise InputError(f"bins={values['bins']} is out of range: use 1..{MAX_BINS} (quantile bins per numeric "
                         "covariate)")
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
        run_dir = confined(out, f"{zone.local(comparison.start).date().isoformat()}-{slug}", what="report folder")
    values["output_dir"] = str(run_dir)
    if not values["title"]:
        values["title"] = _default_title(kind, values["metric"], baseline, comparison, zone)

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
        timezone=zone.name,
    )


def _copy(value: Any) -> Any:
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value


def _default_title(kind: str, metric: str, baseline: Window, comparison: Window, zone: DisplayZone) -> str:
    def day(ts: dt.datetime) -> str:
        return zone.local(ts).date().isoformat()

    if kind == "weekly":
        return f"Weekly version-drift report, week of {day(comparison.start)} ({metric})"
    return (
        f"Incident report: {metric}, {day(comparison.start)}..{day(comparison.end)} "
        f"vs {day(baseline.start)}..{day(baseline.end)}"
    )


def last_full_week_start(today: dt.date | None, zone: DisplayZone) -> dt.date:
    """The Monday of the last full ISO week before ``today`` (default: today in the display zone)."""
    if today is None:
        today = zone.local(dt.datetime.now(dt.UTC).replace(tzinfo=None)).date()
    return today - dt.timedelta(days=today.weekday() + 7)
