"""Both report notebooks run on the committed samples through papermill.

One store and one rendering of each report are shared by the module's tests
(module-scoped fixtures) to keep the suite fast. The reference numbers are the
samples' replay ground truth (data/samples/demo/ground_truth.json).
"""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from toolkit.errors import NotApplicable, VdriftError
from toolkit.report import render
from toolkit.report.export import offline_violations
from toolkit.store import Store

from tests.browser import BrowserUnavailable, check_page, find_chromium

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "data" / "samples" / "demo"
METRIC = "rate:prediction=approved"
BASELINE = "2026-11-02..2026-11-09"
COMPARISON = "2026-11-09..2026-11-16"
HOSTILE = "<script>alert(1)</script>"
# Small bootstrap: the tests check structure and point estimates, not interval widths.
N_BOOT = 10


def _build_store(path: Path) -> Path:
    with Store(path) as store:
        store.ingest("predictions", [SAMPLES / "predictions.csv.gz"])
        store.ingest("deployments", [SAMPLES / "deployments.jsonl"])
        store.ingest("artifacts", [SAMPLES / "artifacts.csv"])
    return path


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("report")


@pytest.fixture(scope="module")
def store(workdir: Path) -> Path:
    return _build_store(workdir / "demo.duckdb")


@pytest.fixture(scope="module")
def incident(store: Path, workdir: Path):
    return render("incident", {"store_path": str(store), "metric": METRIC, "baseline": BASELINE,
                               "comparison": COMPARISON, "n_boot": N_BOOT},
                  out_dir=workdir / "reports", timeout=300)


@pytest.fixture(scope="module")
def weekly(store: Path, workdir: Path):
    return render("weekly", {"store_path": str(store), "metric": METRIC, "week": "2026-11-09", "n_boot": N_BOOT},
                  out_dir=workdir / "reports", timeout=300)


@pytest.fixture(scope="module")
def truth() -> dict:
    return json.loads((SAMPLES / "ground_truth.json").read_text())


