"""MLflow's model registry as the artifact registry (toolkit.sources.mlflow), on a real local registry.

The registry is made with the real mlflow client in a SQLite database (MLflow's default local backend):
three versions of one model whose artifacts are real files, each registered in another way MLflow
offers (a run's artifact folder as a path, a ``runs:/`` URI, an MLflow 3 logged model ``models:/m-...``),
and the alias ``champion``. Tests that move aliases or add versions work on their own copy.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pickle
import shutil
import socket
from pathlib import Path

import polars as pl
import pytest

pytest.importorskip("mlflow")
from mlflow import MlflowClient  # noqa: E402

from toolkit import Store  # noqa: E402
from toolkit.audit import audit  # noqa: E402
from toolkit.cli import main  # noqa: E402
from toolkit.errors import InputError, StoreError  # noqa: E402
from toolkit.instrument import artifact_digest  # noqa: E402
from toolkit.sources.mlflow import display_uri, ingest_mlflow  # noqa: E402

T0 = dt.datetime(2099, 1, 5, 8, 0)  # a read after the registry was made (now)
MODEL = "fraud"


def hours(h: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=h)


def _model_dir(path: Path, weights: list[float], threshold: float) -> Path:
    """A tiny real model: JSON parameters and a pickled callable-free dict, as a model folder."""
    (path / "sub").mkdir(parents=True)
    (path / "model.json").write_text(json.dumps({"weights": weights, "threshold": threshold}))
    (path / "sub" / "model.pkl").write_bytes(pickle.dumps({"weights": weights, "threshold": threshold}, protocol=4))
    return path


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A SQLite registry with fraud v1..v3 and champion -> 1: (folder, uri, {version: local model folder})."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.create_experiment("vdrift-test", artifact_location=(root / "artifacts").as_uri())
    client.create_registered_model(MODEL)
    dirs = {}
    # v1: the run's artifact folder, given as a plain path
    dirs[1] = _model_dir(root / "src" / "v1", [0.1, 0.2], 0.5)
    run1 = client.create_run(exp)
    client.log_artifacts(run1.info.run_id, str(dirs[1]), "model")
    client.set_terminated(run1.info.run_id)
    src1 = str(Path(run1.info.artifact_uri.removeprefix("file://")) / "model")
    client.create_model_version(MODEL, src1, run_id=run1.info.run_id, tags={"feature_version": "fv1"})
    # v2: a runs:/ URI (MLflow resolves it; vdrift downloads it)
    dirs[2] = _model_dir(root / "src" / "v2", [0.1, 0.3], 0.5)
    run2 = client.create_run(exp)
    client.log_artifacts(run2.info.run_id, str(dirs[2]), "model")
    client.set_terminated(run2.info.run_id)
    client.create_model_version(MODEL, f"runs:/{run2.info.run_id}/model", run_id=run2.info.run_id,
                                tags={"feature_version": "fv2", "serving": "v2.0"})
    # v3: an MLflow 3 logged model (source models:/m-...)
    dirs[3] = _model_dir(root / "src" / "v3", [0.4, 0.3], 0.6)
    logged = client.create_logged_model(exp, name="fraud-model")
    client.log_model_artifacts(logged.model_id, str(dirs[3]))
    with pytest.MonkeyPatch.context() as mp:  # MLflow looks the logged model up with the global tracking URI
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        client.create_model_version(MODEL, f"models:/{logged.model_id}", model_id=logged.model_id,
                                    tags={"feature_version": "fv2"})
    client.set_registered_model_alias(MODEL, "champion", "1")
    return root, uri, dirs


@pytest.fixture
def copy(registry, tmp_path):
    """A private copy of the registry database (the artifacts stay where the sources name them)."""
    root, _, dirs = registry
    db = tmp_path / "mlflow.db"
    shutil.copyfile(root / "mlflow.db", db)
    uri = f"sqlite:///{db}"
    return uri, MlflowClient(tracking_uri=uri, registry_uri=uri), dirs


def alias_events(store: Store) -> list[dict]:
    return store.sql(
        "SELECT ts, component, scope, event, version, artifact_hash, traffic_pct, actor, note FROM deployments "
        "ORDER BY ts"
    ).to_dicts()


def test_versions_become_artifacts_with_the_digests_of_their_sources(registry, store):
    _, uri, dirs = registry
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    result = ingest_mlflow(store, uri, observed_at=T0)
    assert result.ok and not result.problems
    rows = store.sql("SELECT version, artifact_hash, feature_version, created_at FROM artifacts ORDER BY version")
    assert rows["version"].to_list() == ["fraud:1", "fraud:2", "fraud:3"]
    assert rows["artifact_hash"].to_list() == [artifact_digest(dirs[v]) for v in (1, 2, 3)]
    assert len(set(rows["artifact_hash"])) == 3
    assert rows["feature_version"].to_list() == ["fv1", "fv2", "fv2"]
    created = [
        dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=client.get_model_version(MODEL, str(v)).creation_timestamp)
        for v in (1, 2, 3)
    ]
    assert rows["created_at"].to_list() == created
    # the three kinds of source are recorded as MLflow gave them
    frame = result.to_frame().sort("mlflow_version")
    sources = frame["source"].to_list()
    assert sources[0].endswith("/model") and sources[1].startswith("runs:/") and sources[2].startswith("models:/m-")
    # through the ordinary ingest: one file per version, rows read = accepted + quarantined, provenance logged
    assert [r.status for r in result.artifacts.results] == ["ingested"] * 3
    assert result.artifacts.rows_read == result.artifacts.accepted + result.artifacts.quarantined == 3
    log = store.ingest_log().filter(pl.col("kind") == "artifacts")
    assert log.height == 3 and all("version-" in p and "mlflow-sqlite" in p for p in log["path"])
    # champion -> 1, first read: one deploy of fraud:1 at the time of the read, with v1's digest
    (event,) = alias_events(store)
    assert event["ts"] == T0 and event["event"] == "deploy" and event["version"] == "fraud:1"
    assert (event["component"], event["scope"], event["traffic_pct"], event["actor"]) == ("serving", "all", 100.0,
                                                                                          "mlflow")
    assert event["artifact_hash"] == artifact_digest(dirs[1])
    assert event["note"].startswith("mlflow alias champion of model fraud: version 1 | first read by vdrift")
    assert created[0].isoformat(timespec="milliseconds") in event["note"]


def test_alias_moves_are_deploys_and_rollbacks_and_an_unchanged_registry_is_a_no_op(copy, store):
    uri, client, dirs = copy
    ingest_mlflow(store, uri, observed_at=T0)
    before = store.counts()
    again = ingest_mlflow(store, uri, observed_at=hours(1))
    assert [r.status for r in again.artifacts.results] == ["skipped"] * 3
    assert all("already ingested" in r.message for r in again.artifacts.results)
    assert again.changes == () and again.deployments.results == ()
    assert store.counts() == before
    assert "aliases unchanged since the last ingest (fraud@champion=1)" in again.summary()

    client.set_registered_model_alias(MODEL, "champion", "3")
    moved = ingest_mlflow(store, uri, observed_at=hours(2))
    (change,) = moved.changes
    assert (change.previous, change.version, change.event, change.ts) == (1, 3, "deploy", hours(2))
    client.set_registered_model_alias(MODEL, "champion", "2")
    back = ingest_mlflow(store, uri, observed_at=hours(3))
    assert [(c.previous, c.version, c.event) for c in back.changes] == [(3, 2, "rollback")]
    client.delete_registered_model_alias(MODEL, "champion")
    gone = ingest_mlflow(store, uri, observed_at=hours(4))
    assert [(c.previous, c.version, c.event) for c in gone.changes] == [(2, None, "config_change")]
    assert ingest_mlflow(store, uri, observed_at=hours(5)).changes == ()

    events = alias_events(store)
    assert [(e["ts"], e["event"], e["version"]) for e in events] == [
        (T0, "deploy", "fraud:1"), (hours(2), "deploy", "fraud:3"), (hours(3), "rollback", "fraud:2"),
        (hours(4), "config_change", None),
    ]
    assert [e["artifact_hash"] for e in events[:3]] == [artifact_digest(dirs[v]) for v in (1, 3, 2)]
    assert events[3]["traffic_pct"] is None
    # the window of each move: after the previous event, no later than the read
    assert "was 1; moved after 2099-01-05T08:00:00.000Z and no later than 2099-01-05T10:00:00.000Z" in events[1]["note"]
    assert events[3]["note"].startswith("mlflow alias champion of model fraud: version removed | was 2")
    assert store.counts()["quarantine"] == 0


def test_a_read_time_before_the_last_event_is_refused(copy, store):
    uri, client, _ = copy
    ingest_mlflow(store, uri, observed_at=hours(2))
    client.set_registered_model_alias(MODEL, "champion", "2")
    with pytest.raises(InputError, match="read time 2099-01-05T09:00:00.000Z is not after it"):
        ingest_mlflow(store, uri, observed_at=hours(1))
    assert len(alias_events(store)) == 1


def test_new_versions_are_added_and_several_aliases_tracked(copy, store, tmp_path):
    uri, client, _ = copy
    ingest_mlflow(store, uri, observed_at=T0, aliases=None)
    v4 = _model_dir(tmp_path / "v4", [0.9], 0.1)
    client.create_model_version(MODEL, str(v4), tags={"feature_version": "fv3"})
    client.set_registered_model_alias(MODEL, "challenger", "4")
    result = ingest_mlflow(store, uri, observed_at=hours(1), aliases=["champion", "challenger"],
                           component="shadow")
    assert [r.status for r in result.artifacts.results] == ["skipped"] * 3 + ["ingested"]
    assert store.sql("SELECT artifact_hash FROM artifacts WHERE version = 'fraud:4'")["artifact_hash"].to_list() == [
        artifact_digest(v4)]
    # events are kept per component: the shadow stream starts with both aliases
    shadow = store.sql("SELECT event, version FROM deployments WHERE component = 'shadow' ORDER BY version")
    assert shadow.rows() == [("deploy", "fraud:1"), ("deploy", "fraud:4")]


def test_no_aliases_loads_only_the_artifacts(registry, store):
    _, uri, _ = registry
    result = ingest_mlflow(store, uri, observed_at=T0, aliases=())
    assert result.changes == () and store.counts()["deployments"] == 0 and store.counts()["artifacts"] == 3


def test_label_template(copy, store):
    uri, _, _ = copy
    ingest_mlflow(store, uri, observed_at=T0, label="v{version}")
    assert sorted(store.table("artifacts")["version"]) == ["v1", "v2", "v3"]
    assert alias_events(store)[0]["version"] == "v1"
    with pytest.raises(InputError, match=r"does not fit model 'fraud' version 1 .*tags: feature_version"):
        ingest_mlflow(store, uri, observed_at=hours(1), label="{tags[serving]}")
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("churn")
    client.create_model_version("churn", client.get_model_version_download_uri(MODEL, "1"))
    with pytest.raises(InputError, match="names both model 'churn' version 1 and model 'fraud' version 1 'v1'"):
        ingest_mlflow(store, uri, observed_at=hours(1), label="v{version}")
    assert store.counts()["artifacts"] == 3


def test_a_read_only_store_is_refused_before_the_registry_is_read(registry, tmp_path):
    _, uri, _ = registry
    Store(tmp_path / "ro.duckdb").close()
    with Store(tmp_path / "ro.duckdb", read_only=True) as ro, pytest.raises(StoreError, match="read-only"):
        ingest_mlflow(ro, uri)


def test_a_source_that_cannot_be_read_is_quarantined_with_model_version_and_source(copy, store, tmp_path, capsys):
    uri, client, dirs = copy
    client.create_model_version(MODEL, str(tmp_path / "no-such-model"))
    run = client.create_run(client.get_experiment_by_name("vdrift-test").experiment_id)
    client.create_model_version(MODEL, f"runs:/{run.info.run_id}/never-logged")
    empty = tmp_path / "empty-model"
    empty.mkdir()
    client.create_model_version(MODEL, str(empty))
    db = tmp_path / "cli.duckdb"
    code = main(["ingest", "artifacts", "--from-mlflow", uri, "--db", str(db)])
    out, err = capsys.readouterr()
    assert code == 0
    assert "3 quarantined" in out
    for version, source in ((4, tmp_path / "no-such-model"), (5, f"runs:/{run.info.run_id}/never-logged"),
                            (6, empty)):
        assert f"vdrift: warning: model 'fraud' version {version} (source '{source}')" in err
    assert "does not exist" in err and "cannot be downloaded" in err and "holds no files" in err
    with Store(db) as s:
        q = s.quarantine().sort("ingest_id")
        assert q.height == 3 and all(r.startswith("missing required value: artifact_hash") for r in q["reason"])
        raws = [json.loads(json.loads(r)["mlflow"]) for r in q["raw"]]
        assert [r["version"] for r in raws] == [4, 5, 6]
        assert [r["source"] for r in raws] == [str(tmp_path / "no-such-model"),
                                               f"runs:/{run.info.run_id}/never-logged", str(empty)]
        assert all(r["model"] == "fraud" and r["problem"] for r in raws)
        assert s.counts()["artifacts"] == 3
    # the same problems on the next run are the same extract: skipped, not quarantined twice
    assert main(["ingest", "artifacts", "--from-mlflow", uri, "--db", str(db), "--fail-on-quarantine"]) == 0
    out, _ = capsys.readouterr()
    assert "0 ingested, 6 skipped" in out
    with Store(db) as s:
        assert s.counts()["quarantine"] == 3
    assert all(p.exists() for p in dirs.values())  # the shared sources were not touched


def test_cli_from_mlflow_and_idempotence(copy, tmp_path, capsys):
    uri, client, dirs = copy
    db = str(tmp_path / "v.duckdb")
    assert main(["ingest", "artifacts", "--from-mlflow", uri, "--db", db, "--mlflow-model", MODEL]) == 0
    out, err = capsys.readouterr()
    assert "3 version(s) read" in out and "alias champion of fraud: new -> 1 (deploy at" in out
    assert "artifacts: 3 file(s): 3 ingested" in out and "deployments: 1 file(s): 1 ingested" in out
    assert err == ""
    with Store(db) as s:
        counts = s.counts()
        assert sorted(s.table("artifacts")["artifact_hash"]) == sorted(artifact_digest(d) for d in dirs.values())
    assert main(["ingest", "artifacts", "--from-mlflow", uri, "--db", db, "-q"]) == 0
    out, _ = capsys.readouterr()
    assert "artifacts: 3 file(s): 0 ingested, 3 skipped" in out
    assert "deployments: no alias changed since the last ingest" in out
    with Store(db) as s:
        assert s.counts() == counts
    client.set_registered_model_alias(MODEL, "champion", "3")
    assert main(["ingest", "artifacts", "--from-mlflow", uri, "--db", db, "-q"]) == 0
    out, _ = capsys.readouterr()
    assert "alias champion of fraud: 1 -> 3 (deploy at" in out and "deployments: 1 file(s): 1 ingested" in out
    with Store(db) as s:
        assert s.sql("SELECT version FROM deployments ORDER BY ts")["version"].to_list() == ["fraud:1", "fraud:3"]


def test_cli_usage_errors(registry, tmp_path, capsys):
    _, uri, _ = registry
    db = str(tmp_path / "v.duckdb")
    assert main(["ingest", "deployments", "--from-mlflow", uri, "--db", db]) == 2
    assert "use it as `vdrift ingest artifacts --from-mlflow URI`" in capsys.readouterr().err
    assert main(["ingest", "artifacts", "--db", db]) == 2
    assert "give the files to load (PATH ...), or --from-mlflow URI" in capsys.readouterr().err
    assert main(["ingest", "artifacts", "registry.csv", "--mlflow-model", MODEL, "--db", db]) == 2
    assert "--mlflow-model, --mlflow-alias and --mlflow-label go with --from-mlflow URI" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_registries_and_unknown_models_are_named(registry, store, tmp_path, capsys):
    _, uri, _ = registry
    missing = f"sqlite:///{tmp_path / 'nope.db'}"
    with pytest.raises(InputError, match="no MLflow registry at .*nope.db.* not an existing database file"):
        ingest_mlflow(store, missing)
    assert not (tmp_path / "nope.db").exists()  # MLflow was not allowed to create an empty registry
    with pytest.raises(InputError, match="no MLflow registry at .* not an existing folder"):
        ingest_mlflow(store, f"file://{tmp_path / 'mlruns'}")
    port = _free_port()
    with pytest.raises(InputError, match=f"cannot read the MLflow registry at 'http://ann@127.0.0.1:{port}'") as exc:
        ingest_mlflow(store, f"http://ann:s3cret@127.0.0.1:{port}")
    assert "s3cret" not in str(exc.value) and "Connection refused" in str(exc.value)
    with pytest.raises(InputError, match="has no registered model 'nope'; it has: fraud"):
        ingest_mlflow(store, uri, models=["nope"])
    assert store.counts()["artifacts"] == store.counts()["deployments"] == store.counts()["ingest_log"] == 0
    assert main(["ingest", "artifacts", "--from-mlflow", missing, "--db", str(tmp_path / "x.duckdb")]) == 2
    assert "vdrift: error: no MLflow registry at" in capsys.readouterr().err
    assert main(["ingest", "artifacts", "--from-mlflow", uri, "--mlflow-model", "nope",
                 "--db", str(tmp_path / "x.duckdb")]) == 2
    assert "vdrift: error: the MLflow registry at" in capsys.readouterr().err


def test_a_legacy_file_store_registry(store, tmp_path, monkeypatch, registry):
    """MLflow 3 refuses its old file store unless MLFLOW_ALLOW_FILE_STORE is set; with it, it reads the same."""
    _, sqlite_uri, _ = registry
    db_path = sqlite_uri.removeprefix("sqlite:///")
    with pytest.raises(InputError, match=f"is a file, not a file store folder; for a SQLite registry write "
                                         f"sqlite:///{db_path}"):
        ingest_mlflow(store, db_path)
    uri = (tmp_path / "mlruns").as_uri()
    (tmp_path / "mlruns").mkdir()
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    with pytest.raises(InputError, match="cannot open the MLflow registry at .*MLFLOW_ALLOW_FILE_STORE"):
        ingest_mlflow(store, uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.chdir(tmp_path)
    with monkeypatch.context() as mp:  # MLflow's file store opens MlflowClient() with the default URI inside
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.create_registered_model(MODEL)
        model = _model_dir(tmp_path / "model", [1.0], 0.5)
        client.create_model_version(MODEL, str(model))
        client.set_registered_model_alias(MODEL, "champion", "1")
    assert not (tmp_path / "mlflow.db").exists()
    from mlflow.tracking._tracking_service import utils as tracking_utils

    elsewhere = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    monkeypatch.setattr(tracking_utils, "_tracking_uri", elsewhere)  # as mlflow.set_tracking_uri leaves it
    result = ingest_mlflow(store, uri, observed_at=T0)
    # vdrift's read opened neither MLflow's default store nor the one set in-process, and left the setting
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "elsewhere.db").exists()
    assert tracking_utils._tracking_uri == elsewhere
    assert "MLFLOW_TRACKING_URI" not in os.environ and "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR" not in os.environ
    assert store.table("artifacts")["artifact_hash"].to_list() == [artifact_digest(model)]
    assert [(c.version, c.event) for c in result.changes] == [(1, "deploy")]


def test_passwords_stay_out_of_reports():
    assert display_uri("http://ann:s3cret@registry:5000/x") == "http://ann@registry:5000/x"
    assert display_uri("sqlite:///a.db") == "sqlite:///a.db"


def test_a_mislabelled_artifact_is_flagged_by_the_audit(registry, store, tmp_path):
    """End to end: the registry's digests expose a server that says fraud:1 but loaded fraud:3's artifact."""
    _, uri, dirs = registry
    ingest_mlflow(store, uri, observed_at=T0)
    d1, d3 = artifact_digest(dirs[1]), artifact_digest(dirs[3])
    lines = ["request_id,ts,model_version,prediction,artifact_hash,instance_id"]
    for i in range(60):
        ts = (T0 + dt.timedelta(minutes=5 * i + 1)).isoformat() + "Z"
        lines.append(f"ok-{i},{ts},fraud:1,approved,{d1},eu-1")
        if i % 2 == 0:  # eu-2 reports fraud:1 but loaded the artifact of fraud:3
            lines.append(f"bad-{i},{ts},fraud:1,declined,{d3},eu-2")
    (tmp_path / "preds.csv").write_text("\n".join(lines) + "\n")
    assert store.ingest("predictions", tmp_path / "preds.csv").accepted == 90
    status = store.sql("SELECT instance_id, resolved_version, version_status, count(*) AS n FROM predictions_resolved "
                       "GROUP BY ALL ORDER BY 1")
    assert status.rows() == [("eu-1", "fraud:1", "verified", 60), ("eu-2", "fraud:3", "mismatch", 30)]
    result = audit(store, bucket="hour")
    found = result.findings.filter(pl.col("kind") == "artifact_mismatch")
    assert found["instance_id"].to_list() == ["eu-2"]
    (row,) = found.to_dicts()
    assert row["n_requests"] == 30 and row["versions"] == ["fraud:3"]
    assert json.loads(row["evidence"])["reported_version"] == "fraud:1"
    # the champion alias gave the intended state: fraud:1 served as intended by eu-1
    assert set(result.intended.filter(pl.col("component") == "serving")["version"]) == {"fraud:1"}
