"""Load a report in headless Chromium with the network blocked and report what went wrong.

A tiny DevTools-protocol client over ``--remote-debugging-pipe`` (standard
library only): it records console errors, uncaught exceptions, log entries
(failed resource loads) and every request for a non-local URL, counts the
non-empty ``<svg>`` charts in the rendered page and takes a full-page
screenshot. Used by the report tests and handy for checking a report by hand::

    python -m toolkit.report.browser reports/2026-11-09-incident/report.html
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import VdriftError

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
_LOCAL_SCHEMES = ("file:", "data:", "about:", "blob:", "chrome:", "devtools:")
_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
    "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
    "--remote-debugging-pipe", "--window-size=1280,900",
)

_SVG_PROBE = """
(() => {
  const svgs = Array.from(document.querySelectorAll('figure.vdrift-figure svg, .jp-OutputArea-output svg'));
  const sizes = svgs.map(s => { const r = s.getBoundingClientRect();
    return {w: r.width, h: r.height, marks: s.querySelectorAll('path, rect, line, text').length}; });
  return JSON.stringify({
    svgs: sizes,
    scripts: Array.from(document.scripts).map(s => s.src || '(inline)'),
    title: document.title,
    text_length: document.body ? document.body.innerText.length : 0,
    height: Math.ceil(document.documentElement.scrollHeight),
    alert_text_escaped: document.body ? document.body.innerText.includes('<script>') : false
  });
})()
"""


class BrowserUnavailable(VdriftError):
    """No headless Chromium on this machine."""


def find_chromium() -> str:
    """Path of the Chromium binary (``$VDRIFT_CHROMIUM`` first)."""
    env = os.environ.get("VDRIFT_CHROMIUM")
    for cand in ((env,) if env else ()) + CHROMIUM_CANDIDATES:
        if cand and Path(cand).exists():
            return cand
    found = shutil.which("chromium")
    if found:
        return found
    raise BrowserUnavailable(
        "headless Chromium is not installed: install the Debian package with "
        "`apt-get install -y chromium` (make test does this) or set VDRIFT_CHROMIUM"
    )


@dataclass(frozen=True)
class PageCheck:
    """What Chromium saw when it loaded a page with the network blocked.

    Attributes
    ----------
    console_errors
        Console errors/assertions, uncaught exceptions and error log entries.
    remote_requests
        URLs of requests for anything but local files / data URLs.
    svgs
        Per rendered chart SVG: width, height and number of drawing elements.
    screenshot
        PNG of the full page (None if not requested).
    """

    url: str
    console_errors: tuple[str, ...]
    remote_requests: tuple[str, ...]
    svgs: tuple[dict, ...]
    title: str
    text_length: int
    scripts: tuple[str, ...] = ()
    screenshot: Path | None = None
    raw: dict = field(default_factory=dict, repr=False)

    @property
    def nonempty_svgs(self) -> int:
        """Chart SVGs with a size and at least one mark."""
        return sum(1 for s in self.svgs if s["w"] > 10 and s["h"] > 10 and s["marks"] > 0)

    @property
    def ok(self) -> bool:
        """True when the page logged no console error and requested nothing remote."""
        return not self.console_errors and not self.remote_requests

    def summary(self) -> str:
        """What the browser saw, as text."""
        lines = [f"{self.url}: title {self.title!r}, {self.nonempty_svgs} non-empty chart SVG(s)"]
        lines += [f"  console error: {e}" for e in self.console_errors]
        lines += [f"  remote request: {u}" for u in self.remote_requests]
        if self.screenshot:
            lines.append(f"  screenshot: {self.screenshot}")
        return "\n".join(lines)


class _Pipe:
    """NUL-delimited JSON messages over Chromium's debugging pipe (fd 3 in, fd 4 out)."""

    def __init__(self, write_fd: int, read_fd: int) -> None:
        self.w, self.r = write_fd, read_fd
        self.buf = b""
        self.next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30) -> dict:
        self.next_id += 1
        msg: dict = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        want = self.next_id
        deadline = time.monotonic() + timeout
        while True:
            for m in self._read(deadline):
                if m.get("id") == want:
                    if "error" in m:
                        raise RuntimeError(f"DevTools {method} failed: {m['error']}")
                    return m.get("result", {})
                self.events.append(m)

    def wait_event(self, name: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        if any(e.get("method") == name for e in self.events):
            return True
        while time.monotonic() < deadline:
            try:
                msgs = self._read(deadline)
            except TimeoutError:
                return False
            self.events.extend(msgs)
            if any(m.get("method") == name for m in msgs):
                return True
        return False

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self.events.extend(self._read(deadline))
            except TimeoutError:
                return

    def _read(self, deadline: float) -> list[dict]:
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer in time")
            ready, _, _ = select.select([self.r], [], [], left)
            if not ready:
                continue
            chunk = os.read(self.r, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the debugging pipe (did it crash?)")
            self.buf += chunk
        parts = self.buf.split(b"\0")
        self.buf = parts[-1]
        return [json.loads(p) for p in parts[:-1] if p]


def check_page(
    html: str | Path,
    *,
    screenshot: str | Path | None = None,
    segment: int = 0,
    timeout: float = 60,
    settle: float = 1.0,
) -> PageCheck:
    """Open ``html`` in headless Chromium with the network blocked.

    Parameters
    ----------
    html
        The local HTML file.
    screenshot
        Where to write a full-page PNG (optional).
    segment
        If positive, also write ``<stem>-partN.png`` slices of this height.
    timeout
        Seconds to wait for the page load.
    settle
        Seconds to keep listening for late console messages after load.

    Raises
    ------
    BrowserUnavailable
        Without a Chromium binary.
    """
    binary = find_chromium()
    url = Path(html).resolve().as_uri()
    profile = tempfile.mkdtemp(prefix="vdrift-chromium-")
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    # Chromium reads commands on fd 3 and writes replies on fd 4. Move both ends
    # above 4 first so that placing one cannot clobber the other.
    def _fds() -> None:
        a = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
        b = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
        os.dup2(a, 3)
        os.dup2(b, 4)

    proc = subprocess.Popen(
        [binary, *_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        preexec_fn=_fds, pass_fds=(3, 4), close_fds=True,
    )
    os.close(to_child_r)
    os.close(from_child_w)
    pipe = _Pipe(to_child_w, from_child_r)
    try:
        target = pipe.send("Target.createTarget", {"url": "about:blank"}, timeout=timeout)["targetId"]
        session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime.enable", "Log.enable", "Network.enable", "Page.enable"):
            pipe.send(domain, session=session)
        pipe.send("Page.navigate", {"url": url}, session=session, timeout=timeout)
        if not pipe.wait_event("Page.loadEventFired", timeout):
            raise TimeoutError(f"{url} did not finish loading within {timeout} s")
        pipe.drain(settle)
        probe = json.loads(pipe.send("Runtime.evaluate", {"expression": _SVG_PROBE, "returnByValue": True},
                                     session=session)["result"]["value"])
        shot_path = None
        if screenshot is not None:
            height = max(900, min(int(probe["height"]), 16000))
            pipe.send("Emulation.setDeviceMetricsOverride",
                      {"width": 1280, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=session)
            data = pipe.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                             session=session, timeout=timeout)["data"]
            shot_path = Path(screenshot)
            shot_path.write_bytes(base64.b64decode(data))
            if segment and height > segment:  # readable slices of a tall page
                for i, top in enumerate(range(0, height, segment)):
                    clip = {"x": 0, "y": top, "width": 1280, "height": min(segment, height - top), "scale": 1}
                    part = pipe.send("Page.captureScreenshot", {"format": "png", "clip": clip,
                                                                "captureBeyondViewport": True},
                                     session=session, timeout=timeout)["data"]
                    shot_path.with_name(f"{shot_path.stem}-part{i}.png").write_bytes(base64.b64decode(part))
        errors, remote = _collect(pipe.events)
        return PageCheck(
            url=url, console_errors=tuple(errors), remote_requests=tuple(remote),
            svgs=tuple(probe["svgs"]), title=probe["title"], text_length=int(probe["text_length"]),
            scripts=tuple(probe["scripts"]), screenshot=shot_path, raw=probe,
        )
    finally:
        try:
            pipe.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.close(to_child_w)
        os.close(from_child_r)
        shutil.rmtree(profile, ignore_errors=True)


def _collect(events: list[dict]) -> tuple[list[str], list[str]]:
    errors: list[str] = []
    remote: list[str] = []
    for ev in events:
        method, p = ev.get("method"), ev.get("params", {})
        if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            errors.append(f"console.{p['type']}: {args}")
        elif method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            errors.append(f"uncaught: {d.get('exception', {}).get('description') or d.get('text')}")
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            e = p["entry"]
            errors.append(f"log: {e.get('text')} {e.get('url', '')}".strip())
        elif method == "Network.requestWillBeSent":
            u = p.get("request", {}).get("url", "")
            if not u.startswith(_LOCAL_SCHEMES):
                remote.append(u)
        elif method == "Network.loadingFailed" and p.get("errorText"):
            errors.append(f"load failed: {p.get('errorText')}")
    return errors, remote


def main(argv: list[str] | None = None) -> int:
    """``python -m toolkit.report.browser REPORT.html [SCREENSHOT.png]``: check a report page."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print("usage: python -m toolkit.report.browser REPORT.html [SCREENSHOT.png]", file=sys.stderr)
        return 2
    check = check_page(args[0], screenshot=args[1] if len(args) > 1 else None, segment=1600)
    print(check.summary())
    return 0 if check.ok and check.nonempty_svgs else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
