"""The scans behind attribute() at scale: profile, fine-bin cells, drift counts and their resolution."""

from __future__ import annotations

import duckdb
import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from scipy import stats

from toolkit.attribution import attribute
from toolkit.attribution.profile import profile_covariates, quantiles_from_counts
from toolkit.attribution.rows import Covariate
from toolkit.attribution.drift import feature_drift
from toolkit.attribution.metrics import parse_metric
from toolkit.timeutil import parse_window

from .test_attribution_helpers import BASELINE, COMPARISON, make_store

PROBS = sorted({i / k for k in range(1, 11) for i in range(1, k)})
RATE = parse_metric("rate:prediction=approved")


def _store(seed: int = 0, n: int = 60, *, nulls: bool = True, full: bool = False):
    """Two versions, two regions, an amount with ties and many digits (some NULL), a metric ``w`` with NULLs."""
    rng = np.random.default_rng(seed)
    cells = []
    for period in (0, 1):
        for version in ("v1", "v2"):
            for region in ("x", "y"):
                amount = rng.lognormal(3 + 0.3 * period, 1, n)
                amount = (amount if full else np.round(amount, int(rng.integers(0, 5)))).tolist()
                if nulls:
                    amount[0] = None
                w = rng.normal(size=n).tolist()
                w[1] = None
                cells.append(dict(period=period, version=version, region=region, n=n, k=int(rng.integers(0, n)),
                                  values={"amount": amount, "w": w}))
    return make_store(cells, {"amount": "DOUBLE", "w": "DOUBLE"})


def _windows(overlap: bool):
    if overlap:  # rows of 2026-11-09..12 belong to both windows
        return parse_window("2026-11-02..2026-11-12"), parse_window("2026-11-09..2026-11-16")
    return parse_window(BASELINE), parse_window(COMPARISON)


def test_quantiles_from_counts_are_duckdb_quantile_cont_bit_for_bit() -> None:
    rng = np.random.default_rng(3)
    con = duckdb.connect()
    for n in (1, 2, 3, 10, 997):
        for digits in (0, 2, 6):
            x = np.round(rng.lognormal(3, 1.5, n), digits)
            ref = con.execute("SELECT quantile_cont(x, ?::DOUBLE[]) FROM (SELECT unnest(?::DOUBLE[]) AS x)",
                              [PROBS, x.tolist()]).fetchone()[0]
            vals, counts = np.unique(x, return_counts=True)
            assert quantiles_from_counts(vals, counts, PROBS) == ref
    assert quantiles_from_counts(np.array([]), np.array([]), [0.5]) == [None]


@pytest.mark.parametrize("overlap", [False, True])
@pytest.mark.parametrize("metric", ["rate:prediction=approved", "mean:w"])
def test_profile_counted_per_value_equals_the_rounded_profile(overlap: bool, metric: str) -> None:
    A, B = _windows(overlap)
    m = parse_metric(metric)
    with _store() as store:
        exact = profile_covariates(store.con, m, A, B, ["amount", "region"], bins=range(1, 11))
        scan = profile_covariates(store.con, m, A, B, ["amount", "region"], bins=range(1, 11), exact_max_distinct=0)
        # the reference: every row of the windows with its period and whether it counts for the metric
        rows = store.con.execute(
            "SELECT ts, amount, w, prediction FROM predictions_resolved WHERE amount IS NOT NULL").pl()
    e, s = exact.numeric["amount"], scan.numeric["amount"]
    # the rounded path (two scans: rounded values, then the exact values of the buckets holding
    # the order statistics) gives the same quantiles and minima bit for bit
    assert (e.digits, s.digits) == (None, 4)
    assert e.pooled == s.pooled and e.rows == s.rows
    assert (e.min_all, e.min_rows) == (s.min_all, s.min_rows)
    assert e.skewness == pytest.approx(s.skewness, rel=1e-9)
    assert exact.levels == scan.levels
    assert_frame_equal(exact.excluded, scan.excluded)

    in_a = (rows["ts"] >= A.start) & (rows["ts"] < A.end)
    in_b = (rows["ts"] >= B.start) & (rows["ts"] < B.end)
    valid = rows["w"].is_not_null() if m.kind == "mean" else rows["prediction"].is_not_null()
    x = rows["amount"]
    once = x.filter((in_a | in_b) & valid).to_numpy()
    both = np.concatenate([x.filter(in_a & valid).to_numpy(), x.filter(in_b & valid).to_numpy()])
    assert [e.pooled[q] for q in PROBS] == pytest.approx(np.quantile(once, PROBS), rel=1e-12)
    assert [e.rows[q] for q in PROBS] == pytest.approx(np.quantile(both, PROBS), rel=1e-12)
    assert (e.pooled != e.rows) == overlap
    # minimum and skewness count every row in the windows once, whether or not it counts for the metric
    assert e.min_all == x.filter(in_a | in_b).min()
    assert e.skewness == pytest.approx(stats.skew(x.filter(in_a | in_b).to_numpy(), bias=False), rel=1e-9)


