"""``make lab`` starts JupyterLab on localhost only, also as root."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from tests.conftest import ROOT


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_lab_serves_on_localhost_only(tmp_path):
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"))
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "lab", "LAB_FLAGS=--port=0 --no-browser --ServerApp.token=vdrift-test"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    found: list[str] = []
    seen: list[str] = []
    ready = threading.Event()

    def read() -> None:  # the server says where it listens: that line is the event waited for
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            m = re.search(r"http://([^/:\s]+):(\d+)/lab", line)
            if m and not found:
                found.extend(m.groups())
                ready.set()
        ready.set()  # the process ended without serving

    threading.Thread(target=read, daemon=True).start()
    try:
        ready.wait(timeout=600)  # a guard against a hang, not a speed limit
        assert found, "make lab did not start a server:\n" + "".join(seen[-30:])
        host, port = found
        assert host == "127.0.0.1"
        assert not any("0.0.0.0" in line for line in seen)
        # it answers once its event loop runs (just after the line): retried until then, the guard bounds it
        status = None
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token=vdrift-test") as resp:
                    status = resp.status
                    break
            except urllib.error.URLError:
                if proc.poll() is not None:
                    break
                time.sleep(0.5)
        assert status == 200, "".join(seen[-30:])
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
