"""Tests of the sample-scenario simulator (toolkit.samples) and `vdrift samples generate`.

Every scenario is checked against the logs it writes (not against the ground
truth it reports), and the ground truth is checked against its own logs and
against hand-derived bounds written out below.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import polars as pl
import pytest

from toolkit.cli import main
from toolkit.errors import InputError
from toolkit.samples import PROBLEM_KINDS, generate, simulate
from toolkit.samples import scenarios as S

HASH = {v.name: v.artifact_hash for v in S.VERSIONS}
ROWS = 20_000
APPROVED = "rate:prediction=approved"


def ts(t: dt.datetime) -> pl.Expr:
    """A naive-UTC time as a literal comparable with the tz-aware ts column."""
    return pl.lit(t).dt.replace_time_zone("UTC")


def ts_value(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def sims() -> dict:
    """One in-memory simulation per scenario (and `all`), 20k requests each."""
    names = ["canary", "rollback", "config_mismatch", "experiment", "covariate_shift", "clean", "all"]
    return {n: simulate(n, rows=ROWS, seed=7) for n in names}


def kinds(sim) -> list[tuple[str, str, str | None]]:
    return sorted((p.kind, p.component, p.region) for p in sim.ground_truth.problems)


def non_shadow(sim) -> pl.DataFrame:
    return sim.predictions.filter(pl.col("component") != "shadow")


# -- determinism and inputs ----------------------------------------------------
def test_same_seed_same_sample_other_seed_other_sample():
    a = simulate("all", rows=5_000, seed=3)
    b = simulate("all", rows=5_000, seed=3)
    c = simulate("all", rows=5_000, seed=4)
    assert a.predictions.equals(b.predictions)
    assert a.deployments.equals(b.deployments)
    assert a.ground_truth.to_json() == b.ground_truth.to_json()
    assert not a.predictions.equals(c.predictions)
    assert a.ground_truth.to_json() != c.ground_truth.to_json()


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_generate_is_byte_reproducible(tmp_path: Path, fmt: str):
    one = generate(tmp_path / "one", "all", rows=3_000, seed=11, fmt=fmt)
    generate(tmp_path / "two", "all", rows=3_000, seed=11, fmt=fmt)
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert names == sorted(["artifacts.csv", "deployments.jsonl", "ground_truth.json", f"predictions.{fmt}"])
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    assert one.files["predictions"] == f"predictions.{fmt}"


def test_bad_arguments_are_input_errors(tmp_path: Path):
    with pytest.raises(InputError, match="unknown scenario 'canry'"):
        simulate(["canry"], rows=2_000)
    with pytest.raises(InputError, match="rows must be at least"):
        simulate("all", rows=10)
    with pytest.raises(InputError, match="whole number"):
        simulate("all", rows=2.5e4)
    with pytest.raises(InputError, match="unknown format 'xlsx'"):
        generate(tmp_path, "clean", rows=2_000, fmt="xlsx")
    assert S.normalize_scenarios("all") == S.ALL
    assert S.normalize_scenarios(["covariate_shift", "clean", "covariate_shift"]) == ("covariate_shift", "clean")


# -- contract ---------------------------------------------------------------------
def test_predictions_follow_the_contract(sims):
    p = sims["all"].predictions
    assert p.columns[:15] == [
        "request_id", "ts", "model_version", "prediction", "score", "artifact_hash", "feature_version",
        "component", "cache_hit", "region", "instance_id", "entity_id", "experiment", "arm", "outcome",
    ]
    assert p.columns[15:] == [c["name"] for c in sims["all"].ground_truth.covariates]
    assert set(p["prediction"].unique()) == {"approved", "declined"}
    assert set(p["component"].unique()) == {"online", "cache", "batch", "shadow"}
    assert set(p["region"].unique()) == {"eu", "us", "apac"}
    assert p["ts"].min() >= ts_value(S.DATA_START)
    assert p["ts"].max() < ts_value(S.DATA_END)
    # request_id unique except shadow rows, which repeat an online request_id
    ns = non_shadow(sims["all"])
    assert ns["request_id"].n_unique() == ns.height == ROWS
    sh = p.filter(pl.col("component") == "shadow")
    assert sh.height > 0 and sh.join(ns, on="request_id", how="anti").height == 0
    assert set(sh["model_version"].unique()) == {"v2.0"}
    # cache_hit marks exactly the cache rows; prediction agrees with the version's threshold
    assert (p["cache_hit"] == (p["component"] == "cache")).all()
    thresholds = {v["version"]: v["decision_threshold"] for v in sims["all"].ground_truth.versions}
    resolved = p["artifact_hash"].cast(pl.String).replace_strict({h: v for v, h in HASH.items()})
    thr = resolved.replace_strict(thresholds, return_dtype=pl.Float64)
    assert ((p["score"] < thr) == (p["prediction"] == "approved")).all()
    # late labels: some recent outcomes missing, old ones present
    late = p.filter(pl.col("outcome").is_null())
    assert 0 < late.height < p.height
    assert late["ts"].median() > p["ts"].median()


def test_versions_score_differently_on_the_same_inputs(sims):
    """Shadow rows score the very same request with v2.0: compare with the served v1.5 answer."""
    p = sims["clean"].predictions
    pairs = p.filter(pl.col("component") == "online").join(
        p.filter(pl.col("component") == "shadow"), on="request_id", suffix="_shadow"
    )
    assert pairs.height > 500
    assert set(pairs["model_version"].unique()) == {"v1.5"}
    gap = (pairs["prediction_shadow"] == "approved").mean() - (pairs["prediction"] == "approved").mean()
    assert gap > 0.02  # v2.0 approves several points more than v1.5 on identical inputs
    rates = {v["version"]: v["approval_rate_on_all_inputs"] for v in sims["clean"].ground_truth.versions}
    values = sorted(rates.values())
    assert min(b - a for a, b in zip(values, values[1:], strict=False)) > 0.02


def test_routing_is_confounded_with_inputs_by_region(sims):
    ns = non_shadow(sims["all"]).with_columns(pl.col("amount").log().alias("log_amount"))
    by_region = ns.group_by("region").agg(
        pl.col("log_amount").mean(), (pl.col("channel") == "app").mean().alias("app"),
        (pl.col("merchant_category") == "gaming").mean().alias("gaming"),
    ).sort("region")
    stats = {r["region"]: r for r in by_region.iter_rows(named=True)}
    assert stats["us"]["log_amount"] - stats["eu"]["log_amount"] > 0.2
    assert stats["apac"]["app"] - stats["eu"]["app"] > 0.15
    assert stats["apac"]["gaming"] - stats["eu"]["gaming"] > 0.1
    # the canary and the experiment only touch their own regions
    v16 = ns.filter(pl.col("model_version") == "v1.6")
    assert set(v16["region"].unique()) == {"eu", "apac"}


# -- scenarios plant what they say ----------------------------------------------------
def test_canary(sims):
    sim = sims["canary"]
    on = non_shadow(sim).filter(pl.col("component") == "online")
    eu_after = on.filter((pl.col("region") == "eu") & (pl.col("ts") >= ts(S.CANARY_START)))
    share = (eu_after["model_version"] == "v1.6").mean()
    se = math.sqrt(0.1 * 0.9 / eu_after.height)
    assert abs(share - 0.10) < 4 * se
    assert on.filter((pl.col("model_version") == "v1.6") & ((pl.col("region") != "eu") | (pl.col("ts") < ts(S.CANARY_START)))).height == 0
    assert set(on.filter(pl.col("model_version") == "v1.6")["instance_id"].unique()) == {"eu-5"}
    d = sim.deployments.filter(pl.col("version") == "v1.6")
    assert d["event"].to_list() == ["rollout_start"]
    row = d.row(0, named=True)
    assert row["traffic_pct"] == 10 and row["actor"] and row["scope"] == "eu"
    assert S.BASELINE[0] <= row["expected_end"].replace(tzinfo=None) < S.COMPARISON[0] + dt.timedelta(days=2)
    (stuck,) = [p for p in sim.ground_truth.problems if p.kind == "stuck_rollout"]
    assert (stuck.component, stuck.region, stuck.versions) == ("online", "eu", ("v1.5", "v1.6"))
    assert stuck.start == S.CANARY_EXPECTED_END and stuck.end == S.DATA_END


def test_rollback_cache_pipeline_and_batch_lag(sims):
    sim = sims["rollback"]
    p = non_shadow(sim)
    us = p.filter(pl.col("region") == "us")
    rb = ts(S.ROLLBACK_AT)
    online = us.filter(pl.col("component") == "online")
    assert set(online.filter((pl.col("ts") >= ts(S.ROLLBACK_DEPLOY)) & (pl.col("ts") < rb))["model_version"].unique()) == {"v2.0"}
    assert set(online.filter(pl.col("ts") >= rb)["model_version"].unique()) == {"v1.5"}
    # cache keeps v2.0 answers after the rollback, none after the flush
    cache_v20 = us.filter((pl.col("component") == "cache") & (pl.col("model_version") == "v2.0") & (pl.col("ts") >= rb))
    assert cache_v20.height > 0
    assert cache_v20["ts"].max() < ts_value(S.CACHE_FLUSH_AT)
    # v1.5 gets v2.0's feature version until the pipeline is fixed
    wrong_fv = p.filter((pl.col("model_version") == "v1.5") & (pl.col("feature_version") == "fp-4"))
    assert wrong_fv.height > 0
    assert set(wrong_fv["region"].unique()) == {"us"}
    assert wrong_fv["ts"].min() >= ts_value(S.ROLLBACK_AT) and wrong_fv["ts"].max() < ts_value(S.FEATURE_PIPELINE_FIXED_AT)
    assert set(wrong_fv["component"].unique()) == {"online", "cache"}
    # batch stays on v2.0 for two nights after the rollback
    batch_v20 = us.filter((pl.col("component") == "batch") & (pl.col("model_version") == "v2.0") & (pl.col("ts") >= rb))
    assert batch_v20["ts"].dt.date().n_unique() == 2
    assert batch_v20["ts"].max() < ts_value(S.BATCH_FIXED_AT)
    events = sim.deployments.filter(pl.col("event") == "rollback")
    assert sorted(events["component"].to_list()) == ["batch", "cache", "feature_pipeline", "serving"]
    assert events.filter(pl.col("component") == "serving")["version"].to_list() == ["v1.5"]
    assert kinds(sim) == sorted([
        ("incomplete_rollback", "cache", "us"), ("stale_cache", "cache", "us"),
        ("preprocessing_mismatch", "online", "us"), ("preprocessing_mismatch", "cache", "us"),
        ("incomplete_rollback", "batch", "us"), ("batch_online_divergence", "batch", "us"),
    ])
    # every planted window holds its evidence
    for prob, rows in (("stale_cache", cache_v20), ("incomplete_rollback", batch_v20)):
        window = [q for q in sim.ground_truth.problems if q.kind == prob and q.component == rows["component"][0]][0]
        assert rows["ts"].min() >= ts_value(window.start) and rows["ts"].max() < ts_value(window.end)


def test_config_mismatch_loads_old_artifact_under_new_label(sims):
    sim = sims["config_mismatch"]
    on = non_shadow(sim).filter(pl.col("component") == "online")
    after = on.filter((pl.col("region") == "eu") & (pl.col("ts") >= ts(S.CONFIG_CHANGE_AT)))
    assert set(after["model_version"].unique()) == {"v1.5"}
    assert set(after["artifact_hash"].unique()) == {HASH["v1.4"]}
    before_or_elsewhere = on.filter((pl.col("region") != "eu") | (pl.col("ts") < ts(S.CONFIG_CHANGE_AT)))
    assert set(before_or_elsewhere["artifact_hash"].unique()) == {HASH["v1.5"]}
    (change,) = sim.deployments.filter(pl.col("event") == "config_change").iter_rows(named=True)
    assert change["scope"] == "eu" and change["artifact_hash"] == HASH["v1.5"]
    (mismatch,) = [p for p in sim.ground_truth.problems if p.kind == "artifact_mismatch"]
    assert (mismatch.region, mismatch.versions, mismatch.reported_version) == ("eu", ("v1.4",), "v1.5")
    assert mismatch.start == S.CONFIG_CHANGE_AT


def test_experiment_left_running(sims):
    sim = sims["experiment"]
    on = non_shadow(sim).filter(pl.col("component") == "online")
    exp = on.filter(pl.col("experiment") == S.EXPERIMENT_NAME)
    assert set(exp["region"].unique()) == {"apac"} and exp["ts"].min() >= ts_value(S.EXPERIMENT_START)
    assert exp.height == on.filter((pl.col("region") == "apac") & (pl.col("ts") >= ts(S.EXPERIMENT_START))).height
    assert ((exp["arm"] == "treatment") == (exp["model_version"] == "v1.6")).all()
    assert set(exp["arm"].unique()) == {"control", "treatment"}
    # arms are sticky per customer, about half the customers each
    per_entity = exp.group_by("entity_id").agg(pl.col("arm").n_unique().alias("arms"), pl.col("arm").first())
    assert per_entity["arms"].max() == 1
    share = (per_entity["arm"] == "treatment").mean()
    assert abs(share - 0.5) < 4 * math.sqrt(0.25 / per_entity.height)
    assert on.filter(pl.col("experiment").is_not_null() & (pl.col("region") != "apac")).height == 0
    d = sim.deployments.filter(pl.col("experiment") == S.EXPERIMENT_NAME)
    assert d["event"].to_list() == ["experiment_start"]
    row = d.row(0, named=True)
    assert row["traffic_pct"] == 50 and row["actor"] and row["version"] == "v1.6"
    assert row["expected_end"].replace(tzinfo=None) < S.DATA_END
    (ab,) = [p for p in sim.ground_truth.problems if p.kind == "abandoned_experiment"]
    assert (ab.region, ab.versions, ab.start) == ("apac", ("v1.5", "v1.6"), S.EXPERIMENT_EXPECTED_END)


def test_covariate_shift_moves_inputs_not_routing(sims):
    sim = sims["covariate_shift"]
    p = non_shadow(sim).with_columns((pl.col("ts") >= ts(S.COMPARISON[0])).alias("b"))
    g = p.group_by("b").agg(
        pl.col("amount").log().mean().alias("log_amount"),
        (pl.col("account_age_days") < 60).mean().alias("young"),
        (pl.col("region") == "apac").mean().alias("apac"),
    ).sort("b")
    a, b = g.row(0, named=True), g.row(1, named=True)
    assert b["log_amount"] - a["log_amount"] > 0.05
    assert b["young"] > a["young"] + 0.03
    assert b["apac"] > a["apac"] + 0.03
    assert set(p["model_version"].unique()) == {"v1.5"}
    assert sim.ground_truth.problems == ()


def test_clean_has_one_version_everywhere_and_no_problem(sims):
    sim = sims["clean"]
    p = non_shadow(sim)
    assert set(p["model_version"].unique()) == {"v1.5"}
    assert set(p["artifact_hash"].unique()) == {HASH["v1.5"]}
    assert set(p["feature_version"].unique()) == {"fp-3"}
    assert p["experiment"].null_count() == p.height
    assert sim.ground_truth.problems == ()
    d = sim.deployments
    assert d["ts"].max() < ts_value(S.DATA_START)  # everything declared happened before the data
    assert d["actor"].null_count() == 0
    start = d.filter(pl.col("event") == "rollout_start").row(0, named=True)
    complete = d.filter(pl.col("event") == "rollout_complete").row(0, named=True)
    assert complete["ts"] <= start["expected_end"] and complete["version"] == start["version"] == "v1.5"


def test_all_combines_every_plant(sims):
    truth = sims["all"].ground_truth
    assert truth.scenarios == S.ALL
    got = {p.kind for p in truth.problems}
    assert got == set(PROBLEM_KINDS)
    for p in truth.problems:
        assert p.start < p.end and S.DATA_START <= p.start and p.end <= S.DATA_END


def test_prediction_divergence_matches_retries_in_the_logs(sims):
    """Rows with the same entity and identical inputs answered by different versions, differently."""
    sim = sims["all"]
    keys = ["entity_id", "amount", "merchant_category", "account_age_days", "channel"]
    p = non_shadow(sim).select(keys + ["request_id", "artifact_hash", "prediction", "region", "ts"])
    pairs = p.join(p, on=keys, suffix="_2").filter(pl.col("request_id") < pl.col("request_id_2"))
    diverging = pairs.filter((pl.col("artifact_hash") != pl.col("artifact_hash_2")) & (pl.col("prediction") != pl.col("prediction_2")))
    assert diverging.height > 0
    planted = [q for q in sim.ground_truth.problems if q.kind == "prediction_divergence"]
    assert sum(q.evidence["diverging"] for q in planted) == diverging.height
    crossing = pairs.filter(pl.col("artifact_hash") != pl.col("artifact_hash_2"))
    assert sum(q.evidence["pairs"] for q in planted) <= crossing.height
    assert {q.region for q in planted} == set(diverging["region"].unique())
    for q in planted:
        a, b = (HASH[v] for v in q.versions)
        rows = diverging.filter(
            (pl.col("region") == q.region)
            & (((pl.col("artifact_hash") == a) & (pl.col("artifact_hash_2") == b))
               | ((pl.col("artifact_hash") == b) & (pl.col("artifact_hash_2") == a)))
        )
        assert rows.height == q.evidence["diverging"] > 0
        assert rows["ts"].min() >= ts_value(q.start) and rows["ts_2"].max() < ts_value(q.end)


# -- ground truth numbers ----------------------------------------------------------
def test_observed_values_are_the_logged_means(sims):
    for name in ("all", "clean"):
        sim = sims[name]
        p = non_shadow(sim).with_columns((pl.col("ts") >= ts(S.COMPARISON[0])).alias("b"))
        for metric, expr in ((APPROVED, (pl.col("prediction") == "approved").cast(pl.Float64)), ("mean:score", pl.col("score"))):
            obs = p.group_by("b").agg(expr.mean().alias("v")).sort("b")["v"].to_list()
            eff = sim.ground_truth.attribution[metric]
            assert eff.baseline == pytest.approx(obs[0], abs=1e-12)
            assert eff.comparison == pytest.approx(obs[1], abs=1e-12)
            assert eff.n_baseline + eff.n_comparison == ROWS


def test_effects_add_up_to_observed_total_up_to_sampling_noise():
    """The gap total - (data + version) is routing noise: about N(0, se), shrinking like 1/sqrt(rows)."""
    small = simulate("all", rows=20_000, seed=5).ground_truth
    large = simulate("all", rows=400_000, seed=5).ground_truth
    for metric in (APPROVED, "mean:score"):
        for truth in (small, large):
            e = truth.attribution[metric]
            assert e.residual == 0.0
            assert e.data_drift + e.version_drift + e.residual + e.sampling_noise == pytest.approx(e.total, abs=1e-12)
            assert abs(e.sampling_noise) <= 4 * e.sampling_noise_se
            # the replay's own period means track the observed ones
            assert abs(e.m_aa - e.baseline) < 0.01 and abs(e.m_bb - e.comparison) < 0.01
        # 20x the rows: the standard error shrinks by about sqrt(20) = 4.5
        assert large.attribution[metric].sampling_noise_se < small.attribution[metric].sampling_noise_se / 3
    e = large.attribution[APPROVED]
    assert abs(e.sampling_noise) < 0.002 < abs(e.total)


def test_no_data_drift_without_covariate_shift():
    """clean + canary: inputs drawn from the same distribution in both weeks.

    The data effect is then a difference of two means of a [0, 1] quantity
    over independent weeks, so its standard deviation is at most
    sqrt(p (1 - p) (1/n_A + 1/n_B)) (about 0.0016 at 100k requests a week).
    """
    sim = simulate(["clean", "canary"], rows=200_000, seed=2)
    e = sim.ground_truth.attribution[APPROVED]
    sd = math.sqrt(e.m_aa * (1 - e.m_aa) * (1 / e.n_baseline + 1 / e.n_comparison))
    assert abs(e.data_drift) < 4 * sd
    # Version drift by hand: only eu's routing changes (the canary runs 3.6 of 7 baseline days and
    # the whole comparison week), so version drift ~ share(eu) * dPi(v1.6 | eu) * (rate(v1.6) - rate(v1.5)),
    # with the approval gap measured on eu online traffic randomised between the two after the start.
    p = non_shadow(sim)
    eu_share = (p["region"] == "eu").mean()
    r = e.routing
    d_pi = r["comparison"]["eu"]["v1.6"] - r["baseline"]["eu"]["v1.6"]
    online_share = p.filter(pl.col("region") == "eu")["component"].eq("online").mean()
    assert r["comparison"]["eu"]["v1.6"] == pytest.approx(0.10 * online_share, rel=0.02)
    canary = p.filter((pl.col("region") == "eu") & (pl.col("component") == "online") & (pl.col("ts") >= ts(S.CANARY_START)))
    rates = canary.group_by("model_version").agg((pl.col("prediction") == "approved").mean().alias("rate"))
    rate = dict(zip(rates["model_version"].cast(pl.String), rates["rate"], strict=True))
    by_hand = eu_share * d_pi * (rate["v1.6"] - rate["v1.5"])
    assert by_hand < 0 and e.version_drift == pytest.approx(by_hand, rel=0.25)


def test_no_version_drift_when_routing_does_not_change():
    truth = simulate(["clean", "covariate_shift"], rows=50_000, seed=2).ground_truth
    for metric in (APPROVED, "mean:score"):
        e = truth.attribution[metric]
        assert e.version_drift == pytest.approx(0.0, abs=1e-12)
        assert e.routing["baseline"] == e.routing["comparison"] == {r: {"v1.5": 1.0} for r in S.REGIONS}
    assert truth.attribution[APPROVED].data_drift < -0.02


def test_replay_routing_matches_the_plan(sims):
    """Pi_b(v | region) for the rollback: us online is v2.0 from 11-04 10:00 to 11-10 15:00.

    Hand computation for the baseline week: us v2.0 share of requests ~ the
    share of us traffic after 2026-11-04T10:00 (4.58 of 7 days, weighted by
    the daily cycle); with cache and batch following the same plan the
    replay's baseline Pi(v2.0 | us) must lie near 4.58/7 = 0.655.
    """
    r = sims["rollback"].ground_truth.attribution[APPROVED].routing
    assert r["baseline"]["us"]["v2.0"] == pytest.approx(4.5833 / 7, abs=0.03)
    assert r["baseline"]["eu"] == {"v1.5": 1.0}
    assert 0 < r["comparison"]["us"]["v2.0"] < r["baseline"]["us"]["v2.0"]


def test_ground_truth_json_round_trips(tmp_path: Path):
    truth = generate(tmp_path, "all", rows=5_000, seed=1, fmt="csv")
    data = json.loads((tmp_path / "ground_truth.json").read_text())
    assert data["scenarios"] == list(S.ALL) and data["seed"] == 1 and data["rows"] == 5_000
    assert data["periods"]["baseline"] == {"start": "2026-11-02T00:00:00.000Z", "end": "2026-11-09T00:00:00.000Z"}
    for metric, eff in truth.attribution.items():
        assert data["attribution"][metric]["data_drift"] == eff.data_drift  # full precision
        assert data["attribution"][metric]["version_drift"] == eff.version_drift
    assert {c["name"] for c in data["covariates"]} == {"amount", "merchant_category", "account_age_days", "channel"}
    for p in data["problems"]:
        assert p["kind"] in PROBLEM_KINDS
        assert set(p) >= {"kind", "component", "region", "instance_id", "versions", "reported_version", "start", "end", "note"}
    text = truth.summary()
    assert "stuck_rollout" in text and f"data {truth.attribution[APPROVED].data_drift:+.4f}" in text
    assert "<table>" in truth._repr_html_()
    frame = truth.to_frame()
    assert frame.height == 16 and truth.effect(APPROVED, "total") == truth.attribution[APPROVED].total


def test_written_files_ingest_cleanly(tmp_path: Path):
    from toolkit import Store

    generate(tmp_path, "all", rows=4_000, seed=9, fmt="csv")
    with Store(tmp_path / "s.duckdb") as store:
        store.ingest("predictions", [tmp_path / "predictions.csv"])
        store.ingest("deployments", [tmp_path / "deployments.jsonl"])
        store.ingest("artifacts", [tmp_path / "artifacts.csv"])
        counts = store.counts()
        assert counts["quarantine"] == 0 and counts["artifacts"] == 4
        status = store.sql(
            "SELECT version_status, region, min(ts) AS first FROM predictions_resolved "
            "WHERE version_status <> 'verified' GROUP BY ALL"
        )
    assert status["version_status"].to_list() == ["mismatch"] and status["region"].to_list() == ["eu"]
    assert status["first"][0] >= S.CONFIG_CHANGE_AT


# -- CLI -------------------------------------------------------------------------
def test_cli_writes_all_files(tmp_path: Path, capsys):
    out = tmp_path / "demo"
    code = main(["samples", "generate", "--scenario", "canary", "--scenario", "rollback", "--rows", "3000",
                 "--seed", "4", "--format", "jsonl", str(out)])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["artifacts.csv", "deployments.jsonl", "ground_truth.json", "predictions.jsonl"]
    text = capsys.readouterr().out
    assert "stuck_rollout" in text and "stale_cache" in text and "3,000 requests" in text
    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["ts"].endswith("Z")
    assert json.loads((out / "ground_truth.json").read_text())["scenarios"] == ["canary", "rollback"]


def test_cli_partition_by_day_and_errors(tmp_path: Path, capsys):
    out = tmp_path / "parts"
    assert main(["samples", "generate", "--scenario", "clean", "--rows", "2000", "--partition-by-day", str(out)]) == 0
    days = sorted(p.name for p in (out / "predictions").iterdir())
    assert days[0] == "day=2026-11-02" and days[-1] == "day=2026-11-15" and len(days) == 14
    total = sum(pl.read_parquet(d / "part.parquet").height for d in (out / "predictions").iterdir())
    assert total == json.loads((out / "ground_truth.json").read_text())["rows_written"]
    assert main(["samples", "generate", "--rows", "5", str(tmp_path / "x")]) == 2
    assert "rows must be at least" in capsys.readouterr().err


@pytest.mark.slow
def test_one_million_rows():
    # how long it takes is measured in benchmarks/ (generate.py), not asserted here: no test depends on speed
    sim = simulate("all", rows=1_000_000, seed=0)
    assert sim.ground_truth.rows == 1_000_000
    assert sim.predictions.height == sim.ground_truth.rows_written >= 1_000_000


def test_streaming_generation_matches_the_in_memory_sample(tmp_path: Path, monkeypatch):
    """Large samples are written a day at a time (each day drawn twice): same rows, same truth."""
    from toolkit.samples import writers

    monkeypatch.setattr(writers, "KEEP_IN_MEMORY_ROWS", 0)
    truth = generate(tmp_path, ["rollback", "experiment"], rows=6_000, seed=21, fmt="parquet")
    sim = simulate(["rollback", "experiment"], rows=6_000, seed=21)
    written = pl.read_parquet(tmp_path / "predictions.parquet")
    assert written.height == sim.predictions.height == truth.rows_written
    assert written.with_columns(pl.all().cast(pl.String)).equals(sim.predictions.with_columns(pl.all().cast(pl.String)))
    assert json.loads(truth.to_json())["attribution"] == json.loads(sim.ground_truth.to_json())["attribution"]
    assert truth.problems == sim.ground_truth.problems
