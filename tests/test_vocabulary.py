"""A team's own vocabulary: value maps in mapping files, ungoverned components, reasons naming values, covariates."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import SAMPLES, write
from toolkit import Store, audit
from toolkit.cli import main

DEMO = SAMPLES / "demo"
WINDOW = ("2026-11-02", "2026-11-16")
PRED_COMPONENTS = {"online": "api", "cache": "edge-cache", "batch": "nightly"}
DEP_COMPONENTS = {"serving": "api", "cache": "edge-cache", "batch": "nightly", "feature_pipeline": "features"}
EVENTS = {"deploy": "ship", "rollout_start": "canary", "rollout_step": "ramp", "rollout_complete": "promote",
          "rollback": "revert"}


def _team_files(tmp: Path) -> tuple[Path, Path]:
    """The demo logs as a team with its own names writes them: components, events and Y/N booleans."""
    with gzip.open(DEMO / "predictions.csv.gz", "rt") as fh:
        preds = pl.read_csv(fh, infer_schema_length=0)
    preds = preds.with_columns(
        pl.col("component").replace(PRED_COMPONENTS),
        pl.col("cache_hit").replace({"true": "Y", "false": "N"}),
    )
    pred_path = tmp / "team_predictions.csv"
    preds.write_csv(pred_path)
    lines = []
    for line in (DEMO / "deployments.jsonl").read_text().splitlines():
        row = json.loads(line)
        row["component"] = DEP_COMPONENTS.get(row["component"], row["component"])
        row["event"] = EVENTS.get(row["event"], row["event"])
        lines.append(json.dumps(row))
    dep_path = write(tmp / "team_deployments.jsonl", "\n".join(lines) + "\n")
    return pred_path, dep_path


def _mappings(tmp: Path) -> tuple[Path, Path]:
    pred = write(tmp / "predictions.toml", "[values.component]\n"
                 + "".join(f'"{team}" = "{ours}"\n' for ours, team in PRED_COMPONENTS.items())
                 + '[values.cache_hit]\nY = true\nN = false\n')
    dep = write(tmp / "deployments.toml", "[values.component]\n"
                + "".join(f'"{team}" = "{ours}"\n' for ours, team in DEP_COMPONENTS.items())
                + "[values.event]\n" + "".join(f'"{team}" = "{ours}"\n' for ours, team in EVENTS.items()))
    return pred, dep


def _load(path: Path, predictions: Path, deployments: Path, pred_map=None, dep_map=None) -> Store:
    store = Store(path)
    store.ingest("artifacts", DEMO / "artifacts.csv")
    d = store.ingest("deployments", deployments, mapping=dep_map)
    p = store.ingest("predictions", predictions, mapping=pred_map)
    assert d.rows_read == d.accepted + d.quarantined and p.rows_read == p.accepted + p.quarantined
    return store


def test_a_team_log_mapped_by_values_audits_like_the_contract_named_log(tmp_path):
    pred, dep = _team_files(tmp_path)
    pred_map, dep_map = _mappings(tmp_path)
    with _load(tmp_path / "ours.duckdb", DEMO / "predictions.csv.gz", DEMO / "deployments.jsonl") as ours, \
         _load(tmp_path / "team.duckdb", pred, dep, pred_map, dep_map) as team:
        assert team.counts()["quarantine"] == 0
        a, b = audit(ours, start=WINDOW[0], end=WINDOW[1]), audit(team, start=WINDOW[0], end=WINDOW[1])
        assert a.findings.height > 0
        assert a.findings.drop("finding_id").equals(b.findings.drop("finding_id"))
        assert a.overall_score == pytest.approx(b.overall_score)
        assert b.governed_share == pytest.approx(1.0) and b.warnings() == ()
        cache = team.con.execute("SELECT count(*) FROM predictions WHERE cache_hit").fetchone()[0]
        assert cache == ours.con.execute("SELECT count(*) FROM predictions WHERE cache_hit").fetchone()[0] > 0


def test_unmapped_team_names_are_warned_about_and_quarantined_with_the_value(tmp_path, capsys):
    pred, dep = _team_files(tmp_path)
    pred_map, _ = _mappings(tmp_path)
    with Store(tmp_path / "t.duckdb") as store:
        store.ingest("artifacts", DEMO / "artifacts.csv")
        d = store.ingest("deployments", dep)
        reasons = store.quarantine()["reason"].to_list()
        # every team event name is quarantined, and the reason names it and the allowed list
        assert d.quarantined == sum(1 for r in reasons if r.startswith("unknown event"))
        assert any(r.startswith('unknown event "canary" (allowed: deploy, rollout_start') for r in reasons)
        assert all("[values.event]" in r for r in reasons)
        # deployments fixed by a mapping; predictions left with the team's component names
        _, dep_map = _mappings(tmp_path)
        store.ingest("deployments", dep, mapping=dep_map, force=True)
        store.ingest("predictions", pred, mapping={"values": {"cache_hit": {"Y": True, "N": False}}})
        result = audit(store, start=WINDOW[0], end=WINDOW[1])
        warned = {w.split("`")[1]: w for w in result.warnings()}
        # cache hits are governed by the cache's history whatever the component is called
        assert set(warned) == {"api", "nightly"}
        n_api = store.con.execute("SELECT count(*) FROM predictions WHERE component = 'api'").fetchone()[0]
        total = store.con.execute("SELECT count(*) FROM predictions WHERE component <> 'shadow'").fetchone()[0]
        assert f"{n_api / total:.0%} of traffic ({n_api:,} requests) not governed" in warned["api"]
        hits = store.con.execute("SELECT count(*) FROM predictions WHERE cache_hit").fetchone()[0]
        assert result.governed_share == pytest.approx(hits / total)
        text = result.summary()
        assert f"(it covers {hits / total:.0%} of requests: those a deployment history governs)" in text
        assert "warning: component `api`" in text
    assert main(["status", "--db", str(tmp_path / "t.duckdb")]) == 0
    out = capsys.readouterr().out
    assert "warning: component `api`" in out and "[values.component]" in out
    # mapped by values, the same log is governed
    with Store(tmp_path / "t.duckdb") as store:
        store.ingest("predictions", pred, mapping=pred_map, force=True)
        assert audit(store, start=WINDOW[0], end=WINDOW[1]).governed_share == pytest.approx(1.0)


def test_reasons_name_the_value_and_what_was_expected(store, tmp_path):
    f = write(tmp_path / "p.csv", "request_id,ts,model_version,prediction,score,cache_hit\n"
              "a,09/11/2026 10:00,v1,ok,0.5,true\n"
              "b,2026-11-09 10:00,v1,ok,high,true\n"
              "c,2026-11-09 10:00,v1,ok,0.5,HIT\n"
              "a,2026-11-09 11:00,v1,ok,0.5,false\n")
    r = store.ingest("predictions", f).results[0]
    reasons = store.quarantine()["reason"].to_list()
    assert 'cannot read ts as timestamp: "09/11/2026 10:00" (tried ISO 8601' in reasons[0]
    assert reasons[1] == 'cannot read score as double: "high" (expected a double number)'
    assert reasons[2].startswith('cannot read cache_hit as boolean: "HIT" (expected true/false')
    assert (r.accepted, r.quarantined) == (1, 3)
    # a strptime format is named when it is the one tried
    g = write(tmp_path / "q.csv", "request_id,ts,model_version,prediction\nz,2026-11-09 10:00,v1,ok\n")
    r = store.ingest("predictions", g, mapping={"timestamps": {"format": "%d/%m/%Y %H:%M"}}).results[0]
    assert r.quarantined == 1
    assert "(tried the mapping's timestamps.format '%d/%m/%Y %H:%M')" in store.quarantine(ingest_id=r.ingest_id)[
        "reason"][0]
    # the summary groups by rule and shows an example naming the value
    assert 'e.g. cannot read ts as timestamp: "2026-11-09 10:00"' in r.summary()


def test_mapping_values_are_checked(store, tmp_path):
    f = write(tmp_path / "p.csv", "request_id,ts,model_version,prediction\na,2026-11-09,v1,ok\n")
    with pytest.raises(Exception, match="'colour' is not a predictions contract column"):
        store.ingest("predictions", f, mapping={"values": {"colour": {"a": "b"}}})
    with pytest.raises(Exception, match="time values are not mapped by name"):
        store.ingest("predictions", f, mapping={"values": {"ts": {"a": "b"}}})
    with pytest.raises(Exception, match="values.component must be a table"):
        store.ingest("predictions", f, mapping={"values": {"component": "online"}})


def test_version_labels_map_by_value(store, tmp_path):
    f = write(tmp_path / "p.csv", "request_id,ts,model_version,prediction\n"
              "a,2026-11-09,fraud-model-2026.11,ok\nb,2026-11-09,v2,ok\n")
    store.ingest("predictions", f, mapping={"values": {"model_version": {"fraud-model-2026.11": "v3"}}})
    got = store.con.execute("SELECT model_version FROM predictions ORDER BY request_id").fetchall()
    assert got == [("v3",), ("v2",)]


def test_labels_and_identifiers_are_not_covariates_unless_declared(store, tmp_path):
    rows = "".join(f"r{i},2026-11-09 10:00,v1,ok,{i % 7},{i % 2},sess-{i:05d},{10000 + i % 50},{i * 0.1}\n"
                   for i in range(300))
    f = write(tmp_path / "p.csv", "request_id,ts,model_version,prediction,amount_bucket,label,session,zip,x\n" + rows)
    r = store.ingest("predictions", f, mapping={"categorical": ["zip"]}).results[0]
    assert dict(store.covariates().iter_rows()) == {"amount_bucket": "DOUBLE", "zip": "VARCHAR", "x": "DOUBLE"}
    text = r.summary()
    assert "these new columns outside the contract become covariates: amount_bucket (double: every value" in text
    assert "zip (varchar: declared categorical)" in text
    assert "label (looks like a label" in text and "session (text unique on almost every row" in text
    assert store.con.execute("SELECT zip FROM predictions WHERE request_id = 'r1'").fetchone()[0] == "10001"
    # declared, they are kept
    g = write(tmp_path / "q.csv", "request_id,ts,model_version,prediction,label\nq1,2026-11-10,v1,ok,1\n")
    store.ingest("predictions", g, mapping={"covariates": ["label"]})
    assert "label" in dict(store.covariates().iter_rows())
