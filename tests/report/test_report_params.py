"""Fast checks of the report infrastructure: parameters, paths, export checks, index, figures.

No notebook is executed here (see test_report_render.py for that).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import nbformat
import pytest

from toolkit.errors import InputError, StoreError
from toolkit.report import params as P
from toolkit.report.export import make_offline, offline_violations
from toolkit.report.figures import figure, check_name, chart_spec
from toolkit.report.index import RunRecord, write_index, write_run_record
from toolkit.store import Store
from toolkit.engine.keys import request_key_sql

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"


@pytest.fixture()
def store_path(tmp_path: Path) -> Path:
    """A tiny store built by hand: 4 predictions with a covariate ``amount``."""
    path = tmp_path / "tiny.duckdb"
    with Store(path) as store:
        con = store.con
        con.execute("ALTER TABLE predictions ADD COLUMN amount DOUBLE")
        con.execute("INSERT INTO covariates VALUES ('amount', 'DOUBLE', 1)")
        rows = [
            ("r1", dt.datetime(2026, 11, 2, 10), "v1", "approved", 12.0),
            ("r2", dt.datetime(2026, 11, 3, 10), "v1", "declined", 30.0),
            ("r3", dt.datetime(2026, 11, 9, 10), "v2", "approved", 11.0),
            ("r4", dt.datetime(2026, 11, 10, 10), "v2", "approved", 50.0),
        ]
        for rid, ts, v, pred, amount in rows:
            con.execute(
                "INSERT INTO predictions (request_id, ts, model_version, prediction, amount, ingest_id, request_key) "
                f"SELECT *, 1, {request_key_sql('r', 'duckdb')} FROM (VALUES (?, ?, ?, ?, ?)) AS t(r, ts, v, p, a)",
                [rid, ts, v, pred, amount],
            )
        store.refresh_views()
    return path


def incident(store_path: Path, **extra) -> dict:
    base = {
        "store_path": str(store_path),
        "metric": "rate:prediction=approved",
        "baseline": "2026-11-02..2026-11-09",
        "comparison": "2026-11-09..2026-11-16",
    }
    base.update(extra)
    return base


# -- validation -----------------------------------------------------------------
def test_valid_incident_params(store_path: Path, tmp_path: Path) -> None:
    p = P.validate("incident", incident(store_path, n_boot="50", covariates="amount"), out_dir=tmp_path / "reports")
    assert p.baseline.start == dt.datetime(2026, 11, 2)
    assert p.comparison.end == dt.datetime(2026, 11, 16)
    assert p.notebook["n_boot"] == 50
    assert p.notebook["covariates"] == ["amount"]
    assert p.run_dir == (tmp_path / "reports" / "2026-11-09-incident").resolve()
    assert "slug" not in p.notebook and p.notebook["output_dir"] == str(p.run_dir)


def test_unknown_metric_column_is_named(store_path: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="'nonexistent'"):
        P.validate("incident", incident(store_path, metric="mean:nonexistent"), out_dir=tmp_path)


def test_unreadable_metric_says_the_forms(store_path: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"rate:<column>=<value>"):
        P.validate("incident", incident(store_path, metric="approval"), out_dir=tmp_path)


@pytest.mark.parametrize("window", ["2026-11-09..2026-11-09", "2026-11-16..2026-11-09"])
def test_empty_or_inverted_window(store_path: Path, tmp_path: Path, window: str) -> None:
    with pytest.raises(InputError, match="empty or inverted window"):
        P.validate("incident", incident(store_path, comparison=window), out_dir=tmp_path)


def test_missing_window_and_bad_window_text(store_path: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="needs both windows"):
        P.validate("incident", incident(store_path, baseline=""), out_dir=tmp_path)
    with pytest.raises(InputError, match="FROM..TO"):
        P.validate("incident", incident(store_path, baseline="last week"), out_dir=tmp_path)


def test_window_without_predictions(store_path: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"comparison window 2027-01-04T00:00:00..2027-01-11T00:00:00 has no "
                                         r"predictions.*covers 2026-11-02 10:00..2026-11-10 10:00"):
        P.validate("incident", incident(store_path, comparison="2027-01-04..2027-01-11"), out_dir=tmp_path)
    with pytest.raises(InputError, match=r"previous week .* has no predictions.*--week YYYY-MM-DD"):
        P.validate("weekly", {"store_path": str(store_path), "metric": "rate:prediction=approved"},
                   out_dir=tmp_path, today=dt.date(2026, 12, 2))


def test_missing_store(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist.*vdrift ingest"):
        P.validate("incident", incident(tmp_path / "nope.duckdb"), out_dir=tmp_path)


def test_unknown_parameter_and_kind(store_path: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown parameter.*colour"):
        P.validate("incident", incident(store_path, colour="red"), out_dir=tmp_path)
    with pytest.raises(InputError, match="week"):  # weekly-only parameter
        P.validate("incident", incident(store_path, week="2026-11-09"), out_dir=tmp_path)
    with pytest.raises(InputError, match="unknown report kind"):
        P.validate("monthly", {}, out_dir=tmp_path)


def test_unknown_filter_column_and_method(store_path: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown filter column 'planet'"):
        P.validate("incident", incident(store_path, filters="{planet: mars}"), out_dir=tmp_path)
    with pytest.raises(InputError, match="unknown covariate 'ghost'"):
        P.validate("incident", incident(store_path, covariates=["ghost"]), out_dir=tmp_path)
    with pytest.raises(InputError, match="'bayes'.*regression, matched, standardization"):
        P.validate("incident", incident(store_path, methods="regression,bayes"), out_dir=tmp_path)


def test_methods_match_the_attribution() -> None:
    from toolkit.attribution.results import METHODS

    assert P.METHODS == tuple(METHODS)


# -- output locations ---------------------------------------------------------------
@pytest.mark.parametrize("slug", ["../escape", "/etc", "a/b", "UPPER", "", "x" * 80, "..", "~home"])
def test_bad_slugs(store_path: Path, tmp_path: Path, slug: str) -> None:
    raw = incident(store_path, slug=slug)
    if slug == "":
        # empty means "use the kind"
        assert P.validate("incident", raw, out_dir=tmp_path).slug == "incident"
        return
    with pytest.raises(InputError):
        P.validate("incident", raw, out_dir=tmp_path)


@pytest.mark.parametrize("out", ["../x", "/tmp/x", "a/../../b", "C:\\x", "sub/dir"])
def test_output_dir_confined(store_path: Path, tmp_path: Path, out: str) -> None:
    with pytest.raises(InputError):
        P.validate("incident", incident(store_path, output_dir=out), out_dir=tmp_path / "reports")


def test_output_dir_relative_name_is_used(store_path: Path, tmp_path: Path) -> None:
    p = P.validate("incident", incident(store_path, output_dir="postmortem-42"), out_dir=tmp_path / "r")
    assert p.run_dir == (tmp_path / "r" / "postmortem-42").resolve()


# -- weekly -----------------------------------------------------------------------
def test_weekly_default_is_last_full_week(store_path: Path, tmp_path: Path) -> None:
    # 2026-11-18 is a Wednesday: the last full ISO week is 2026-11-09..2026-11-16.
    p = P.validate("weekly", {"store_path": str(store_path), "metric": "rate:prediction=approved"},
                   out_dir=tmp_path, today=dt.date(2026, 11, 18))
    assert (p.comparison.start, p.comparison.end) == (dt.datetime(2026, 11, 9), dt.datetime(2026, 11, 16))
    assert (p.baseline.start, p.baseline.end) == (dt.datetime(2026, 11, 2), dt.datetime(2026, 11, 9))
    assert p.notebook["week"] == "2026-11-09" and p.run_dir.name == "2026-11-09-weekly"


def test_weekly_week_must_be_a_date(store_path: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="must be a date"):
        P.validate("weekly", {"store_path": str(store_path), "week": "2026-11-09T10:00",
                              "metric": "rate:prediction=approved"}, out_dir=tmp_path)
    with pytest.raises(InputError, match="cannot read week"):
        P.validate("weekly", {"store_path": str(store_path), "week": "next monday",
                              "metric": "rate:prediction=approved"}, out_dir=tmp_path)


# -- raw values -----------------------------------------------------------------------
def test_cli_param_parsing_and_coercion(tmp_path: Path) -> None:
    raw = P.parse_cli_params(["metric=rate:prediction=approved", "covariates=[a, b]", "filters={region: eu}"])
    assert raw["metric"] == "rate:prediction=approved"  # only the first '=' splits
    specs = P.specs_for("incident")
    assert P.coerce(specs["covariates"], raw["covariates"]) == ["a", "b"]
    assert P.coerce(specs["covariates"], "a, b") == ["a", "b"]
    assert P.coerce(specs["filters"], raw["filters"]) == {"region": "eu"}
    assert P.coerce(specs["n_boot"], "7") == 7
    with pytest.raises(InputError, match="NAME=VALUE"):
        P.parse_cli_params(["metric"])
    with pytest.raises(InputError, match="integer"):
        P.coerce(specs["n_boot"], "many")
    with pytest.raises(InputError, match="one value"):
        P.coerce(specs["filters"], "{region: [eu, us]}")
    f = tmp_path / "p.yaml"
    f.write_text("baseline: 2026-11-02..2026-11-09\nweek: 2026-11-09\ncovariates: [amount]\n")
    data = P.load_params_file(f)
    assert P.coerce(P.specs_for("weekly")["week"], data["week"]) == "2026-11-09"  # YAML date back to text
    f.write_text("- a\n- b\n")
    with pytest.raises(InputError, match="mapping"):
        P.load_params_file(f)


@pytest.mark.parametrize("kind", ["incident", "weekly"])
def test_notebook_parameters_cell_matches_specs(kind: str) -> None:
    """The template's parameters cell declares every spec with a type and a help comment."""
    from papermill.translators import PythonTranslator

    nb = nbformat.read(NOTEBOOKS / f"{kind}_report.ipynb", as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    found = {p.name: p for p in PythonTranslator.inspect(tagged[0])}
    expected = set(P.specs_for(kind)) - {"slug"} | {"run_at", "baseline", "comparison"}
    assert set(found) == expected
    for p in found.values():
        assert p.inferred_type_name in {"str", "int", "list", "dict"}, p
        assert p.help, f"{p.name} has no help comment"


# -- export checks --------------------------------------------------------------------
def test_offline_violations_finds_remote_references() -> None:
    page = (
        '<html><head><script src="https://cdn.example/require.js"></script>'
        '<link rel="stylesheet" href="//fonts.example/x.css">'
        "<style>@import url('https://fonts.example/f.css'); /* https://comment.ok */</style>"
        '</head><body><img src="http://x/y.png"><div style="background:url(https://x/b.png)"></div>'
        "<script>fetch('https://evil.example')</script></body></html>"
    )
    problems = offline_violations(page)
    assert len(problems) == 6, problems
    clean = make_offline('<style>/* see https://github.com/x */ a{}</style><svg xmlns="http://www.w3.org/2000/svg"></svg>')
    assert "http" not in clean and offline_violations(clean) == []


# -- figures and index ----------------------------------------------------------------
def test_figure_writes_png_and_svg_and_escapes(tmp_path: Path) -> None:
    import altair as alt
    import polars as pl

    df = pl.DataFrame({"v": ["<script>alert(1)</script>", "v2"], "n": [3, 5]})
    fig = figure(alt.Chart(df).mark_bar().encode(x="v:N", y="n:Q"), "hostile-bars", folder=tmp_path,
                 title="<b>caption</b>")
    assert [p.name for p in fig.paths] == ["hostile-bars.svg", "hostile-bars.png"]
    assert fig.paths[1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = fig._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;caption&lt;/b&gt;" in html and "http" not in html
    with pytest.raises(InputError):
        check_name("../evil")
    with pytest.raises(InputError, match="aggregate in DuckDB"):
        chart_spec({"data": {"values": [{"x": i} for i in range(5001)]}, "mark": "point"})


def test_index_lists_runs_escaped(tmp_path: Path) -> None:
    for folder, title in (("2026-11-09-incident", "<script>alert(1)</script>"), ("2026-11-02-weekly", "Week 45")):
        (tmp_path / folder).mkdir()
        write_run_record(tmp_path / folder, RunRecord(
            kind="incident", title=title, headline="data drift -6.6 pt", period_start="2026-11-09T00:00:00",
            period_end="2026-11-16T00:00:00", run_at="2026-11-27T08:00:00", folder=folder, html="report.html",
            toolkit_version="0.1.0"))
    page = write_index(tmp_path).read_text()
    assert page.count('<tr><td class="period">') == 2
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>" not in page
    assert page.index("2026-11-09-incident") < page.index("2026-11-02-weekly")  # newest first
    assert offline_violations(page) == [] and "http" not in page
    json.loads((tmp_path / "2026-11-02-weekly" / "run.json").read_text())


# -- the command line (fails before any kernel starts) ---------------------------------------
def test_cli_bad_parameters_exit_codes(store_path: Path, tmp_path: Path, capsys) -> None:
    from toolkit.cli import main

    out = str(tmp_path / "reports")
    rc = main(["report", "incident", "--db", str(tmp_path / "missing.duckdb"), "--out-dir", out,
               "-p", "baseline=2026-11-02..2026-11-09", "-p", "comparison=2026-11-09..2026-11-16"])
    assert rc == 3 and "does not exist" in capsys.readouterr().err
    rc = main(["report", "incident", "--db", str(store_path), "--out-dir", out, "-p", "metric=mean:ghost",
               "-p", "baseline=2026-11-02..2026-11-09", "-p", "comparison=2026-11-09..2026-11-16"])
    assert rc == 2 and "'ghost'" in capsys.readouterr().err
    rc = main(["report", "incident", "--db", str(store_path), "--week", "2026-11-09", "--out-dir", out])
    assert rc == 2 and "--week only applies to the weekly report" in capsys.readouterr().err
    params = tmp_path / "p.yaml"
    params.write_text(f"store_path: {store_path}\nmetric: rate:prediction=approved\n"
                      "baseline: 2026-11-09..2026-11-02\ncomparison: 2026-11-09..2026-11-16\n")
    rc = main(["report", "incident", "-f", str(params), "--out-dir", out])
    assert rc == 2 and "empty or inverted window" in capsys.readouterr().err
    assert not Path(out).exists()


def test_cli_merges_file_db_and_params(tmp_path: Path, monkeypatch) -> None:
    import argparse

    monkeypatch.delenv("VDRIFT_DB", raising=False)
    from toolkit.cli.report import collect_params

    f = tmp_path / "p.yaml"
    f.write_text("store_path: from-file.duckdb\nmetric: accuracy\n")
    ns = argparse.Namespace(params_file=str(f), db="vdrift.duckdb", week=None, kind="incident",
                            param=["metric=mean:score"])
    got = collect_params(ns)
    assert got["store_path"] == "from-file.duckdb" and got["metric"] == "mean:score"  # --param wins over -f
    ns.db = "explicit.duckdb"
    assert collect_params(ns)["store_path"] == "explicit.duckdb"  # an explicit --db wins over the file


def test_feature_drift_table_names_a_rounded_resolution() -> None:
    import polars as pl

    from toolkit.report.sections import feature_drift_table

    base = {"feature": ["amount", "channel"], "kind": ["numeric", "categorical"],
            "group": ["(all versions)"] * 2, "n_baseline": [10, 10], "n_comparison": [12, 12],
            "psi": [0.3, 0.1], "js_divergence": [0.1, 0.05], "ks": [0.2, None], "chi2_pvalue": [None, 0.5],
            "wasserstein": [3.0, None]}
    exact = str(feature_drift_table(pl.DataFrame({**base, "resolution": ["exact", "exact"]})))
    rounded = str(feature_drift_table(pl.DataFrame({**base, "resolution": ["4 significant digits", "exact"]})))
    assert "resolution" not in exact and "amount" in exact
    assert "resolution" in rounded and "4 significant digits" in rounded


# -- time zone, headline method and binning ----------------------------------------------------
@pytest.mark.parametrize("bad", ["Mars/Olympus", "europe/berlin", "../etc/passwd", "/usr/share/zoneinfo/UTC", "CET+1"])
def test_timezone_must_be_an_iana_name(store_path: Path, tmp_path: Path, bad: str) -> None:
    with pytest.raises(InputError, match=rf"unknown time zone {re.escape(repr(bad))} for parameter timezone.*"
                                         "IANA name"):
        P.validate("incident", incident(store_path, timezone=bad), out_dir=tmp_path)


def test_timezone_error_suggests_the_name_and_the_cli_names_it(store_path: Path, tmp_path: Path, capsys) -> None:
    with pytest.raises(InputError, match="did you mean Europe/Berlin"):
        P.validate("incident", incident(store_path, timezone="Europe/Berlinn"), out_dir=tmp_path)
    from toolkit.cli import main

    out = tmp_path / "reports"
    rc = main(["report", "weekly", "--db", str(store_path), "--week", "2026-11-09", "--out-dir", str(out),
               "-p", "metric=rate:prediction=approved", "-p", "timezone=Europe/Berlinn"])
    err = capsys.readouterr().err
    assert rc == 2 and "vdrift: error: unknown time zone 'Europe/Berlinn'" in err
    assert not out.exists()


def test_timezone_defaults_to_utc_and_is_passed_on(store_path: Path, tmp_path: Path) -> None:
    p = P.validate("incident", incident(store_path), out_dir=tmp_path)
    assert p.notebook["timezone"] == "UTC" and p.zone.is_utc
    p = P.validate("incident", incident(store_path, timezone="Asia/Kolkata"), out_dir=tmp_path)
    assert p.notebook["timezone"] == "Asia/Kolkata" and p.timezone == "Asia/Kolkata"
    # the incident windows stay UTC (an offset in the window text says otherwise)
    assert p.baseline.start == dt.datetime(2026, 11, 2) and p.notebook["baseline"].startswith("2026-11-02T00:00:00")


def test_headline_method_and_bins(store_path: Path, tmp_path: Path) -> None:
    p = P.validate("incident", incident(store_path), out_dir=tmp_path)
    assert p.notebook["method"] == "regression" and p.notebook["bins"] == 5
    p = P.validate("incident", incident(store_path, method="matched", bins="12"), out_dir=tmp_path)
    assert p.notebook["method"] == "matched" and p.notebook["bins"] == 12
    # left out, the headline method is the regression, or the first compared method without it
    assert P.validate("incident", incident(store_path, methods="standardization,matched"),
                      out_dir=tmp_path).notebook["method"] == "standardization"
    with pytest.raises(InputError, match="unknown headline method 'bayes'.*regression, matched, standardization"):
        P.validate("incident", incident(store_path, method="bayes"), out_dir=tmp_path)
    with pytest.raises(InputError, match="headline method 'matched' is not among the compared methods "
                                         r"\(regression, standardization\)"):
        P.validate("incident", incident(store_path, method="matched", methods="regression,standardization"),
                   out_dir=tmp_path)
    for bins in ("0", "21", "-3"):
        with pytest.raises(InputError, match=rf"bins={bins} is out of range: use 1\.\.20"):
            P.validate("weekly", {"store_path": str(store_path), "metric": "rate:prediction=approved",
                                  "week": "2026-11-09", "bins": bins}, out_dir=tmp_path)
    with pytest.raises(InputError, match="bins must be an integer"):
        P.validate("incident", incident(store_path, bins="five"), out_dir=tmp_path)


def test_report_methods_match_what_explain_accepts(store_path: Path) -> None:
    """The report passes method and bins to explain and attribute, which accept exactly these."""
    import inspect

    from toolkit.attribution.api import MAX_BINS, attribute
    from toolkit.causes import explain

    assert P.MAX_BINS == MAX_BINS
    assert inspect.signature(explain).parameters["bins"].default == P.specs_for("incident")["bins"].default
    assert inspect.signature(attribute).parameters["bins"].default == P.specs_for("weekly")["bins"].default
    from toolkit.errors import NotApplicable

    for m in P.METHODS:  # each headline method is one explain prices with: it fails later, on the empty window
        with pytest.raises(NotApplicable):
            explain(str(store_path), "rate:prediction=approved", "2030-01-01..2030-01-02", method=m)
    with pytest.raises(InputError, match="unknown method 'bayes'"):
        explain(str(store_path), "rate:prediction=approved", "2026-11-09..2026-11-16", method="bayes")
    with pytest.raises(InputError, match="bins"):
        explain(str(store_path), "rate:prediction=approved", "2026-11-09..2026-11-16", bins=P.MAX_BINS + 1)


def test_weekly_weeks_start_at_local_midnight(store_path: Path, tmp_path: Path) -> None:
    raw = {"store_path": str(store_path), "metric": "rate:prediction=approved", "week": "2026-11-09"}
    utc = P.validate("weekly", raw, out_dir=tmp_path)
    berlin = P.validate("weekly", {**raw, "timezone": "Europe/Berlin"}, out_dir=tmp_path)
    assert (utc.comparison.start, utc.comparison.end) == (dt.datetime(2026, 11, 9), dt.datetime(2026, 11, 16))
    # Monday 00:00 in Berlin (CET, UTC+1) is Sunday 23:00 UTC: the analyses get these UTC windows
    assert (berlin.comparison.start, berlin.comparison.end) == (dt.datetime(2026, 11, 8, 23),
                                                                dt.datetime(2026, 11, 15, 23))
    assert (berlin.baseline.start, berlin.baseline.end) == (dt.datetime(2026, 11, 1, 23), dt.datetime(2026, 11, 8, 23))
    assert berlin.notebook["comparison"] == "2026-11-08T23:00:00..2026-11-15T23:00:00"
    # ... while the week, the folder and the title keep the local date
    assert berlin.notebook["week"] == "2026-11-09" and berlin.run_dir.name == "2026-11-09-weekly"
    assert "week of 2026-11-09" in berlin.notebook["title"]
    # a week over the end of daylight saving time (New York, 2026-11-01) has 169 hours
    ny = P.validate("weekly", {**raw, "week": "2026-10-26", "timezone": "America/New_York"}, out_dir=tmp_path,
                    check_store=False)
    assert (ny.comparison.start, ny.comparison.end) == (dt.datetime(2026, 10, 26, 4), dt.datetime(2026, 11, 2, 5))
    assert ny.comparison.end - ny.comparison.start == dt.timedelta(hours=169)
    assert ny.baseline.end == ny.comparison.start
    # the default week is the last full ISO week of the zone: Kiritimati (UTC+14) is already on Monday
    kiri = P.validate("weekly", {"store_path": str(store_path), "metric": "rate:prediction=approved",
                                 "timezone": "Pacific/Kiritimati"}, out_dir=tmp_path, today=dt.date(2026, 11, 18),
                      check_store=False)
    assert kiri.notebook["week"] == "2026-11-09" and kiri.comparison.start == dt.datetime(2026, 11, 8, 10)


def test_display_zone_shifts_the_displayed_times() -> None:
    from toolkit.timeutil import Window

    utc, berlin, ny = P.DisplayZone("UTC"), P.DisplayZone("Europe/Berlin"), P.DisplayZone("America/New_York")
    t = dt.datetime(2026, 11, 10, 15)
    assert (utc.fmt(t), berlin.fmt(t), ny.fmt(t)) == ("2026-11-10 15:00", "2026-11-10 16:00", "2026-11-10 10:00")
    assert berlin.stamp(t) == "2026-11-10 16:00 CET"
    assert berlin.stamp(dt.datetime(2026, 7, 1)) == "2026-07-01 02:00 CEST"
    sentence = ("stuck rollout (online eu, 2026-11-09 12:00 to 2026-11-15 23:55 UTC): v2.0 was rolled back at "
                "2026-11-10 15:00, from 2026-11-02..2026-11-09")
    assert utc.text(sentence) == sentence  # UTC: unchanged, byte for byte
    assert berlin.text(sentence) == ("stuck rollout (online eu, 2026-11-09 13:00 CET to 2026-11-16 00:55 CET): v2.0 "
                                     "was rolled back at 2026-11-10 16:00 CET, from 2026-11-02 01:00..2026-11-09 "
                                     "01:00 CET")
    w = Window(dt.datetime(2026, 11, 8, 23), dt.datetime(2026, 11, 15, 23))
    assert utc.window(w) == "2026-11-08T23:00:00..2026-11-15T23:00:00"
    assert berlin.window(w) == "2026-11-09..2026-11-16 CET"
    dst = Window(dt.datetime(2026, 10, 20), dt.datetime(2026, 10, 27))
    assert berlin.window(dst) == "2026-10-20 02:00 CEST..2026-10-27 01:00 CET"
    assert berlin.offsets(dst.start, dst.end) == "UTC+02:00/+01:00"
    assert berlin.to_utc(berlin.local(t)) == t and berlin.midnight(dt.date(2026, 11, 9)) == dt.datetime(2026, 11, 8, 23)
    import polars as pl

    frame = pl.DataFrame({"ts": [t], "n": [1]})
    assert berlin.frame(frame, "ts")["ts"].to_list() == [dt.datetime(2026, 11, 10, 16)]
    assert utc.frame(frame, "ts") is frame


def test_findings_table_and_census_chart_show_the_zone() -> None:
    """A non-UTC zone moves the findings' times and the chart's time axis, and labels both with the zone."""
    import polars as pl

    from toolkit.report.sections import census_figure, findings_table

    findings = pl.DataFrame({
        "severity": ["critical"], "kind": ["incomplete_rollback"], "component": ["cache"], "region": ["us"],
        "instance_id": [None], "versions": [["v2.0"]], "start": [dt.datetime(2026, 11, 10, 15)],
        "end": [dt.datetime(2026, 11, 11, 7, 42)], "n_requests": [60], "share": [0.6],
        "explanation": ["v2.0 was rolled back to v1.5 at 2026-11-10 15:00, but cache still served it."],
    })
    utc = str(findings_table(findings))
    berlin = str(findings_table(findings, zone=P.DisplayZone("Europe/Berlin")))
    assert "from (UTC)" in utc and "<td>11-10 15:00</td>" in utc and "at 2026-11-10 15:00, but" in utc
    assert "from (Europe/Berlin)" in berlin and "<td>11-10 16:00</td>" in berlin and "<td>11-11 08:42</td>" in berlin
    assert "at 2026-11-10 16:00 CET, but" in berlin and "15:00" not in berlin

    census = pl.DataFrame({"bucket_start": [dt.datetime(2026, 11, 10, h) for h in range(6)],
                           "component": ["online"] * 6, "resolved_version": ["v1.5"] * 6, "n": [10] * 6})
    deps = pl.DataFrame({"ts": [dt.datetime(2026, 11, 10, 2)], "component": ["serving"], "scope": ["us"],
                         "event": ["rollback"], "version": ["v1.5"]})
    specs = {}
    for name in ("UTC", "Europe/Berlin"):
        fig = census_figure(census, deps, None, hours=3, zone=P.DisplayZone(name))
        specs[name] = fig.svg
    assert "time (UTC)" in specs["UTC"] and "time (Europe/Berlin)" in specs["Europe/Berlin"]
    # the rule's time in its label: 02:00 UTC is 03:00 in Berlin
    assert "2026-11-10 02:00" in specs["UTC"] and "2026-11-10 03:00" in specs["Europe/Berlin"]


def test_a_version_keeps_its_colour_in_charts_that_show_only_some_versions() -> None:
    from toolkit.report.charts import version_scale

    every = ["v1.4", "v1.5", "v1.6", "v2.0"]
    full = version_scale(every).to_dict()
    part = version_scale(["v1.6", "v1.5"], every).to_dict()
    assert part["domain"] == ["v1.5", "v1.6"]
    assert part["range"] == full["range"][1:3]  # v1.5 and v1.6 as in the chart of all four
    assert version_scale(["v1.6", "v1.5"]).to_dict()["range"] == full["range"][:2]  # without the universe: shifted
