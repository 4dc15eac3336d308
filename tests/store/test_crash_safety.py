"""Crash safety and concurrent use of the store (issue 7, item 2).

``vdrift ingest`` subprocesses are killed with SIGKILL at random moments
(seeded) while they load several files into one store. After every kill the
store must open, hold each file whole or not at all, and its ingest log must
agree with the tables; re-running the same command must finish the job
without duplicating anything. Two processes writing to one store at once:
the second fails with a clear message (exit 3, no traceback) or, if it comes
after the first has finished, simply runs; nothing is corrupted.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from toolkit import Store, StoreError, VdriftError

from tests.conftest import ROOT
from .test_hardening_ingest import check_store_consistent

N_BIG = 200_000  # over a second of ingest: room to interrupt mid-transaction
N_JSON = 40_000
N_SMALL = 50
BAD_EVERY = 1000  # rows i with i % BAD_EVERY == 7 have an unreadable time -> quarantined


def _vdrift(*args: str) -> list[str]:
    return [sys.executable, "-m", "toolkit.cli", *args]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def log_files(tmp_path_factory) -> dict[str, tuple[Path, int, int]]:
    """Three files: path -> (path, records written, records that must be accepted)."""
    d = tmp_path_factory.mktemp("crash")
    big = d / "big.csv"
    with open(big, "w") as f:
        f.write("request_id,ts,model_version,prediction,score,region,amount,note\n")
        for i in range(N_BIG):
            ts = "garbage" if i % BAD_EVERY == 7 else f"2026-11-0{1 + i % 9} {i % 24:02d}:{i % 60:02d}:00"
            f.write(f"b{i},{ts},v{i % 3},p{i % 2},{(i % 100) / 100},eu,{i * 0.5},note {i}\n")
    js = d / "mid.jsonl"
    with open(js, "w") as f:
        for i in range(N_JSON):
            f.write(json.dumps({"request_id": f"j{i}", "ts": "2026-11-03T10:00:00Z", "model_version": "v2",
                                "prediction": "p1", "segment": f"s{i % 7}"}) + "\n")
    small = d / "small.csv"
    with open(small, "w") as f:
        f.write("request_id,ts,model_version,prediction\n")
        for i in range(N_SMALL):
            f.write(f"s{i},2026-11-04 10:00:00,v1,p0\n")
    bad_big = sum(1 for i in range(N_BIG) if i % BAD_EVERY == 7)
    return {
        "big": (big, N_BIG, N_BIG - bad_big),
        "mid": (js, N_JSON, N_JSON),
        "small": (small, N_SMALL, N_SMALL),
    }


def _check_whole_files(db: Path, files: dict, *, read_only: bool = False) -> dict[str, int]:
    """Open the store, check consistency and all-or-none per file; return accepted rows per file name."""
    with Store(db, read_only=read_only) as store:
        check_store_consistent(store)
        live = store.sql(
            "SELECT path, rows_read, accepted, quarantined FROM ingest_log WHERE superseded_by IS NULL"
        ).rows()
        by_path = {str(p): (n, ok) for p, n, ok in files.values()}
        names = [row[0] for row in live]
        assert len(names) == len(set(names)), f"a file is live twice in ingest_log: {names}"
        loaded = {}
        for path, rows_read, accepted, _quarantined in live:
            n, ok = by_path[path]
            assert (rows_read, accepted) == (n, ok), f"{path} is not whole: {rows_read} read, {accepted} accepted"
            loaded[Path(path).name] = accepted
        total = store.counts()["predictions"]
        assert total == sum(loaded.values()), "predictions holds rows of no live ingest"
    return loaded


def _progress_lines(db: Path, paths: list[str]) -> int:
    """How many progress lines an uninterrupted ingest of ``paths`` into a new store prints."""
    out = subprocess.run(_vdrift("ingest", "predictions", *paths, "--db", str(db), "-q", "--progress"), env=_env(),
                         capture_output=True, text=True, check=True, timeout=300)
    return len(out.stderr.splitlines())


def _run_until_line(args: list[str], k: int, sig: int = signal.SIGKILL) -> tuple[subprocess.Popen, bool, str]:
    """Start ``vdrift ARGS --progress`` and send ``sig`` as soon as its k-th progress line appears.

    No timer: the signal follows an observable point of the ingest (a file started, its rows read
    and checked, a file committed), whatever the machine's speed. Returns the finished process,
    whether the signal was sent (False when the run ended before its k-th line) and its stderr.
    """
    proc = subprocess.Popen(_vdrift(*args, "--progress"), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    seen, lines = 0, []
    sent = False
    for line in proc.stderr:
        lines.append(line)
        if line.startswith(("[", "  ")):
            seen += 1
        if seen == k:
            proc.send_signal(sig)
            sent = True
            break
    rest = proc.stderr.read()
    proc.stderr.close()
    proc.wait()
    return proc, sent, "".join(lines) + rest


def _kill_runs(db: Path, files: dict, n_kills: int, seed: int, order: tuple[str, ...] = ("small", "mid", "big")) -> list[int]:
    """Start and SIGKILL ingests n_kills times; return how many files were whole after each kill.

    Each kill follows a progress line drawn at random (seeded) among those of a whole run except
    its last, so it lands before, between or inside files (while their transaction is open), never
    after a timer. A run resumes what the previous kill interrupted (already loaded files are
    skipped, printing fewer lines); once everything is loaded the next run uses --force, so every
    run has work to interrupt.
    """
    rnd = random.Random(seed)
    paths = [str(files[k][0]) for k in order]  # kills land before, between and inside files
    n_lines = _progress_lines(db.with_name(db.stem + "-lines.duckdb"), paths)
    assert n_lines >= 2 * len(paths), n_lines
    done_after: list[int] = []
    killed = 0
    for _ in range(n_kills):
        args = ["ingest", "predictions", *paths, "--db", str(db), "-q"]
        if done_after and done_after[-1] == len(files):
            args.append("--force")  # all loaded: re-ingest; a killed re-ingest must keep the earlier one
        proc, sent, stderr = _run_until_line(args, rnd.randint(1, n_lines - 1))
        killed += sent
        assert "Traceback" not in stderr, stderr
        assert sent or proc.returncode == 0, stderr  # a run that ended before its line completed
        if db.exists():  # first read-only (the WAL of the killed process is replayed in memory), then read-write
            try:
                _check_whole_files(db, files, read_only=True)
            except StoreError as exc:  # killed while creating the store: no schema committed yet
                assert "no vdrift schema yet" in str(exc)
        done_after.append(len(_check_whole_files(db, files)))
    # how many runs reached their line depends on the lines each printed (the store's state), not on speed
    assert killed >= n_kills // 2, "most kills must follow a progress line of a running ingest"
    return done_after


def _finish_and_check(db: Path, files: dict) -> None:
    out = subprocess.run(_vdrift("ingest", "predictions", *[str(p) for p, _, _ in files.values()], "--db", str(db)),
                         env=_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    loaded = _check_whole_files(db, files)
    assert loaded == {p.name: ok for p, _, ok in files.values()}
    with Store(db, read_only=True) as store:
        assert store.counts()["predictions"] == sum(ok for _, _, ok in files.values())
        assert store.counts()["quarantine"] == N_BIG // BAD_EVERY  # only the planted bad rows
        assert store.sql("SELECT count(DISTINCT request_id) FROM predictions").item() == store.counts()["predictions"]
        # "note" holds a different text on every row: an identifier, not a covariate (unless declared)
        assert dict(store.covariates().iter_rows()) == {"amount": "DOUBLE", "segment": "VARCHAR"}


def test_sigkill_during_ingest_leaves_every_file_whole_or_absent(tmp_path, log_files):
    db = tmp_path / "crash.duckdb"
    done_after = _kill_runs(db, log_files, n_kills=5, seed=7)
    assert min(done_after) < len(log_files)  # at least one kill interrupted the work
    _finish_and_check(db, log_files)


@pytest.fixture(scope="module")
def parquet_files(tmp_path_factory) -> dict[str, tuple[Path, int, int]]:
    """Three Parquet files with the same columns: one call loads them in one transaction (a batch)."""
    import polars as pl

    d = tmp_path_factory.mktemp("crash_parquet")
    out = {}
    for day, (name, n) in enumerate((("p1", N_BIG), ("p2", N_BIG), ("p3", N_SMALL)), start=2):
        bad = [name == "p2" and i % BAD_EVERY == 7 for i in range(n)]  # NaN score -> quarantined
        pl.DataFrame({
            "request_id": [f"{name}-{i}" for i in range(n)],
            "ts": [dt.datetime(2026, 11, day, i % 24, i % 60) for i in range(n)],
            "model_version": [f"v{i % 3}" for i in range(n)],
            "prediction": [f"p{i % 2}" for i in range(n)],
            "score": [float("nan") if b else (i % 100) / 100 for i, b in enumerate(bad)],
            "amount": [i * 0.5 for i in range(n)],
        }).write_parquet(d / f"{name}.parquet")
        out[name] = (d / f"{name}.parquet", n, n - sum(bad))
    return out


def test_sigkill_during_a_parquet_batch_leaves_every_file_whole_or_absent(tmp_path, parquet_files):
    # the files of one call are loaded in one transaction: a kill leaves all of them or none
    db = tmp_path / "crash_parquet.duckdb"
    done_after = _kill_runs(db, parquet_files, n_kills=5, seed=11, order=("p1", "p2", "p3"))
    assert set(done_after) <= {0, len(parquet_files)}, f"a batch was partly stored: {done_after}"
    assert min(done_after) == 0  # at least one kill interrupted the batch
    out = subprocess.run(_vdrift("ingest", "predictions", *[str(p) for p, _, _ in parquet_files.values()],
                                 "--db", str(db)), env=_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert _check_whole_files(db, parquet_files) == {p.name: ok for p, _, ok in parquet_files.values()}
    with Store(db, read_only=True) as store:
        assert store.counts()["quarantine"] == N_BIG // BAD_EVERY
        assert store.sql("SELECT count(DISTINCT request_id) FROM predictions").item() == store.counts()["predictions"]


@pytest.mark.slow
def test_sigkill_many_times(tmp_path, log_files):
    db = tmp_path / "crash_many.duckdb"
    _kill_runs(db, log_files, n_kills=12, seed=2026)
    _finish_and_check(db, log_files)


def _holding_writer(db: Path, path: Path) -> subprocess.Popen:
    """A process that opens the store for writing, says 'ready', then ingests ``path``."""
    code = ("import sys; from toolkit import Store; s = Store(sys.argv[1]); print('ready', flush=True); "
            "r = s.ingest('predictions', sys.argv[2]); s.close(); print(r.accepted, flush=True)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(db), str(path)], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_two_writers_at_once_the_second_fails_clearly(tmp_path, log_files):
    db = tmp_path / "two.duckdb"
    big, small = log_files["big"][0], log_files["small"][0]
    first = _holding_writer(db, big)
    second = subprocess.run(_vdrift("ingest", "predictions", str(small), "--db", str(db)), env=_env(),
                            capture_output=True, text=True, timeout=120)
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0 and int(out.strip()) == log_files["big"][2], err
    assert second.returncode == 3, (second.stdout, second.stderr)
    assert second.stderr.startswith("vdrift: error: ") and "in use by another process" in second.stderr
    assert "wait for it to finish" in second.stderr and "Traceback" not in second.stderr
    assert _check_whole_files(db, log_files) == {"big.csv": log_files["big"][2]}  # the refused file left no trace
    retry = subprocess.run(_vdrift("ingest", "predictions", str(small), "--db", str(db), "-q"), env=_env(),
                           capture_output=True, text=True, timeout=120)
    assert retry.returncode == 0, retry.stderr
    assert _check_whole_files(db, log_files) == {"big.csv": log_files["big"][2], "small.csv": N_SMALL}


def test_two_cli_ingests_racing(tmp_path, log_files):
    """Both started by the CLI, the second once the first printed its first progress line: whichever
    loses is refused clearly; retrying completes."""
    db = tmp_path / "race.duckdb"
    big, small = str(log_files["big"][0]), str(log_files["small"][0])
    first = subprocess.Popen(_vdrift("ingest", "predictions", big, "--db", str(db), "-q", "--progress"), env=_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert first.stderr.readline().startswith("[1/1] ")  # the first has the store open: now race it
    second = subprocess.run(_vdrift("ingest", "predictions", small, "--db", str(db), "-q"), env=_env(),
                            capture_output=True, text=True, timeout=120)
    err = first.communicate(timeout=120)[1]
    for code, stderr in ((first.returncode, err), (second.returncode, second.stderr)):
        assert "Traceback" not in stderr
        assert code == 0 or (code == 3 and "in use by another process" in stderr), (code, stderr)
    _check_whole_files(db, log_files)
    for path in (big, small):  # retrying finishes whatever was refused; nothing is duplicated
        retry = subprocess.run(_vdrift("ingest", "predictions", path, "--db", str(db), "-q"), env=_env(),
                               capture_output=True, text=True, timeout=120)
        assert retry.returncode == 0, retry.stderr
    assert _check_whole_files(db, log_files) == {"big.csv": log_files["big"][2], "small.csv": N_SMALL}


def test_reader_while_a_writer_runs_gets_a_clear_message(tmp_path, log_files):
    db = tmp_path / "rw.duckdb"
    writer = _holding_writer(db, log_files["big"][0])
    status = subprocess.run(_vdrift("status", "--db", str(db)), env=_env(), capture_output=True, text=True, timeout=60)
    out, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, err
    assert status.returncode == 3 and "in use by another process" in status.stderr
    assert "Traceback" not in status.stderr
    assert _check_whole_files(db, log_files) == {"big.csv": log_files["big"][2]}


def test_ctrl_c_during_ingest_rolls_back_with_a_message(tmp_path, log_files):
    """SIGINT once the CLI is running (imports done): exit 130, a one-line message, the file absent.

    (Ctrl-C during Python's own start-up, before ``main`` runs, still shows a
    KeyboardInterrupt traceback from the import system.)
    """
    db = tmp_path / "int.duckdb"
    paths = [str(p) for p, _, _ in log_files.values()]
    rnd = random.Random(11)
    n_lines = _progress_lines(tmp_path / "lines.duckdb", paths)
    interrupted = 0
    for _ in range(4):
        # the interrupt follows a progress line (a file started, its rows read, a file committed)
        proc, sent, err = _run_until_line(["ingest", "predictions", *paths, "--db", str(db), "-q", "--force"],
                                          rnd.randint(1, n_lines - 1), sig=signal.SIGINT)
        err = "\n".join(ln for ln in err.splitlines() if not ln.startswith(("[", "  ")))  # progress lines
        assert "Traceback" not in err, err
        if proc.returncode == 130:
            interrupted += 1
            assert err.strip() == "vdrift: interrupted; the store is unchanged for the file in progress"
        elif proc.returncode == -signal.SIGINT:
            # the signal came after main() had returned, while the interpreter was exiting:
            # the ingest itself completed
            assert err == "", err
        else:
            assert proc.returncode == 0, err
        _check_whole_files(db, log_files)
    assert interrupted >= 2


# --------------------------------------------------------------------------- a full disk
_NO_ROOM = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG, like ENOSPC
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
from toolkit.cli import main
sys.exit(main(sys.argv[2:]))
"""