def test_drift_exact_by_default_and_rounded_above_the_distinct_limit() -> None:
    A, B = _windows(False)
    with _store(2, nulls=False) as store:
        con = store.con
        covs = (Covariate("amount", "numeric"), Covariate("region", "categorical"))
        exact = feature_drift(con, RATE, A, B, covs)
        rounded = feature_drift(con, RATE, A, B, covs, exact_max_distinct=0)
        rows = con.execute("SELECT ts, amount, resolved_version AS v FROM predictions_resolved").pl()
    a = rows.filter(pl.col("ts") < B.start)
    b = rows.filter(pl.col("ts") >= B.start)

    def row(frame: pl.DataFrame, feature: str, group: str) -> dict:
        return frame.filter((pl.col("feature") == feature) & (pl.col("group") == group)).row(0, named=True)

    def sig4(v: np.ndarray) -> np.ndarray:
        # 4 significant digits, halves away from zero on the scaled value (DuckDB's round)
        d = 3 - np.floor(np.log10(np.abs(v)))
        return np.where(d >= 0, np.sign(v) * np.floor(np.abs(v) * 10.0 ** d + 0.5) / 10.0 ** d,
                        np.sign(v) * np.floor(np.abs(v) / 10.0 ** -d + 0.5) * 10.0 ** -d)

    for group, fa, fb in [("(all versions)", a, b)] + [
            (v, a.filter(pl.col("v") == v), b.filter(pl.col("v") == v)) for v in ("v1", "v2")]:
        xa, xb = fa["amount"].to_numpy(), fb["amount"].to_numpy()
        r = row(exact, "amount", group)
        assert r["resolution"] == "exact"
        assert (r["n_baseline"], r["n_comparison"]) == (len(xa), len(xb))
        assert r["ks"] == pytest.approx(stats.ks_2samp(xa, xb).statistic, rel=1e-12)
        assert r["wasserstein"] == pytest.approx(stats.wasserstein_distance(xa, xb), rel=1e-9)
        q = row(rounded, "amount", group)
        assert q["resolution"] == "4 significant digits"
        assert q["ks"] == pytest.approx(stats.ks_2samp(sig4(xa), sig4(xb)).statistic, rel=1e-12)
        assert q["wasserstein"] == pytest.approx(stats.wasserstein_distance(sig4(xa), sig4(xb)), rel=1e-9)
        # rounding moves each value by at most half a unit in the 4th digit
        assert abs(q["wasserstein"] - r["wasserstein"]) <= 5e-4 * max(np.abs(xa).max(), np.abs(xb).max())
        # the binned statistics do not depend on the resolution
        assert (q["psi"], q["chi2"], q["n_baseline"]) == (r["psi"], r["chi2"], r["n_baseline"])
    # the rounding only applies to numeric covariates' KS and Wasserstein
    assert set(rounded.filter(pl.col("feature") == "region")["resolution"]) == {"exact"}
    assert_frame_equal(exact.filter(pl.col("feature") == "region"), rounded.filter(pl.col("feature") == "region"))


