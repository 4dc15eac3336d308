"""Real-data replay cases (toolkit.samples.real): committed tables, routing, exact truth, files.

These tests read the committed replay tables only; scikit-learn and the data
packages (the ``realdata`` extra) are needed to rebuild the tables, not here.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from toolkit.samples import GroundTruth
from toolkit.samples.real import (
    CASES,
    case_names,
    expected_sampling_noise,
    load_case,
    load_case_store,
    metrics_of,
    replay_case,
    write_case,
)

ROOT = Path(__file__).resolve().parents[2] / "data" / "samples" / "real"
#: A numeric covariate per case whose two windows barely overlap (real seasonal / ageing shift).
POOR_OVERLAP = {"flights": "temp", "nlswork": "age"}


@pytest.fixture(scope="module")
def routed() -> dict:
    return {name: replay_case(name, seed=0) for name in CASES}


def test_committed_cases_are_listed_and_compact():
    assert set(CASES) <= set(case_names())
    for name in CASES:
        assert (ROOT / name / "replay.parquet").stat().st_size < 5_000_000


@pytest.mark.parametrize("name", CASES)
def test_replay_table_follows_the_case_description(name: str):
    case, table = load_case(name)
    assert case["name"] == name and table.height == case["rows"] >= 20_000
    assert table["request_id"].n_unique() == table.height
    covs = case["covariates"]
    assert len(covs) >= 8
    assert {c["type"] for c in covs} == {"DOUBLE", "VARCHAR"}
    assert max(table[c["name"]].n_unique() for c in covs if c["type"] == "VARCHAR") >= 50  # high-cardinality
    versions = [v["name"] for v in case["versions"]]
    assert len(versions) >= 2 and len({v["model_type"] for v in case["versions"]}) >= 2
    for v in case["versions"]:
        assert re.fullmatch(r"[0-9a-f]{64}", v["artifact_hash"])
        assert table[f"pred__{v['name']}"].is_in(case["labels"]).all()
        score = table[f"score__{v['name']}"]
        assert score.null_count() == 0 and score.min() >= 0 and score.max() <= 1
    assert len({v["artifact_hash"] for v in case["versions"]}) == len(versions)
    assert table["outcome"].is_in(case["labels"]).all()
    for c in covs:  # missing values are nulls, never NaN (NaN breaks SQL aggregates downstream)
        if c["type"] == "DOUBLE":
            assert not table[c["name"]].is_nan().any()
    assert set(table["region"].unique()) == set(case["region"]["values"])
    # versions genuinely differ on the same inputs
    a, b = (table[f"pred__{v}"] for v in versions[:2])
    assert 0.05 < (a != b).mean() < 0.6
    # the real time order is kept: the source time never goes backwards as ts grows
    for period in ("baseline", "comparison"):
        part = table.filter(pl.col("period") == period).sort("ts", maintain_order=True)
        src = part["source_time"].to_list()
        assert src == sorted(src)


@pytest.mark.parametrize("name", CASES)
def test_covariate_overlap_is_poor(name: str):
    """The baseline and comparison ranges of one numeric covariate share less than half of the rows."""
    _, table = load_case(name)
    col = POOR_OVERLAP[name]
    a = table.filter(pl.col("period") == "baseline")[col].drop_nulls()
    b = table.filter(pl.col("period") == "comparison")[col].drop_nulls()
    lo, hi = max(a.quantile(0.01), b.quantile(0.01)), min(a.quantile(0.99), b.quantile(0.99))
    both = pl.concat([a, b])
    share = ((both >= lo) & (both <= hi)).mean()
    assert share < 0.5, f"{col}: {share:.2f} of rows in the common range"


@pytest.mark.parametrize("name", CASES)
def test_truth_identities(routed, name: str):
    frames, truth = routed[name]
    case, _ = load_case(name)
    assert isinstance(truth, GroundTruth)
    assert tuple(truth.attribution) == metrics_of(case)
    preds = frames["predictions"]
    period = pl.when(pl.col("ts") < dt.datetime(2026, 11, 9, tzinfo=dt.UTC)).then(0).otherwise(1)
    pos = case["positive_label"]
    observed = preds.group_by(period.alias("p")).agg(
        (pl.col("prediction") == pos).mean().alias("rate"),
        pl.col("score").mean().alias("score"),
        (pl.col("prediction") == pl.col("outcome")).mean().alias("acc"),
    ).sort("p")
    noise = expected_sampling_noise(name)
    for metric, col in zip(metrics_of(case), ("rate", "score", "acc"), strict=True):
        e = truth.attribution[metric]
        assert e.residual == 0.0
        assert e.data_drift + e.version_drift + e.sampling_noise == pytest.approx(e.total, abs=1e-12)
        assert e.data_drift + e.version_drift == pytest.approx(e.m_bb - e.m_aa, abs=1e-12)
        assert (e.baseline, e.comparison) == pytest.approx(tuple(observed[col]), abs=1e-12)
        # M(A,A) and M(B,B) are the observed means up to the routing draws (and the within-window trend)
        assert abs(e.m_aa - e.baseline) < 0.02 and abs(e.m_bb - e.comparison) < 0.02
        assert abs(e.sampling_noise - noise[metric]) < 5 * e.sampling_noise_se + 1e-4
        assert truth.effect(metric, "version_drift") == e.version_drift
    rate = truth.attribution[f"rate:prediction={pos}"]
    assert abs(rate.version_drift) > 0.005  # a real version drift of about a point or more
    json.loads(truth.to_json())
    assert "planted problems: 0" in truth.summary()


@pytest.mark.parametrize("name", CASES)
def test_routing_truth_follows_the_plan(routed, name: str):
    _, truth = routed[name]
    case, _ = load_case(name)
    roles = case["routing"]["roles"]
    rt = truth.attribution["mean:score"].routing
    assert rt["baseline"][roles["canary"]] == {"v1": 1.0}
    assert 0.05 < rt["comparison"][roles["canary"]]["v2"] < 0.15
    assert rt["baseline"][roles["rollback"]]["v3"] > 0.5 > rt["comparison"][roles["rollback"]]["v3"]
    assert rt["comparison"][roles["experiment"]]["v2"] > rt["baseline"][roles["experiment"]]["v2"] > 0
    for period in rt.values():
        for shares in period.values():
            assert sum(shares.values()) == pytest.approx(1.0)


def _allowed(deployments: pl.DataFrame, scope: str, ts: np.ndarray) -> list[set[str]]:
    """Versions the declared history allows in a scope at each time (read independently of the router)."""
    events = deployments.filter((pl.col("component") == "serving") & pl.col("scope").is_in(["all", scope]))
    changes: list[tuple[dt.datetime, set[str]]] = []
    base, rollout, experiment = None, None, None
    for ev in events.iter_rows(named=True):
        kind, v = ev["event"], ev["version"]
        if kind in ("deploy", "rollback", "rollout_complete"):
            base, rollout = v, None
        elif kind in ("rollout_start", "rollout_step"):
            rollout = v
        elif kind == "experiment_start":
            experiment = v
        elif kind == "experiment_end":
            experiment = None
        changes.append((ev["ts"], {x for x in (base, rollout, experiment) if x}))
    times = np.array([np.datetime64(t.replace(tzinfo=None), "ms") for t, _ in changes])
    at = np.searchsorted(times, ts, side="right") - 1
    assert (at >= 0).all()
    return [changes[i][1] for i in at]


@pytest.mark.parametrize("name", CASES)
def test_logged_rows_follow_the_deployment_history(routed, name: str):
    frames, _ = routed[name]
    preds, dep, art = frames["predictions"], frames["deployments"], frames["artifacts"]
    registry = dict(zip(art["version"], art["artifact_hash"], strict=True))
    assert (preds["artifact_hash"] == preds["model_version"].replace_strict(registry)).all()
    for scope in preds["region"].unique():
        part = preds.filter(pl.col("region") == scope)
        ts = part["ts"].dt.replace_time_zone(None).to_numpy().astype("datetime64[ms]")
        allowed = _allowed(dep, scope, ts)
        bad = [v for v, ok in zip(part["model_version"], allowed, strict=True) if v not in ok]
        assert not bad, f"{scope}: {len(bad)} rows served by an undeclared version"
    exp = preds.filter(pl.col("experiment").is_not_null())
    assert set(exp["arm"]) == {"control", "treatment"}
    treat = exp["arm"] == "treatment"
    assert (exp.filter(treat)["model_version"] == "v2").all()
    assert 0.45 < treat.mean() < 0.55
    assert preds.filter(pl.col("instance_id").str.ends_with("-canary"))["model_version"].unique().to_list() == ["v2"]


def test_same_seed_same_case_other_seed_other_routing():
    f1, t1 = replay_case("nlswork", seed=5)
    f2, t2 = replay_case("nlswork", seed=5)
    f3, t3 = replay_case("nlswork", seed=6)
    assert t1.to_json() == t2.to_json()
    for key in f1:
        assert f1[key].equals(f2[key])
    assert not f1["predictions"]["model_version"].equals(f3["predictions"]["model_version"])
    # all records kept: data and version drift depend on the records and the plan only
    for metric, e in t1.attribution.items():
        assert t3.attribution[metric].data_drift == pytest.approx(e.data_drift, abs=1e-12)
        assert t3.attribution[metric].version_drift == pytest.approx(e.version_drift, abs=1e-12)
        assert t3.attribution[metric].sampling_noise != e.sampling_noise


def test_fraction_draws_a_subsample():
    _, full = replay_case("flights", seed=0)
    fa, ta = replay_case("flights", seed=1, fraction=0.25)
    fb, tb = replay_case("flights", seed=2, fraction=0.25)
    assert ta.rows == fa["predictions"].height == 10_000
    assert not fa["predictions"]["request_id"].equals(fb["predictions"]["request_id"])
    assert fa["predictions"]["request_id"].is_unique().all()
    metric = "rate:prediction=delayed"
    assert ta.attribution[metric].version_drift != tb.attribution[metric].version_drift
    assert abs(ta.attribution[metric].version_drift - full.attribution[metric].version_drift) < 0.01


def test_bad_arguments():
    from toolkit.errors import InputError

    with pytest.raises(InputError, match="unknown real-data case"):
        replay_case("nope")
    with pytest.raises(InputError, match="fraction"):
        replay_case("flights", fraction=0.0)
    with pytest.raises(InputError, match="seed"):
        replay_case("flights", seed=-1)


def test_written_files_ingest_cleanly(tmp_path: Path):
    from toolkit import Store

    truth = write_case(tmp_path, "flights", seed=2, fraction=0.2)
    assert set(truth.files.values()) == {p.name for p in tmp_path.iterdir()}
    written = json.loads((tmp_path / "ground_truth.json").read_text())
    assert written["attribution"]["accuracy"]["version_drift"] == truth.attribution["accuracy"].version_drift
    with Store(tmp_path / "s.duckdb") as store:
        reports = [store.ingest(kind, [tmp_path / truth.files[kind]])
                   for kind in ("predictions", "deployments", "artifacts")]
        for rep in reports:
            assert rep.ok and rep.quarantined == 0 and rep.rows_read == rep.accepted > 0
        assert reports[0].accepted == truth.rows
        status = store.sql("SELECT version_status, count(*) AS n FROM predictions_resolved GROUP BY ALL")
        assert status["version_status"].to_list() == ["verified"]
        cols = store.columns("predictions")
        assert {c["name"] for c in truth.covariates} <= set(cols)


def test_load_case_store_matches_the_files():
    store, truth = load_case_store("nlswork", seed=1, fraction=0.3)
    with store:
        n = store.sql("SELECT count(*) AS n, count(DISTINCT resolved_version) AS v FROM predictions_resolved")
        assert n["n"][0] == truth.rows and n["v"][0] == 3
        assert store.sql("SELECT count(*) AS n FROM deployments")["n"][0] == 8
        rate = store.sql(
            "SELECT avg(CASE WHEN prediction = 'high' THEN 1.0 ELSE 0.0 END) AS r FROM predictions "
            "WHERE ts < TIMESTAMP '2026-11-09'"
        )["r"][0]
    assert rate == pytest.approx(truth.attribution["rate:prediction=high"].baseline, abs=1e-12)


def test_cli_samples_real(tmp_path: Path, capsys):
    from toolkit.cli import main

    out = tmp_path / "case"
    assert main(["samples", "real", "nlswork", str(out), "--seed", "4", "--fraction", "0.2"]) == 0
    text = capsys.readouterr().out
    assert "rate:prediction=high" in text and "vdrift ingest predictions" in text
    truth = json.loads((out / "ground_truth.json").read_text())
    assert truth["seed"] == 4 and truth["rows"] == round(0.2 * load_case("nlswork")[0]["rows"])
    assert truth["generator"].startswith("toolkit.samples.real:nlswork")
    with pytest.raises(SystemExit):
        main(["samples", "real", "unknown-case", str(out)])
