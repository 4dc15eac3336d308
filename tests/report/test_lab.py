"""``make lab`` starts JupyterLab on localhost only, also as root."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import urllib.error
import urllib.request

import pytest

from tests.conftest import ROOT

# Jupyter Server 2.x prints "is running at" and writes its runtime file jpserver-<pid>.json *before* its event
# loop binds the port (ServerApp._bind_http_server is an io_loop callback), so neither says it listens yet.
# The extensions' start hooks run from ServerApp._post_start, queued after that bind: this probe's line is the
# observable event "the port is listening", and it reports the addresses the server actually holds.
PROBE = '''
def _jupyter_server_extension_points():
    return [{"module": "vdrift_lab_probe"}]


def _load_jupyter_server_extension(serverapp):
    pass


async def _start_jupyter_server_extension(serverapp):
    addrs = [s.getsockname()[:2] for s in serverapp.http_server._sockets.values()]
    serverapp.log.info("vdrift-lab-probe listening %s", " ".join(f"{h}:{p}" for h, p in addrs))
'''


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_lab_serves_on_localhost_only(tmp_path):
    runtime, cfg, probe = tmp_path / "runtime", tmp_path / "cfg", tmp_path / "probe"
    cfg.mkdir()
    probe.mkdir()
    (probe / "vdrift_lab_probe.py").write_text(PROBE)
    (cfg / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": {"vdrift_lab_probe": True}}})
    )
    pythonpath = os.pathsep.join(p for p in (str(probe), os.environ.get("PYTHONPATH", "")) if p)
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(runtime), JUPYTER_CONFIG_DIR=str(cfg), PYTHONPATH=pythonpath)
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "lab", "LAB_FLAGS=--port=0 --no-browser --ServerApp.token=vdrift-test"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    announced: list[str] = []  # host, port from the "is running at" URL line
    listening: list[str] = []  # host:port pairs the probe saw bound
    seen: list[str] = []
    ready = threading.Event()

    def read() -> None:  # the server's own lines are the events waited for
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            m = re.search(r"http://([^/:\s]+):(\d+)/lab", line)
            if m and not announced:
                announced.extend(m.groups())
            m = re.search(r"vdrift-lab-probe listening (.*)$", line)
            if m and not ready.is_set():
                listening.extend(m.group(1).split())
                ready.set()
        ready.set()  # the process ended without serving

    threading.Thread(target=read, daemon=True).start()
    try:
        # a guard against a hang, not the synchronisation: it fails with the server's last lines
        assert ready.wait(timeout=600), "make lab neither listened nor exited in 600 s:\n" + "".join(seen[-30:])
        assert announced and listening, "make lab did not start a server:\n" + "".join(seen[-30:])
        host, port = announced
        assert host == "127.0.0.1"
        assert listening == [f"127.0.0.1:{port}"], listening
        assert not any("0.0.0.0" in line for line in seen)
        # its runtime file (written before the port was bound, so present now) says the same URL, port and token
        infos = sorted(runtime.glob("jpserver-*.json"))
        assert len(infos) == 1, f"expected one jpserver-<pid>.json in {runtime}, found {[i.name for i in infos]}"
        info = json.loads(infos[0].read_text())
        assert (info["hostname"], info["port"], info["token"]) == ("127.0.0.1", int(port), "vdrift-test"), info
        assert info["url"].startswith(f"http://127.0.0.1:{port}/"), info
        # one request, no retry: the port is bound and its event loop runs
        try:
            with urllib.request.urlopen(f"{info['url']}api/status?token={info['token']}", timeout=600) as resp:
                status = resp.status
        except (urllib.error.URLError, TimeoutError) as exc:
            raise AssertionError(f"make lab did not answer on port {port}: {exc!r}\n" + "".join(seen[-30:])) from exc
        assert status == 200, "".join(seen[-30:])
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
