"""Test helper: load a report in headless Chromium with the network blocked and report what went wrong.

Drives the system Chromium (Debian's ``chromium`` package, ``make chromium``) with Playwright through
``executable_path``, so Playwright never downloads a browser of its own (do not run ``playwright install``).
Every request for anything but a ``file:`` or ``data:`` URL is aborted and recorded, and so is every web
socket; console errors, uncaught exceptions and failed loads are collected; the non-empty ``<svg>`` charts
of the rendered page are counted and a screenshot is taken. Used by tests/report/test_report_render.py and handy
for checking a report by hand, from the repository root::

    python -m tests.browser reports/2026-11-09-incident/report.html shot.png
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

# The Python package bundles its driver; browsers are only ever downloaded by `playwright install`, which this
# project never runs. The variable makes that explicit for any tool that honours it.
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
#: schemes a page may load without the network (the report's own file, inline data, the browser's own pages)
LOCAL_SCHEMES = ("file:", "data:", "about:", "blob:", "chrome:", "chrome-error:", "devtools:")
#: Belt and braces next to the request routing: no proxy, no name resolution, no background traffic.
FLAGS = (
    "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
    "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
)
WIDTH, HEIGHT, MAX_HEIGHT = 1280, 900, 16000

SVG_PROBE = """
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


class BrowserUnavailable(RuntimeError):
    """No headless Chromium (or no Playwright) on this machine."""


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
        Console errors/assertions, uncaught exceptions and failed loads.
    remote_requests
        URLs of requests (and web sockets) for anything but local files / data URLs; all were aborted.
    svgs
        Per rendered chart SVG: width, height and number of drawing elements.
    screenshot
        PNG of the page (None if not requested).
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
        Where to write a PNG of the whole page (up to 16000 px tall; optional).
    segment
        If positive, also write ``<stem>-partN.png`` slices of this height.
    timeout
        Seconds to wait for the browser and the page load.
    settle
        Seconds to keep listening for late console messages after load.

    Raises
    ------
    BrowserUnavailable
        Without a Chromium binary or without Playwright.
    """
    binary = find_chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # the test extra installs it
        raise BrowserUnavailable(f"Playwright is not installed ({exc}): pip install -e '.[test]'") from exc
    url = Path(html).resolve().as_uri()
    errors: list[str] = []
    remote: list[str] = []

    def _route(route) -> None:
        u = route.request.url
        if u.startswith(("file:", "data:")):
            route.continue_()
        else:  # anything else would leave the machine (or pretend to): refuse and record it
            if u not in remote:
                remote.append(u)
            route.abort("blockedbyclient")

    def _socket(ws) -> None:
        remote.append(ws.url)
        ws.close()

    def _request(req) -> None:  # also the requests routing never sees (a service worker's, say)
        u = req.url
        if not u.startswith(LOCAL_SCHEMES) and u not in remote:
            remote.append(u)

    def _console(msg) -> None:
        if msg.type in ("error", "assert"):
            errors.append(f"console.{msg.type}: {msg.text}")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=binary, args=list(FLAGS), headless=True,
                                     timeout=timeout * 1000)
        try:
            context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT}, service_workers="block")
            context.route("**/*", _route)
            context.route_web_socket("**/*", _socket)
            page = context.new_page()
            page.on("request", _request)
            page.on("console", _console)
            page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
            page.on("requestfailed", lambda req: errors.append(f"load failed: {req.failure} {req.url}"))
            page.goto(url, wait_until="load", timeout=timeout * 1000)
            page.wait_for_timeout(settle * 1000)
            probe = json.loads(page.evaluate(SVG_PROBE))
            shot_path = None
            if screenshot is not None:
                height = max(HEIGHT, min(int(probe["height"]), MAX_HEIGHT))
                page.set_viewport_size({"width": WIDTH, "height": height})
                shot_path = Path(screenshot)
                page.screenshot(path=shot_path, timeout=timeout * 1000)
                if segment and height > segment:  # readable slices of a tall page
                    for i, top in enumerate(range(0, height, segment)):
                        clip = {"x": 0, "y": top, "width": WIDTH, "height": min(segment, height - top)}
                        page.screenshot(path=shot_path.with_name(f"{shot_path.stem}-part{i}.png"), clip=clip,
                                        timeout=timeout * 1000)
        finally:
            browser.close()
    return PageCheck(
        url=url, console_errors=tuple(errors), remote_requests=tuple(remote),
        svgs=tuple(probe["svgs"]), title=probe["title"], text_length=int(probe["text_length"]),
        scripts=tuple(probe["scripts"]), screenshot=shot_path, raw=probe,
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.browser REPORT.html [SCREENSHOT.png]``: check a report page."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print("usage: python -m tests.browser REPORT.html [SCREENSHOT.png]", file=sys.stderr)
        return 2
    check = check_page(args[0], screenshot=args[1] if len(args) > 1 else None, segment=1600)
    print(check.summary())
    return 0 if check.ok and check.nonempty_svgs else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
