"""toolkit.formatting: the one rule for effects, levels, intervals and confidence levels, and its callers."""

from __future__ import annotations

import json
import math
import re

import pytest

from toolkit import Store
from toolkit import formatting as fmt
from toolkit.attribution import attribute
from toolkit.report import charts, sections

from .conftest import SAMPLES

DEMO = SAMPLES / "demo"
BASELINE, COMPARISON = "2026-11-02..2026-11-09", "2026-11-09..2026-11-16"


# --------------------------------------------------------------------------- the functions on edge values
def test_rate_effects_levels_and_intervals() -> None:
    r = dict(scale=100.0, unit="pt", observed=(0.8538, 0.7546))
    assert fmt.effect(-0.0317, **r) == "-3.17 pt"
    assert fmt.effect(0.0006, **r) == "+0.06 pt"
    assert fmt.effect(-0.0317, **r, bare=True) == "-3.17"
    assert fmt.effect(0.0317, **r, signed=False) == "3.17 pt"
    assert fmt.level(0.8538, **r) == "85.38%"
    assert fmt.level(1.0, **r) == "100.00%" and fmt.level(0.0, **r) == "0.00%"
    assert fmt.interval(-0.0347, -0.0287, **r) == "[-3.47, -2.87]"
    assert fmt.Display(100.0, "pt", (0.85, 0.75)).estimate(-0.0317, -0.0347, -0.0287) == "-3.17 pt [-3.47, -2.87]"
    assert fmt.decimals("pt", (1e-9,)) == fmt.decimals("pt", (1e9,)) == 2  # a rate's decimals never move


def test_mean_decimals_follow_the_size_of_the_metric() -> None:
    assert fmt.effect(0.0042, scale=1.0, unit="", observed=(0.48, 0.52)) == "+0.0042"
    assert fmt.effect(0.0042, scale=1.0, unit="", observed=(0.05, 0.04)) == "+0.00420"
    assert fmt.effect(0.42, scale=1.0, unit="", observed=(120.0, 121.0)) == "+0.42"
    assert fmt.level(120.374, scale=1.0, unit="", observed=(120.0, 121.0)) == "120.37"
    assert fmt.level(0.048123, scale=1.0, unit="", observed=(0.05,)) == "0.04812"
    assert fmt.level(0.048123, scale=1.0, unit="") == "0.04812"  # without observed levels: its own size
    assert fmt.interval(-0.00075, 0.0006, scale=1.0, unit="", observed=(0.066,)) == "[-0.00075, +0.00060]"
    # huge and tiny metrics: two decimals at least, ten at most
    assert fmt.effect(1234567.891, scale=1.0, unit="", observed=(5e8,)) == "+1234567.89"
    assert fmt.decimals("", (1e-15,)) == 10
    assert fmt.effect(3e-11, scale=1.0, unit="", observed=(1e-15,)) == "+0.0000000000"
    # no observed level, or only zero / missing ones: size 1
    assert fmt.decimals("", ()) == fmt.decimals("", (0.0, None, float("nan"))) == 3


def test_zero_negative_zero_and_rounding_to_zero_print_plus_zero() -> None:
    for x in (0.0, -0.0, -1e-7, 1e-7, -0.00004):
        assert fmt.effect(x, scale=100.0, unit="pt", observed=(0.5,)) == "+0.00 pt", x
    assert fmt.effect(-0.0, scale=1.0, unit="", observed=(0.5,)) == "+0.0000"
    assert fmt.interval(-0.0, -1e-9, scale=100.0, unit="pt") == "[+0.00, +0.00]"
    assert fmt.level(-0.0, scale=100.0, unit="pt") == "0.00%"
    # floating-point noise of an exact zero (1e-12 of the metric's size) is zero, whatever the decimals
    assert fmt.effect(-1e-16, scale=1.0, unit="", observed=(1e-3,)) == "+0.000000"
    assert fmt.fixed(-0.004, 2) == "+0.00" and fmt.fixed(-0.004, 2, signed=False) == "0.00"
    assert fmt.fixed(0.006, 2) == "+0.01" and fmt.fixed(-0.006, 2) == "-0.01"