class _Refs(HTMLParser):
    """Collects every script/link/style/img reference and the text of the page."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str]] = []
        self.styles: list[str] = []
        self.inline_scripts: list[str] = []
        self._tag = ""

    def handle_starttag(self, tag, attrs):
        self._tag = tag
        for k, v in attrs:
            if k in ("src", "href") and v:
                self.refs.append((tag, v))

    def handle_data(self, data):
        if self._tag == "style":
            self.styles.append(data)
        if self._tag == "script" and data.strip():
            self.inline_scripts.append(data)

    def handle_endtag(self, tag):
        self._tag = ""


# -- the files ---------------------------------------------------------------------------
def test_incident_writes_html_notebook_figures_and_index(incident) -> None:
    run = incident.run_dir
    assert run.name == "2026-11-09-incident"
    assert incident.html == run / "report.html" and incident.html.is_file()
    assert incident.notebook == run / "report.ipynb" and incident.notebook.is_file()
    names = sorted(p.name for p in incident.figures)
    for stem in ("waterfall-split", "version-census", "metric-by-version", "feature-drift",
                 "data-drift-by-covariate", "version-mix"):
        assert f"{stem}.png" in names and f"{stem}.svg" in names, names
    index = (run.parent / "index.html").read_text()
    assert "2026-11-09-incident/report.html" in index
    files = incident.to_frame()
    assert files.filter(files["role"] == "figure").height == len(incident.figures) >= 12
    assert json.loads(incident.to_json())["headline"] == incident.headline
    assert incident.headline in incident.summary()


def test_incident_opens_with_the_ranked_causes(incident) -> None:
    """The causes come first: their table and waterfall precede the split by method; they add up to the shift."""
    page = incident.html.read_text()
    assert page.index("What caused it") < page.index("The split: data drift, version drift, residual")
    assert page.index("What caused it") < page.index("Audit findings")
    names = {p.name for p in incident.figures}
    assert "waterfall-causes.svg" in names and "waterfall-causes.png" in names
    causes = json.loads((incident.run_dir / "summary.json").read_text())["causes"]
    priced = [c for c in causes["causes"] if c["impact"] is not None]
    assert sum(c["impact"] for c in priced) == pytest.approx(causes["total"], abs=1e-9)
    kinds = {c["kind"] for c in priced}
    # the demo plants a stuck canary, an abandoned experiment, an artifact mismatch and an incomplete rollback
    assert {"stuck_rollout", "abandoned_experiment", "artifact_mismatch", "incomplete_rollback"} <= kinds
    for c in priced[:5]:
        assert c["sentence"] and c["sentence"][:30] in page.replace("&#x27;", "'").replace("&quot;", '"')
    # when: the us approval rate drops at the rollback, lined up with it and with the rollback's findings
    us = [c for c in causes["change_points"] if c["cell"] == "us" and c["version"] is None]
    assert us and "rollback" in us[0]["event"] and abs(us[0]["event_lag_hours"]) <= 6
    assert "rollback" in us[0]["finding"] and abs(us[0]["finding_lag_hours"]) <= 6
    comparison = next(w for w in causes["window_costs"] if w["window"] == "comparison")
    assert comparison["off_intent_rows"] > 0 and comparison["ci_low"] < comparison["cost"] < comparison["ci_high"]


def test_weekly_writes_its_sections(weekly) -> None:
    names = sorted(p.name for p in weekly.figures)
    for stem in ("version-census", "consistency-score", "metric-by-version", "week-over-week-split"):
        assert f"{stem}.svg" in names and f"{stem}.png" in names, names
    page = weekly.html.read_text()
    for heading in ("New findings", "Ongoing findings", "Consistency score", "Week-over-week split",
                    "What serving off-intent cost", "Causes of the week-over-week change"):
        assert heading in page
    assert "off-intent-cost-trend.svg" in names
    summary = json.loads((weekly.run_dir / "summary.json").read_text())
    # The samples' planted problems all start in the comparison week or straddle its start.
    assert summary["new_findings"] >= 5
    assert 0 < summary["consistency_week"] < summary["consistency_previous"] <= 1


def test_index_lists_both_runs(incident, weekly) -> None:
    page = (incident.run_dir.parent / "index.html").read_text()
    assert page.count('<tr><td class="period">') == 2
    assert incident.headline[:40].replace("(", "") in page.replace("(", "")
    assert "2026-11-09-weekly/report.html" in page


# -- the numbers -------------------------------------------------------------------------
def test_headline_matches_the_replay_truth(incident, truth) -> None:
    """Observed levels and row counts equal the ground truth exactly; the split is close to the replay truth."""
    ref = truth["attribution"][METRIC]
    attr = json.loads((incident.run_dir / "summary.json").read_text())["attribution"]
    assert attr["baseline"]["value"] == pytest.approx(ref["observed"]["baseline"], abs=1e-12)
    assert attr["comparison"]["value"] == pytest.approx(ref["observed"]["comparison"], abs=1e-12)
    assert (attr["baseline"]["rows"], attr["comparison"]["rows"]) == (ref["n"]["baseline"], ref["n"]["comparison"])
    comps = attr["methods"]["regression"]
    parts = sum(comps[c]["estimate"] for c in ("data_drift", "version_drift", "residual"))
    assert parts == pytest.approx(ref["total"], abs=1e-12)
    # Replay truth: data -7.66 pt, version -3.15 pt, residual 0 (the estimators see each request once).
    assert comps["data_drift"]["estimate"] == pytest.approx(ref["data_drift"], abs=0.015)
    assert comps["version_drift"]["estimate"] == pytest.approx(ref["version_drift"], abs=0.015)
    base_pct = f"{100 * ref['observed']['baseline']:.2f}%"  # 85.27%
    comp_pct = f"{100 * ref['observed']['comparison']:.2f}%"  # 74.38%
    assert base_pct in incident.headline and comp_pct in incident.headline
    assert f"({100 * ref['total']:+.2f} pt)" in incident.headline  # (-10.89 pt)
    page = incident.html.read_text()
    assert base_pct in page and comp_pct in page


# -- offline and clean HTML -----------------------------------------------------------------
@pytest.mark.parametrize("which", ["incident", "weekly"])
def test_html_has_no_remote_reference(which, request) -> None:
    res = request.getfixturevalue(which)
    page = res.html.read_text()
    assert offline_violations(page) == []
    parser = _Refs()
    parser.feed(page)
    remote = [(t, v) for t, v in parser.refs if re.match(r"^(https?:)?//", v.strip(), re.I)]
    assert remote == []
    assert not any(re.search(r"https?://", s) for s in parser.styles)
    assert not any(re.search(r"https?://", s) for s in parser.inline_scripts)
    assert "cdnjs" not in page and "require.js" not in page and "MathJax" not in page


@pytest.mark.parametrize("which", ["incident", "weekly"])
def test_html_has_no_code_and_no_parameter_cells(which, request) -> None:
    res = request.getfixturevalue(which)
    page = res.html.read_text()
    for code in ("IncidentReport.build", "WeeklyReport.build", "store_path: str", "report.waterfall()",
                 "highlight hl-ipython3", "jp-CodeMirrorEditor jp-Editor", "injected-parameters"):
        assert code not in page, code
    nb = nbformat.read(res.notebook, as_version=4)
    tags = [t for c in nb.cells for t in c.metadata.get("tags", [])]
    assert "parameters" in tags and "injected-parameters" in tags  # kept in the notebook, dropped from HTML
    assert page.count('class="vdrift-figure"') >= 4


# -- failures -------------------------------------------------------------------------------
def test_failing_cell_is_named_and_notebook_kept(store: Path, workdir: Path) -> None:
    """A filter value that selects no request passes validation but the analysis cell fails: the error names it."""
    with pytest.raises(NotApplicable) as info:
        render("incident", {"store_path": str(store), "metric": METRIC, "baseline": BASELINE,
                            "comparison": COMPARISON, "filters": {"region": "mars"}, "n_boot": 0,
                            "slug": "empty-filter"},
               out_dir=workdir / "reports", timeout=120)
    msg = str(info.value)
    assert "cell 1 of the template [tags: build]" in msg and "from toolkit.report import IncidentReport" in msg
    kept = workdir / "reports" / "2026-11-09-empty-filter" / "report.ipynb"
    assert str(kept) in msg and kept.is_file()
    assert not (kept.parent / "report.html").exists()


def test_bad_parameters_fail_before_execution(store: Path, workdir: Path) -> None:
    out = workdir / "never"
    with pytest.raises(VdriftError, match="unknown metric kind|cannot read metric"):
        render("incident", {"store_path": str(store), "metric": "median:score", "baseline": BASELINE,
                            "comparison": COMPARISON}, out_dir=out)
    with pytest.raises(VdriftError, match="empty or inverted"):
        render("incident", {"store_path": str(store), "metric": METRIC, "baseline": "2026-11-09..2026-11-02",
                            "comparison": COMPARISON}, out_dir=out)
    with pytest.raises(VdriftError, match="does not exist"):
        render("weekly", {"store_path": str(workdir / "missing.duckdb"), "metric": METRIC}, out_dir=out)
    with pytest.raises(VdriftError, match="'..'"):
        render("incident", {"store_path": str(store), "metric": METRIC, "baseline": BASELINE,
                            "comparison": COMPARISON, "output_dir": "../outside"}, out_dir=out)
    assert not out.exists()


def test_figures_only_writes_only_figures(store: Path, workdir: Path) -> None:
    out = workdir / "figs"
    res = render("incident", {"store_path": str(store), "metric": METRIC, "baseline": BASELINE,
                              "comparison": COMPARISON, "n_boot": 0, "methods": ["standardization"]},
                 out_dir=out, figures_only=True, timeout=300)
    assert res.html is None and res.notebook is None
    files = sorted(p.relative_to(res.run_dir).as_posix() for p in res.run_dir.rglob("*") if p.is_file())
    assert [f for f in files if not f.startswith("figures/")] == ["summary.json"]
    assert "figures/waterfall-split.png" in files and "figures/version-census.svg" in files
    assert not (out / "index.html").exists()


# -- hostile strings ----------------------------------------------------------------------------
def test_hostile_version_name_is_escaped(workdir: Path) -> None:
    """A version named <script>alert(1)</script> appears escaped in text, tables and chart SVGs."""
    path = _build_store(workdir / "hostile.duckdb")
    with Store(path) as s:
        for table, col in (("predictions", "model_version"), ("artifacts", "version"), ("deployments", "version")):
            s.con.execute(f"UPDATE {table} SET {col} = ? WHERE {col} = 'v1.6'", [HOSTILE])
    res = render("incident", {"store_path": str(path), "metric": METRIC, "baseline": BASELINE,
                              "comparison": COMPARISON, "n_boot": 0, "methods": ["standardization"],
                              "slug": "hostile"}, out_dir=workdir / "hostile-reports", timeout=300)
    page = res.html.read_text()
    assert HOSTILE not in page
    assert "alert(1)" in page  # it is there ...
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3  # ... escaped (tables, census, charts)
    assert "<script>alert" not in (res.run_dir / "figures" / "version-census.svg").read_text()
    index = (res.run_dir.parent / "index.html").read_text()
    assert HOSTILE not in index
    if shutil.which("chromium") or Path("/usr/bin/chromium").exists():
        check = check_page(res.html)
        assert check.console_errors == () and check.raw["alert_text_escaped"] is True


# -- the browser --------------------------------------------------------------------------------
@pytest.mark.browser
@pytest.mark.parametrize("which", ["incident", "weekly"])
def test_chromium_renders_offline_without_errors(which, request, workdir: Path) -> None:
    try:
        find_chromium()
    except BrowserUnavailable as exc:
        pytest.fail(f"{exc}")
    res = request.getfixturevalue(which)
    shot = workdir / f"{which}.png"
    check = check_page(res.html, screenshot=shot)
    assert check.console_errors == (), check.summary()
    assert check.remote_requests == (), check.summary()
    expected = 6 if which == "incident" else 4
    assert check.nonempty_svgs >= expected, check.svgs
    assert all(s["w"] > 100 and s["h"] > 50 for s in check.svgs)
    assert check.text_length > 2000 and check.title
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000


# -- charts: rule labels and sparse buckets ------------------------------------------------------
def test_census_rules_say_event_version_and_scope(incident) -> None:
    """Each deployment rule is labelled with its event, version and scope, and its components unless only serving."""
    svg = (incident.run_dir / "figures" / "version-census.svg").read_text()
    labels = set(re.findall(r'aria-roledescription="text mark"[^>]*>([^<]+)<', svg))  # one-line labels
    labels |= set(re.findall(r"<tspan[^>]*>([^<]+)</tspan>", svg))  # the lines of a label of several events
    # the demo's events in the two windows (deployments.jsonl)
    for expected in ("experiment_start v1.6 in apac", "rollout_start v1.6 in eu", "config_change v1.5 in eu",
                     "deploy fp-4 in us (feature_pipeline)", "deploy v2.0 in us (serving, cache, batch)",
                     "rollback v1.5 in us (serving, cache, batch)", "cache_flush in us (cache)"):
        assert expected in labels, (expected, sorted(labels))
    assert "time (UTC)" in svg
    # the legend's title and labels are never cut short (Vega would end them with an ellipsis)
    assert "resolved version" in svg and "\u2026" not in svg


def test_metric_series_merges_sparse_buckets(store: Path) -> None:
    """No point of the metric-by-version chart rests on fewer than 50 requests; no request is lost on the way."""
    import polars as pl

    from toolkit.attribution.metrics import parse_metric
    from toolkit.report import data
    from toolkit.report.params import DisplayZone
    from toolkit.timeutil import parse_window

    m = parse_metric(METRIC)
    with Store(store, read_only=True) as s:
        hourly = data.metric_by_version(s.con, m, parse_window(BASELINE), parse_window(COMPARISON), hours=1)
    # the raw hours of the demo's small versions are sparse: drawn as they are, they would jump to 0% or 100%
    assert (hourly["n"] < data.MIN_BUCKET_ROWS).sum() > 100
    assert ((hourly["n"] < 10) & hourly["value"].is_in([0.0, 100.0])).any()
    points = data.adaptive_series(hourly, hours=1, zone=DisplayZone("UTC"), scale=m.scale(), rate=m.is_rate)
    assert points.height > 100 and int(points["n"].min()) >= data.MIN_BUCKET_ROWS
    assert ((points["lo"] <= points["value"]) & (points["value"] <= points["hi"])).all()
    assert ((points["lo"] > 0) & (points["hi"] < 100)).all()  # Wilson: inside (0, 100) with 50 rows or more
    totals = hourly.group_by("period", "version").agg(pl.col("n").sum().alias("raw"))
    kept = points.group_by("period", "version").agg(pl.col("n").sum().alias("kept"))
    both = totals.join(kept, on=["period", "version"], how="left").with_columns(pl.col("kept").fill_null(0))
    # every request of a version is in a point, unless the version served fewer than 50 in that window
    assert both.filter(pl.col("raw") >= data.MIN_BUCKET_ROWS).select((pl.col("raw") == pl.col("kept")).all()).item()
    assert both.filter(pl.col("raw") < data.MIN_BUCKET_ROWS)["kept"].sum() == 0
    # the merged points tile each version's hours in order, without overlap
    for _, g in points.group_by("period", "version"):
        g = g.sort("start")
        assert (g["start"].slice(1) >= g["end"].slice(0, g.height - 1)).all()


def test_rendered_metric_chart_has_no_sparse_point(incident) -> None:
    svg = (incident.run_dir / "figures" / "metric-by-version.svg").read_text()
    counts = [int(n) for n in re.findall(r"; n: (\d+);", svg)]
    assert len(counts) > 100 and min(counts) >= 50
    assert "at least 50 requests" in svg and "95% interval" in svg


# -- the time zone, the headline method and the binning ---------------------------------------------
@pytest.fixture(scope="module")
def weekly_berlin(store: Path, workdir: Path):
    return render("weekly", {"store_path": str(store), "metric": METRIC, "week": "2026-11-09", "n_boot": 0,
                             "timezone": "Europe/Berlin", "method": "matched", "bins": 4, "slug": "weekly-berlin"},
                  out_dir=workdir / "reports", timeout=300)


def test_weekly_in_a_time_zone_shows_local_weeks_and_times(weekly_berlin, weekly) -> None:
    page = weekly_berlin.html.read_text()
    assert weekly_berlin.run_dir.name == "2026-11-09-weekly-berlin"
    # local weeks: Monday midnight in Berlin is Sunday 23:00 UTC, so the week holds other requests than the UTC week
    assert "Reported week 2026-11-09..2026-11-16 CET" in page and "times in Europe/Berlin (UTC+01:00" in page
    nb = nbformat.read(weekly_berlin.notebook, as_version=4)
    injected = next(c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert "2026-11-08T23:00:00..2026-11-15T23:00:00" in injected.source and "Europe/Berlin" in injected.source
    utc_summary = json.loads((weekly.run_dir / "summary.json").read_text())
    berlin_summary = json.loads((weekly_berlin.run_dir / "summary.json").read_text())
    assert berlin_summary["headline"] != utc_summary["headline"]
    # the displayed times are local and labelled
    assert "from (Europe/Berlin)" in page and "from (UTC)" not in page
    assert "2026-11-10 16:00 CET" in page  # the us rollback, 15:00 UTC
    for name in ("version-census", "consistency-score", "metric-by-version"):
        svg = (weekly_berlin.run_dir / "figures" / f"{name}.svg").read_text()
        assert "time (Europe/Berlin)" in svg and "time (UTC)" not in svg, name
    trend = (weekly_berlin.run_dir / "figures" / "off-intent-cost-trend.svg").read_text()
    assert "week starting (Europe/Berlin)" in trend
    # the headline method and the binning reach the analyses
    assert "(matched cohort (CEM), 95% intervals)" in weekly_berlin.headline
    assert "Headline method: matched cohort (CEM); 4 quantile bins per numeric covariate." in page
    assert "priced with the matched method" in page
    assert "matched cohort (CEM)" in page and "standardization (Das Gupta)" in page  # the comparison keeps all three