def test_attribute_reports_the_drift_resolution() -> None:
    with _store(4) as store:
        res = attribute(store, "rate:prediction=approved", BASELINE, COMPARISON, covariates=["amount", "region"],
                        n_boot=0)
    assert set(res.feature_drift["resolution"]) == {"exact"}
    assert res.feature_drift.filter(pl.col("feature") == "amount")["ks"].is_not_nan().all()


def test_rounded_profile_of_continuous_values_keeps_quantiles_and_bins_exact() -> None:
    # full-precision values: every 4-significant-digit bucket of the bulk holds several of them
    A, B = _windows(True)
    with _store(5, n=250, full=True) as store:
        con = store.con
        exact = profile_covariates(con, RATE, A, B, ["amount"], bins=range(1, 11))
        rounded = profile_covariates(con, RATE, A, B, ["amount"], bins=range(1, 11), exact_max_distinct=0)
        e, r = exact.numeric["amount"], rounded.numeric["amount"]
        assert r.counts["x"].n_unique() < e.counts["x"].n_unique()
        assert (e.pooled, e.rows, e.min_all, e.min_rows) == (r.pooled, r.rows, r.min_all, r.min_rows)
        covs = (Covariate("amount", "numeric"),)
        d_exact = feature_drift(con, RATE, A, B, covs, profile=exact)
        d_rounded = feature_drift(con, RATE, A, B, covs, profile=rounded)
    same = ["group", "n_baseline", "n_comparison", "psi", "js_divergence", "chi2", "chi2_pvalue"]
    assert_frame_equal(d_exact.select(same), d_rounded.select(same))
    assert (d_exact["ks"] - d_rounded["ks"]).abs().max() < 0.01


def test_model_sample_keeps_each_versions_hash_share_with_the_scan_bound() -> None:
    """With a cap below the rows, the sample is each (window, version)'s rows whose key's high bits fall under its share.

    The pass bounds the stored request key by the largest share (a bound the table scan applies), then each
    (window, version) by its own; the rows kept must be exactly those a direct count finds.
    """
    from toolkit.attribution.api import _read
    from toolkit.attribution.sums import model_sample
    from toolkit.engine.keys import SAMPLE_KEYS, SAMPLE_SHIFT
    from toolkit.samples import load_simulation, simulate

    m = parse_metric("rate:prediction=approved")
    A, B = parse_window(BASELINE), parse_window(COMPARISON)
    with load_simulation(simulate(["canary"], rows=20_000, seed=3)) as store:
        con = store.con
        inp = _read(con, m, A, B, None, None, 5, None, [], False, False)
        rows = ("FROM predictions_resolved WHERE prediction IS NOT NULL AND component IS DISTINCT FROM 'shadow' "
                "AND ts >= ? AND ts < ?")
        counts = {(t, v): n for t, w in enumerate((A, B)) for v, n in
                  con.execute(f"SELECT resolved_version, count(*) {rows} GROUP BY 1", [w.start, w.end]).fetchall()}
        cap = 100  # below every (window, version)'s rows, so the scan's bound applies
        sample = model_sample(con, inp.sel, inp.design, list(inp.routing_by), counts, cap=cap)
        got = pl.DataFrame({"t": sample.t, "version": sample.version}).group_by("t", "version").len()
        keeps = []
        for (t, v), n in counts.items():
            keep = min(SAMPLE_KEYS, int(np.ceil(SAMPLE_KEYS * cap / n)))
            w = (A, B)[t]
            want = con.execute(f"SELECT count(*) {rows} AND resolved_version = ? AND (request_key >> {SAMPLE_SHIFT}) < ?",
                               [w.start, w.end, v, keep]).fetchone()[0]
            have = got.filter((pl.col("t") == t) & (pl.col("version") == v))["len"].sum()
            assert have == want, (t, v, have, want)
            assert 0 < want <= n
            keeps.append(keep)
        # a real sample: every version's share, and so the scan's bound, is below all the keys
        assert max(keeps) < SAMPLE_KEYS
        assert len(sample.y) < sum(counts.values()) / 5