@pytest.mark.parametrize("missing", [None, float("nan"), float("inf"), -math.inf])
def test_missing_values(missing) -> None:
    assert fmt.effect(missing, scale=100.0, unit="pt") == "n/a"
    assert fmt.level(missing, scale=1.0, unit="") == "n/a"
    assert fmt.interval(missing, 0.1, scale=1.0, unit="") == "no interval"
    assert fmt.interval(0.1, missing, scale=100.0, unit="pt") == "no interval"
    assert fmt.share(missing) == "n/a"
    assert fmt.Display(100.0, "pt").estimate(-0.03, missing, 0.0) == "-3.00 pt"
    # a missing observed level does not break a mean's decimals
    assert fmt.effect(0.0042, scale=1.0, unit="", observed=(missing, 0.5)) == "+0.0042"


def test_level_label() -> None:
    assert fmt.level_label(0.9) == "90%"
    assert fmt.level_label(0.95) == "95%"
    assert fmt.level_label(0.57) == "57%"  # int(0.57 * 100) is 56
    assert fmt.level_label(0.999) == "99.9%"
    assert fmt.level_label(0.8) == "80%"
    for bad in (0, 1, 1.5, -0.1, float("nan"), None, True):
        with pytest.raises(ValueError):
            fmt.level_label(bad)  # type: ignore[arg-type]


def test_shares_and_units() -> None:
    assert fmt.share(0.125) == "12.5%" and fmt.share(0.125, 0) == "12%" and fmt.share(1) == "100.0%"
    assert fmt.unit_for(True) == "pt" and fmt.unit_for(False) == ""
    assert fmt.scale_for(True) == 100.0 and fmt.scale_for(False) == 1.0
    assert fmt.unit_name("pt") == "percentage points" and fmt.unit_name("") == "metric units"
    assert fmt.axis_unit("pt") == "%" and fmt.axis_unit("") == ""
    assert fmt.d3_format("pt", signed=True) == "+.2f" and fmt.d3_format("", (0.05,)) == ".5f"


# --------------------------------------------------------------------------- the callers, on the demo sample
@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    db = tmp_path_factory.mktemp("fmt") / "demo.duckdb"
    with Store(db) as s:
        s.ingest("artifacts", [DEMO / "artifacts.csv"])
        s.ingest("deployments", [DEMO / "deployments.jsonl"])
        s.ingest("predictions", [DEMO / "predictions.csv.gz"])
    with Store(db, read_only=True) as s:
        yield s


@pytest.fixture(scope="module")
def mean90(demo_store):
    return attribute(demo_store, "mean:score", BASELINE, COMPARISON, level=0.9, n_boot=20, seed=1)


def test_level_09_says_90_percent_everywhere(mean90) -> None:
    text = mean90.summary()
    assert "90% interval" in text and "(regression method, 90% intervals)." in mean90.diagnostics.headline
    assert "95%" not in text
    html = mean90._repr_html_()
    assert "<th>90% interval</th>" in html and "95%" not in html
    assert "90% intervals" in sections.split_headline(mean90)
    table = sections.methods_table(mean90).body
    assert "90% bootstrap intervals" in table and "95%" not in table


