"""Snapshot tests: the text and HTML the user reads, and the SQL the engines run, pinned as files.

Each test renders one output of the committed demo sample (data/samples/demo) or one generated SQL
text from fixed inputs and compares it with ``tests/snapshots/<name>``. Any change of wording, layout,
rounding or SQL shows up as a unified diff. When the change is intended, accept it with::

    VDRIFT_UPDATE_SNAPSHOTS=1 python -m pytest -q tests/test_snapshots.py

and commit the rewritten files with the change that caused them (the diff is the review).

The outputs are deterministic: fixed seeds and bootstrap sizes, windows fixed by the sample, no clock.
What still differs between machines is normalised before comparing: the temporary folder and the
checkout folder become ``<tmp>`` and ``<repo>``, ingest durations become ``<seconds>``. HTML is one
line as rendered; a newline is added after each closing block tag so a diff points at a row.
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from toolkit import Store
from toolkit.attribution import attribute
from toolkit.attribution.metrics import parse_metric
from toolkit.attribution.rows import rows_sql
from toolkit.audit import audit
from toolkit.audit import census
from toolkit.causes import explain
from toolkit.engine.keys import group_sql, request_key_sql, sample_key_sql
from toolkit.timeutil import parse_window

from .conftest import write

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "samples" / "demo"
SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
UPDATE_ENV = "VDRIFT_UPDATE_SNAPSHOTS"
BASELINE = "2026-11-02..2026-11-09"
COMPARISON = "2026-11-09..2026-11-16"
RATE = "rate:prediction=approved"
MEAN = "mean:score"
N_BOOT, SEED = 20, 0  # small and fixed: the snapshots pin formatting, not interval widths
DIALECTS = ("duckdb", "spark")

_SECONDS = re.compile(r"\(\d+\.\d+ s\)")
_HTML_BREAKS = re.compile(r"(</(?:p|div|tr|thead|tbody|table|ul|li|h\d)>|<tbody>|<ul>|<br>)")


def _normalise(text: str, tmp: Path | None = None) -> str:
    if tmp is not None:
        text = text.replace(str(tmp.resolve()), "<tmp>").replace(str(tmp), "<tmp>")
    text = text.replace(str(ROOT), "<repo>")
    text = _SECONDS.sub("(<seconds> s)", text)
    return text.rstrip("\n") + "\n"


def _html(markup: str) -> str:
    return _HTML_BREAKS.sub(r"\1\n", markup)


def assert_snapshot(name: str, text: str, tmp: Path | None = None) -> None:
    """Compare ``text`` (normalised) with ``tests/snapshots/<name>``; rewrite it with VDRIFT_UPDATE_SNAPSHOTS=1."""
    got = _normalise(text, tmp)
    path = SNAPSHOTS / name
    if os.environ.get(UPDATE_ENV, "") not in ("", "0"):
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != got:
            path.write_text(got)
        return
    if not path.exists():
        pytest.fail(f"no snapshot tests/snapshots/{name}: rerun with {UPDATE_ENV}=1 to accept the output", pytrace=False)
    want = path.read_text()
    if got != want:
        diff = "".join(difflib.unified_diff(want.splitlines(keepends=True), got.splitlines(keepends=True),
                                            fromfile=f"tests/snapshots/{name}", tofile=f"{name} (now)"))
        pytest.fail(f"output differs from tests/snapshots/{name}:\n{diff}\n"
                    f"rerun with {UPDATE_ENV}=1 to accept", pytrace=False)


# -- the demo store ---------------------------------------------------------------------------
@dataclass
class Demo:
    store: Store
    tmp: Path
    ingest: str


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    """The committed demo sample ingested as `make demo` does (artifacts, deployments, predictions)."""
    tmp = tmp_path_factory.mktemp("snapshots")
    with Store(tmp / "demo.duckdb") as store:
        reports = [store.ingest("artifacts", [DEMO / "artifacts.csv"]),
                   store.ingest("deployments", [DEMO / "deployments.jsonl"]),
                   store.ingest("predictions", [DEMO / "predictions.csv.gz"]),
                   store.ingest("predictions", [DEMO / "predictions.csv.gz"])]  # again: skipped
        yield Demo(store, tmp, "\n\n".join(r.summary() for r in reports))


# -- ingest -----------------------------------------------------------------------------------
def test_ingest_summary(demo: Demo) -> None:
    assert_snapshot("ingest_demo.txt", demo.ingest, demo.tmp)


def test_ingest_summary_with_quarantine(tmp_path: Path) -> None:
    """Quarantine reasons, their examples and the hint, for a small file with bad rows."""
    f = write(tmp_path / "bad.csv", "request_id,ts,model_version,prediction,score,region\n"
              "a1,2026-11-02T00:00:00Z,v1,approved,0.5,eu\n"
              "a2,not-a-time,v1,approved,0.5,eu\n"
              "a3,2026-11-02T00:01:00Z,,approved,0.5,eu\n"
              "a4,2026-11-02T00:02:00Z,v1,approved,high,eu\n"
              "a1,2026-11-02T00:03:00Z,v1,declined,0.1,us\n")
    with Store(tmp_path / "q.duckdb") as store:
        report = store.ingest("predictions", [f])
    assert_snapshot("ingest_quarantine.txt", report.summary(), tmp_path)


# -- audit ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def audited(demo: Demo):
    return audit(demo.store)


def test_audit_summary(audited) -> None:
    assert_snapshot("audit_demo.txt", audited.summary())


def test_audit_html(audited) -> None:
    assert_snapshot("audit_demo.html", _html(audited._repr_html_()))


# -- attribute --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def attributions(demo: Demo) -> dict:
    return {m: attribute(demo.store, m, BASELINE, COMPARISON, n_boot=N_BOOT, seed=SEED) for m in (RATE, MEAN)}


@pytest.mark.parametrize("metric,stem", [(RATE, "attribute_rate"), (MEAN, "attribute_mean")])
def test_attribute_summary(attributions, metric: str, stem: str) -> None:
    assert_snapshot(f"{stem}.txt", attributions[metric].summary())


@pytest.mark.parametrize("metric,stem", [(RATE, "attribute_rate"), (MEAN, "attribute_mean")])
def test_attribute_html(attributions, metric: str, stem: str) -> None:
    assert_snapshot(f"{stem}.html", _html(attributions[metric]._repr_html_()))


# -- explain ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def explained(demo: Demo):
    return explain(demo.store, RATE, COMPARISON, baseline=BASELINE, n_boot=N_BOOT, seed=SEED)


def test_explain_summary(explained) -> None:
    assert_snapshot("explain_rate.txt", explained.summary())


def test_explain_html(explained) -> None:
    assert_snapshot("explain_rate.html", _html(explained._repr_html_()))


# -- generated SQL ----------------------------------------------------------------------------
def _sql_block(title: str, sql: str, params: list | None = None) -> str:
    out = f"-- {title}\n{sql.strip()}\n"
    if params is not None:
        out += f"-- params: {params!r}\n"
    return out


@pytest.mark.parametrize("dialect", DIALECTS)
def test_metric_sql(dialect: str) -> None:
    """The per-row value and validity SQL of every metric kind (attribution/metrics.py)."""
    blocks = []
    for spec in (RATE, MEAN, "accuracy", "accuracy:approved=approved", "accuracy:approved=1,declined=0",
                 "logloss", "logloss:approved"):
        metric = replace(parse_metric(spec), dialect=dialect)
        value_sql, valid_sql, params = metric.sql()
        blocks.append(_sql_block(f"{spec}: value", value_sql, params) + _sql_block(f"{spec}: valid", valid_sql))
    assert_snapshot(f"sql_metrics_{dialect}.sql", "\n".join(blocks))


@pytest.mark.parametrize("dialect", DIALECTS)
def test_rows_sql(dialect: str) -> None:
    """The rows of both windows for a filtered rate with a replicate-group key (attribution/rows.py, engine/keys.py)."""
    metric = replace(parse_metric(RATE), dialect=dialect)
    key = request_key_sql('"request_id"', dialect)
    group = group_sql('"request_key"', dialect)
    model = sample_key_sql('"request_key"', dialect)
    sql, params = rows_sql(metric, parse_window(BASELINE), parse_window(COMPARISON),
                           where=[("region", "eu"), ("channel", ("app", "web"))],
                           select=[f"{group} AS grp", f"{model} AS model_sample", '"amount"'],
                           select_params=[64], dialect=dialect)
    text = (_sql_block("request_key_sql(\"request_id\")", key) + "\n"
            + _sql_block("group_sql(\"request_key\")", group) + "\n"
            + _sql_block("sample_key_sql(\"request_key\")", model) + "\n"
            + _sql_block("rows_sql(rate:prediction=approved, region=eu, channel in (app, web))",
                         sql.replace(" UNION ALL ", "\nUNION ALL\n"), params))
    assert sql.count(" UNION ALL ") == 1  # the one replacement above is all that reformats the text
    assert_snapshot(f"sql_rows_{dialect}.sql", text)


def test_audit_census_sql() -> None:
    """The census passes of the audit (audit/census.py): epochs, pre-cells, cells, census."""
    blocks = {"_EPOCHS_SQL": census._EPOCHS_SQL,
              "_PRE_SQL (duckdb)": census._PRE_SQL.format(groups=census._groups_sql("duckdb")),
              "_groups_sql (duckdb, the epoch as a CASE over two boundaries)": census._groups_sql(
                  "duckdb", census._epoch_case([dt.datetime(2026, 11, 9, 10, 30), dt.datetime(2026, 11, 9, 9, 15)],
                                               "hour")[0]),
              "_groups_sql (spark)": census._groups_sql("spark"),
              "_CELLS_SQL": census._CELLS_SQL, "_CENSUS_SQL": census._CENSUS_SQL}
    text = "\n".join(_sql_block(name, sql) for name, sql in blocks.items())
    assert_snapshot("sql_audit_census.sql", text)
