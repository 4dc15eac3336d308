"""The attribution entry point: inputs, errors, outputs, hostile strings, the CLI."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from toolkit.attribution import AttributionResult, attribute, parse_metric
from toolkit.attribution.results import Diagnostics
from toolkit.errors import InputError, NotApplicable

from .test_attribution_helpers import BASELINE, COMPARISON, make_store
from .test_attribution_identities import hand_cells


def test_parse_metric_specs() -> None:
    assert parse_metric("rate:prediction=approved").value == "approved"
    assert parse_metric("rate:outcome=1").column == "outcome"
    m = parse_metric("mean:score")
    assert (m.kind, m.column, m.is_model_output) == ("mean", "score", True)
    assert parse_metric("accuracy").is_model_output is False
    assert parse_metric("rate:prediction=a=b").value == "a=b"  # only the first '=' splits
    for bad in ("ratio:x", "rate:prediction", "mean:", "rate:=x", "approved"):
        with pytest.raises(InputError):
            parse_metric(bad)


def test_metric_sql_binds_the_value() -> None:
    value_sql, valid_sql, params = parse_metric("rate:prediction=x'; DROP TABLE predictions; --").sql()
    assert "DROP" not in value_sql and params == ["x'; DROP TABLE predictions; --"]


def test_hostile_names_and_values_are_never_spliced() -> None:
    cells = [dict(c, version=("v1'; DROP TABLE predictions; --" if c["version"] == "v1" else "<script>x</script>"))
             for c in hand_cells()]
    with make_store(cells) as store:
        before = store.counts()["predictions"]
        with pytest.raises(InputError, match="unknown covariate"):
            attribute(store, "rate:prediction=approved", BASELINE, COMPARISON,
                      covariates=['region"; DROP TABLE predictions; --'], n_boot=0)
        with pytest.raises(InputError, match="reads column"):
            attribute(store, 'mean:score" FROM predictions; DROP TABLE predictions; --', BASELINE, COMPARISON)
        with pytest.raises(InputError, match="unknown filter column"):
            attribute(store, "rate:prediction=approved", BASELINE, COMPARISON, where=["x'--=1"])
        # a hostile filter value is a bound value: it matches no row, it does not widen the filter
        with pytest.raises(NotApplicable):
            attribute(store, "rate:prediction=approved", BASELINE, COMPARISON,
                      where={"region": "x' OR '1'='1"}, n_boot=0)
        res = attribute(store, "rate:prediction=approved", BASELINE, COMPARISON, n_boot=10)
        assert store.counts()["predictions"] == before
    html = res._repr_html_()
    assert "<script>" not in html
    # the version names only reach HTML through the escaped notes
    assert json.loads(res.to_json())["total"] == pytest.approx(-0.06)


def test_where_filter_restricts_rows() -> None:
    with make_store(hand_cells()) as store:
        res = attribute(store, "rate:prediction=approved", BASELINE, COMPARISON, where=["region=x"], n_boot=0)
    # region x only: A (30+16)/80 = .575, B (10+16)/40 = .65
    assert res.observed == pytest.approx((0.575, 0.65))
    assert res.rows == (80, 40)


def test_empty_window_is_not_applicable() -> None:
    with make_store(hand_cells()) as store:
        with pytest.raises(NotApplicable, match="baseline window"):
            attribute(store, "rate:prediction=approved", "2025-01-01..2025-01-02", COMPARISON)
        with pytest.raises(InputError, match="inverted"):
            attribute(store, "rate:prediction=approved", "2026-11-09..2026-11-02", COMPARISON)


def test_options_are_validated() -> None:
    with make_store(hand_cells()) as store:
        with pytest.raises(InputError, match="unknown method"):
            attribute(store, "rate:prediction=approved", BASELINE, COMPARISON, method="ols")
        with pytest.raises(InputError, match="n_boot"):
            attribute(store, "rate:prediction=approved", BASELINE, COMPARISON, n_boot=-1)


def test_single_version_and_no_covariates() -> None:
    # one version, one routing cell, no covariates: a model output that moved from 40% to 50% moved with
    # its inputs (a resolved version is a fixed function), so the 10 pt are data drift, none version drift
    cells = [dict(period=p, region="x", version="v1", n=100, k=40 + 10 * p) for p in (0, 1)]
    with make_store(cells) as store:
        res = attribute(store, "rate:prediction=approved", BASELINE, COMPARISON, covariates=[], n_boot=20)
    for m in res.methods:
        assert res.component(m, "version_drift")[0] == 0.0
        assert res.component(m, "data_drift")[0] == pytest.approx(0.10, abs=1e-12)
        assert res.component(m, "residual")[0] == pytest.approx(0.0, abs=1e-12)
    assert res.diagnostics.has("single_version")


def test_mean_metric_counts_rows_that_fail_the_cast() -> None:
    # prediction holds numbers except 5 rows of text: mean:prediction skips and reports them
    cells = [dict(period=p, region="x", version="v1", n=10, k=0) for p in (0, 1)]
    with make_store(cells) as store:
        store.con.execute("UPDATE predictions SET prediction = '2' WHERE request_id IN ('r0','r1','r2','r10')")
        store.con.execute("UPDATE predictions SET prediction = '4' WHERE request_id IN ('r3','r11','r12')")
        store.con.execute("UPDATE predictions SET prediction = 'n/a' WHERE request_id IN ('r4','r13')")
        res = attribute(store, "mean:prediction", BASELINE, COMPARISON, n_boot=0)
    # baseline: 2,2,2,4 + 5 'declined' + 'n/a' -> numbers 2,2,2,4 -> 2.5; comparison: 2,4,4 -> 10/3
    assert res.observed == pytest.approx((2.5, 10 / 3))
    assert res.diagnostics.details["excluded_rows"] == {"baseline": 6, "comparison": 7}
    assert res.diagnostics.has("excluded_rows")


def test_result_outputs_derive_from_the_frame() -> None:
    with make_store(hand_cells()) as store:
        res = attribute(store, "rate:prediction=approved", BASELINE, COMPARISON, n_boot=30)
    f = res.to_frame()
    assert f.columns == ["method", "component", "estimate", "ci_low", "ci_high"]
    assert f.height == 12
    doc = json.loads(res.to_json())
    assert doc["baseline"]["value"] == pytest.approx(0.5) and doc["comparison"]["value"] == pytest.approx(0.44)
    for m in ("regression", "matched", "standardization"):
        for comp in ("data_drift", "version_drift", "residual"):
            assert set(doc["methods"][m][comp]) == {"estimate", "ci_low", "ci_high"}
    text = res.summary()
    assert text.startswith("Attribution of approved rate") and "-6.00 pt drop" in text
    assert "Of the -6.00 pt drop in approved rate (prediction), -14.50 pt" in res.diagnostics.headline
    assert res.m_values.height == 24
    assert set(res.feature_drift["feature"]) == {"region"}


def test_result_rejects_parts_that_do_not_add_up() -> None:
    frame = pl.DataFrame(
        [("standardization", c, e, e, e) for c, e in
         (("data_drift", 0.1), ("version_drift", 0.1), ("residual", 0.0), ("total", 0.3))],
        schema={"method": pl.String, "component": pl.String, "estimate": pl.Float64, "ci_low": pl.Float64,
                "ci_high": pl.Float64}, orient="row")
    with pytest.raises(ValueError, match="observed total"):
        AttributionResult("mean:x", "mean x", "", 1.0, False, "a", "b", (0.0, 0.3), (1, 1), frame,
                          Diagnostics("h", ()), 0, 0)


def test_feature_drift_statistics_by_hand() -> None:
    # region shares: A x .8 / y .2; B x .4 / y .6
    with make_store(hand_cells()) as store:
        res = attribute(store, "rate:prediction=approved", BASELINE, COMPARISON, n_boot=0)
    row = res.feature_drift.filter(pl.col("group") == "(all versions)").row(0, named=True)
    psi = (0.4 - 0.8) * np.log(0.4 / 0.8) + (0.6 - 0.2) * np.log(0.6 / 0.2)
    assert row["psi"] == pytest.approx(psi)
    js = 0.5 * (0.8 * np.log2(0.8 / 0.6) + 0.2 * np.log2(0.2 / 0.4)) + 0.5 * (0.4 * np.log2(0.4 / 0.6) + 0.6 * np.log2(0.6 / 0.4))
    assert row["js_divergence"] == pytest.approx(js)
    # chi-squared on [[80, 20], [40, 60]]: expected [[60, 40], [60, 40]]
    chi2 = (20**2 / 60 + 20**2 / 40) * 2
    assert row["chi2"] == pytest.approx(chi2)


def test_numeric_drift_ks_and_wasserstein_by_hand() -> None:
    # baseline amounts 1,2,3,4 ; comparison 2,3,4,5 -> KS 0.25, W1 = 1
    cells = [dict(period=0, region="x", version="v1", n=4, k=2, values={"amount": [1.0, 2.0, 3.0, 4.0]}),
             dict(period=1, region="x", version="v1", n=4, k=2, values={"amount": [2.0, 3.0, 4.0, 5.0]})]
    with make_store(cells, {"amount": "DOUBLE"}) as store:
        res = attribute(store, "rate:prediction=approved", BASELINE, COMPARISON, covariates=["amount"], n_boot=0)
    row = res.feature_drift.filter((pl.col("feature") == "amount") & (pl.col("group") == "(all versions)")).row(0, named=True)
    assert row["ks"] == pytest.approx(0.25)
    assert row["wasserstein"] == pytest.approx(1.0)


def test_cli_attribute_summary_and_json(tmp_path, capsys) -> None:
    from toolkit.cli import main

    db = tmp_path / "s.duckdb"
    with make_store(hand_cells()) as mem:
        mem.con.execute(f"ATTACH '{db}' AS f")
        mem.con.execute("COPY FROM DATABASE memory TO f")
        mem.con.execute("DETACH f")
    rc = main(["attribute", "--db", str(db), "--metric", "rate:prediction=approved", "--baseline", BASELINE,
               "--comparison", COMPARISON, "--bootstrap", "20", "--method", "standardization"])
    out = capsys.readouterr().out
    assert rc == 0 and "standardization  data_drift" in out and "-14.50 pt" in out
    rc = main(["attribute", "--db", str(db), "--metric", "rate:prediction=approved", "--baseline", BASELINE,
               "--comparison", COMPARISON, "--bootstrap", "0", "--json", "--where", "region=x"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["baseline"]["value"] == pytest.approx(0.575)
    rc = main(["attribute", "--db", str(db), "--metric", "mean:nope", "--baseline", BASELINE,
               "--comparison", COMPARISON])
    assert rc == 2 and "reads column 'nope'" in capsys.readouterr().err


def test_where_list_values_must_be_text_or_numbers() -> None:
    from toolkit.attribution.rows import normalise_where
    from toolkit.errors import InputError
    from toolkit.samples import load_simulation, simulate

    with load_simulation(simulate(["clean"], rows=2_000, seed=1)) as store:
        assert normalise_where({"region": ["eu", 1]}, store.con) == [("region", ("eu", "1"))]
        with pytest.raises(InputError, match=r"filter 'region': every value of the list must be a text or a number"):
            normalise_where({"region": [1, {}]}, store.con)
        with pytest.raises(InputError, match="None"):
            normalise_where({"region": ["eu", None]}, store.con)