def test_a_mean_effect_reads_the_same_in_summary_html_and_report(mean90) -> None:
    show = mean90.display
    assert show.decimals == 5  # mean score of the demo: about 0.05 to 0.07
    text, html = mean90.summary(), mean90._repr_html_()
    head = sections.split_headline(mean90)
    table = sections.methods_table(mean90).body
    for method in mean90.methods:
        for comp in ("data_drift", "version_drift", "residual"):
            est, lo, hi = mean90.component(method, comp)
            e, iv = show.effect(est), show.interval(lo, hi)
            assert re.fullmatch(r"[+-]0\.\d{5}", e), e  # never the old report's +0.02
            assert f"{method:<16} {comp:<14} {e:>12}   {iv}" in text
            assert f"<td>{e}</td><td>{iv}</td>" in html
            assert f"<td>{e} {iv}</td>" in table
    est, lo, hi = mean90.component("regression", "version_drift")
    assert f"version drift {show.effect(est)} {show.interval(lo, hi)}" in head
    assert f"{show.effect(est)} {show.interval(lo, hi)} version drift" in mean90.diagnostics.headline
    # the levels and the observed shift too
    base, comp = (show.level(v) for v in mean90.observed)
    total = show.effect(mean90.total)
    assert f": {base} (" in text and f": {comp} (" in text and f"observed shift: {total}" in text
    assert f"from {base} to {comp} ({total})" in head
    assert f"<td>{total}</td>" in table
    # the JSON keeps the raw numbers
    assert json.loads(mean90.to_json())["total"] == pytest.approx(mean90.total)


def test_waterfall_labels_use_the_metric_decimals(mean90) -> None:
    show = mean90.display
    import polars as pl

    sub = mean90.to_frame().filter(pl.col("method") == "regression", pl.col("component") != "total")
    parts = sub.select(pl.col("component").replace({"data_drift": "data", "version_drift": "version"}),
                       "estimate", "ci_low", "ci_high")
    chart = charts.waterfall(parts, baseline=mean90.observed[0], comparison=mean90.observed[1],
                             decimals=show.decimals)
    labels = {r["label"] for d in chart.to_dict()["datasets"].values() for r in d if "label" in r}
    est = mean90.component("regression", "version_drift")[0]
    assert show.effect(est) in labels and show.level(mean90.observed[0]) in labels


def test_rate_metric_strings_match_between_summary_and_report(demo_store) -> None:
    res = attribute(demo_store, "rate:prediction=approved", BASELINE, COMPARISON, n_boot=0)
    show = res.display
    base = show.level(res.observed[0])
    assert re.fullmatch(r"\d+\.\d\d%", base)
    assert f"baseline   {res.baseline}: {base}" in res.summary()
    assert f"from {base} to " in sections.split_headline(res)
    est = res.component("regression", "data_drift")[0]
    assert re.fullmatch(r"[+-]\d+\.\d\d pt", show.effect(est))
    assert f"data drift {show.effect(est)};" in sections.split_headline(res)  # no bootstrap: no interval
    assert "no interval" in res.summary() and "[n/a" not in res.summary()


def test_causes_at_level_09_read_the_same_in_summary_and_report(demo_store) -> None:
    from toolkit.causes import explain
    from toolkit.report.causes import causes_table, cost_block

    expl = explain(demo_store, "mean:score", COMPARISON, BASELINE, n_boot=20, seed=1, level=0.9)
    text = expl.summary()
    assert "Ranked causes (90% intervals;" in text and "95%" not in text
    table = causes_table(expl).body
    assert "in 90% intervals" in table and "95%" not in table
    show = expl.display
    assert show.decimals == 5
    for r in expl.causes.filter(expl.causes["impact"].is_not_nan()).head(15).iter_rows(named=True):
        e = show.effect(r["impact"])
        assert f"{r['rank']:>3}. {e:>10}  " in text
        assert f"<td>{e}</td><td>{show.interval(r['ci_low'], r['ci_high'])}</td>" in table
        assert e + (f" {show.interval(r['ci_low'], r['ci_high'])}" if math.isfinite(r["ci_low"]) else "") \
            in expl.sentence(r)
    c = expl.window_costs.row(0, named=True)
    assert f"<td>{show.effect(c['cost'])}</td><td>{show.interval(c['ci_low'], c['ci_high'])}</td>" \
        in cost_block(expl).body
