"""The entry point :func:`validate`: raw values -> a checked, typed :class:`ReportParams`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import InputError, check_choice
from ...timeutil import Window, parse_time, parse_window
from .locations import check_slug, confined
from .parse import coerce
from .specs import BUCKETS, MAX_BINS, METHODS, NOTEBOOK_ONLY_EXCLUDED, check_kind, specs_for
from .store import check_against_store, require_store_file
from .zone import DisplayZone, check_timezone


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
    raw = dict(params or {})
    values = _typed_values(kind, raw)

    store_path = _resolve_store_path(values, check_store)
    zone = DisplayZone(check_timezone(values["timezone"]))
    values["timezone"] = zone.name
    if kind == "incident":
        baseline, comparison = _incident_windows(values)
    else:
        baseline, comparison = _weekly_windows(values, today, zone)
    values["baseline"] = str(baseline)
    values["comparison"] = str(comparison)

    _resolve_methods(values, explicit_method="method" in raw)
    _check_bins(values["bins"])
    _check_bucket(values["bucket"])
    _check_n_boot(values["n_boot"])
    values["metric"] = _normalised_metric(values["metric"])
    if check_store:
        check_against_store(store_path, values["metric"], values["filters"], values["covariates"],
                            _store_windows(kind, baseline, comparison))

    slug = check_slug(values["slug"] or kind)
    values["slug"] = slug
    out = Path(out_dir).expanduser()
    run_dir = _run_dir(out, values["output_dir"], f"{zone.local(comparison.start).date().isoformat()}-{slug}")
    values["output_dir"] = str(run_dir)
    if not values["title"]:
        values["title"] = _default_title(kind, values["metric"], baseline, comparison, zone)

    notebook = {k: v for k, v in values.items() if k not in NOTEBOOK_ONLY_EXCLUDED}
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


# -- the steps of validate, one per parameter or group -----------------------------
def _typed_values(kind: str, raw: dict[str, Any]) -> dict[str, Any]:
    """Every parameter of ``kind``: the raw value coerced to its type, else a copy of the default."""
    specs = specs_for(kind)
    unknown = sorted(set(raw) - set(specs))
    if unknown:
        raise InputError(
            f"unknown parameter(s) for the {kind} report: {', '.join(unknown)}; "
            f"known: {', '.join(sorted(specs))}"
        )
    return {name: coerce(spec, raw[name]) if name in raw else _copy(spec.default) for name, spec in specs.items()}


def _resolve_store_path(values: dict[str, Any], check_store: bool) -> Path:
    """The store path (``~`` expanded); ``values["store_path"]`` becomes absolute when the file exists."""
    store_path = Path(values["store_path"]).expanduser()
    if check_store:
        require_store_file(store_path)
    values["store_path"] = str(store_path.resolve()) if store_path.exists() else str(store_path)
    return store_path


def _incident_windows(values: dict[str, Any]) -> tuple[Window, Window]:
    """The incident report's baseline and comparison windows, both required."""
    if not values["baseline"] or not values["comparison"]:
        raise InputError(
            "the incident report needs both windows: --param baseline=FROM..TO "
            "--param comparison=FROM..TO (e.g. 2026-11-02..2026-11-09)"
        )
    baseline = parse_window(values["baseline"], what="baseline window")
    comparison = parse_window(values["comparison"], what="comparison window")
    return baseline, comparison


def _weekly_windows(values: dict[str, Any], today: dt.date | None, zone: DisplayZone) -> tuple[Window, Window]:
    """The previous and the reported week; ``values["week"]`` becomes the reported week's first day."""
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
    return baseline, comparison


def _resolve_methods(values: dict[str, Any], *, explicit_method: bool) -> None:
    """Check the compared methods and the headline method (by default one of the compared methods)."""
    bad_methods = [m for m in values["methods"] if m not in METHODS]
    if bad_methods or not values["methods"]:
        raise InputError(
            f"unknown or missing method(s) {', '.join(map(repr, bad_methods)) or '(none given)'}: "
            f"use some of {', '.join(METHODS)}"
        )
    if not explicit_method and values["method"] not in values["methods"]:
        values["method"] = values["methods"][0]  # the default headline method is one of the compared methods
    check_choice(values["method"], METHODS, "headline method")
    if values["method"] not in values["methods"]:
        raise InputError(
            f"headline method {values['method']!r} is not among the compared methods "
            f"({', '.join(values['methods'])}): add it to methods or pick one of them"
        )


def _check_bins(bins: int) -> None:
    if not 1 <= bins <= MAX_BINS:
        raise InputError(f"bins={bins} is out of range: use 1..{MAX_BINS} (quantile bins per numeric "
                         "covariate)")


def _check_bucket(bucket: str) -> None:
    if bucket and bucket not in BUCKETS:
        raise InputError(f"bucket {bucket!r} is not allowed: use hour or day (or leave it empty)")


def _check_n_boot(n_boot: int) -> None:
    if n_boot < 0 or n_boot > 10000:
        raise InputError(f"n_boot={n_boot} is out of range: use 0..10000 (0 = no intervals)")


def _normalised_metric(metric: str) -> str:
    """The metric spec in its canonical form; an empty spec is an error."""
    if not metric:
        raise InputError(
            "no metric given: pass --param metric=SPEC, e.g. rate:prediction=approved, mean:score or accuracy"
        )
    from ...attribution.metrics import parse_metric

    return parse_metric(metric).spec


def _store_windows(kind: str, baseline: Window, comparison: Window) -> tuple[tuple[str, Window], ...]:
    """The windows the store must have predictions in, named as the error messages call them."""
    if kind == "weekly":
        return (("previous week", baseline), ("reported week", comparison))
    return (("baseline window", baseline), ("comparison window", comparison))


def _run_dir(out: Path, output_dir: str, default_name: str) -> Path:
    """The run folder: ``output_dir`` if given (a single folder name inside ``out``), else ``out/default_name``."""
    if not output_dir:
        return confined(out, default_name, what="report folder")
    run_dir = confined(out, output_dir, what="output_dir")
    if run_dir.parent != out.resolve():
        raise InputError(f"output_dir {output_dir!r} must be a single folder name inside {str(out)!r}")
    return run_dir


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