def test_a_full_disk_rolls_back_with_a_message_and_the_store_stays_usable(tmp_path, log_files):
    """No room for the store's writes (a file-size limit stands in for a full disk: the same failed write).

    Before: "fd.csv: not ingested ...; DuckDB said: IO Error: Could not write file ...: File too large
    (if the file looks valid, please report this)", blaming the input file.
    """
    from .test_hardening_ingest import snapshot

    db = tmp_path / "full.duckdb"
    small, big = log_files["small"][0], log_files["big"][0]
    with Store(db) as store:
        store.ingest("predictions", small)
        before = snapshot(store)
    limit = db.stat().st_size + 200_000  # far less than the big file's rows need
    out = subprocess.run([sys.executable, "-c", _NO_ROOM, str(limit), "ingest", "predictions", str(big),
                          "--db", str(db)], env=_env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 3, (out.stdout, out.stderr)
    assert out.stderr.startswith("vdrift: error: no room to write store") and "Traceback" not in out.stderr
    assert "no input file is to blame" in out.stderr and "please report" not in out.stderr
    with Store(db) as store:  # the store opens (its WAL replays), exactly as before
        check_store_consistent(store)
        assert snapshot(store) == before
    # with room again the same command loads the file whole
    out = subprocess.run(_vdrift("ingest", "predictions", str(big), "--db", str(db)), env=_env(),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert _check_whole_files(db, {k: log_files[k] for k in ("small", "big")}) == {
        "small.csv": N_SMALL, "big.csv": log_files["big"][2]}


# --------------------------------------------------------------------------- a failure at every statement
class _Injected(duckdb.IOException):
    """Raised by the connection proxy in place of one statement (as a disk error would be)."""


class _FailingConnection:
    """Forwards to a DuckDB connection, raising _Injected at the fail_at-th execute() call."""

    def __init__(self, con, fail_at: int | None):
        self._con, self.fail_at, self.calls = con, fail_at, 0

    def execute(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.fail_at:
            raise _Injected(f"injected failure at statement {self.calls}: {str(args[0])[:60]!r}")
        return self._con.execute(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._con, name)


@pytest.mark.parametrize("force", [False, True], ids=["first-ingest", "force-reingest"])
def test_a_failure_at_any_statement_leaves_the_store_unchanged(tmp_path, force):
    """Every SQL statement of an ingest is made to fail in turn; each time the store is exactly as before."""
    from .test_hardening_ingest import snapshot

    f = tmp_path / "p.csv"
    f.write_text("request_id,ts,model_version,prediction,newcov\n"
                 "a,2026-11-02 10:00:00,v1,approved,1\nb,bad,v1,approved,2\na,2026-11-02 11:00:00,v1,x,3\n"
                 "c,2026-11-02 10:00:00,v1\n")

    def fresh() -> Store:
        store = Store(":memory:")
        if force:
            store.ingest("predictions", f)
        return store

    store = fresh()
    real = store.con
    store.con = counter = _FailingConnection(real, None)
    store.ingest("predictions", f, force=force)
    n_statements = counter.calls
    store.con = real
    store.close()
    assert n_statements > 15

    outcomes = {"ingested": 0, "cleanup": 0, "refused": 0, "failed": 0}
    for k in range(1, n_statements + 1):
        store = fresh()
        before = snapshot(store)
        real = store.con
        store.con = _FailingConnection(real, k)
        try:
            r = store.ingest("predictions", f, force=force).results[0]
        except VdriftError as exc:  # a statement before any file was read: refused as a whole
            store.con = real
            assert "injected failure" in str(exc) and snapshot(store) == before
            outcomes["refused"] += 1
            r = store.ingest("predictions", f, force=force).results[0]
        else:
            store.con = real
            check_store_consistent(store)
            if r.status == "failed":  # the failure came before or at COMMIT: nothing changed
                assert "injected failure" in r.message
                assert snapshot(store) == before, f"statement {k} of {n_statements} left a trace"
                outcomes["failed"] += 1
                r = store.ingest("predictions", f, force=force).results[0]  # and the same ingest then succeeds
            else:  # only the clean-up of temporary tables after COMMIT failed: the file is in, whole
                outcomes["cleanup"] += 1
        assert (r.status, r.rows_read, r.accepted, r.quarantined) == ("ingested", 4, 1, 3), (k, r.summary())
        outcomes[r.status] += 1
        store.close()
    # the DROP statements of temporary tables after COMMIT are the only ones whose failure leaves the file in
    assert outcomes["cleanup"] == 5 and outcomes["ingested"] == n_statements, outcomes
