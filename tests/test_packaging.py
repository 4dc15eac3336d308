"""A wheel-installed vdrift renders a report: the notebooks ship as package data.

The wheel is built from a copy of the sources (so the build writes nothing
into the checkout) with ``pip wheel --no-build-isolation`` (no download: the
test extra brings setuptools), installed without its dependencies into a
fresh venv, and run from a folder outside the checkout. The new venv reaches
the dependencies already installed for the suite through a ``.pth`` line naming
this interpreter's site-packages (``.pth`` files *inside* that folder are not
processed, so the checkout's editable install stays out of reach) and their
Jupyter data files through ``JUPYTER_PATH``; the test
checks that the toolkit the venv imports, and the kernel the report runs in,
are the venv's own.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# what the build needs: the package (with its link to notebooks/), the notebooks, the metadata
SOURCES = ("pyproject.toml", "README.md", "toolkit", "notebooks")

pytestmark = pytest.mark.slow


def _run(cmd: list[str | Path], cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with the wheel installed; returns its ``bin`` folder."""
    base = tmp_path_factory.mktemp("packaging")
    src = base / "src"
    src.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, src / name)
    dist = base / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "--quiet", "-w", dist, src], cwd=base)
    (wheel,) = dist.glob("vdrift-*.whl")

    venv = base / "venv"
    _run([sys.executable, "-m", "venv", venv], cwd=base)
    bin_dir = venv / "bin"
    py = bin_dir / "python"
    purelib = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=base).strip())
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (purelib / "_vdrift_test_deps.pth").write_text("\n".join(sorted(ours)) + "\n")
    _run([py, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", wheel], cwd=base)
    return bin_dir


def _env(bin_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"VDRIFT_NOTEBOOKS", "VDRIFT_DB", "PYTHONPATH"}}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(bin_dir.parent)
    # nbconvert's templates are data files of the suite's environment (share/jupyter), as they would be of the
    # venv had the dependencies been installed into it; this also shows the venv that environment's python3
    # kernelspec, which the report must not run in (its interpreter would import the checkout's toolkit)
    env["JUPYTER_PATH"] = str(Path(sys.prefix) / "share" / "jupyter")
    return env


def test_the_wheel_holds_the_notebooks_and_the_venv_imports_it(installed: Path, tmp_path: Path) -> None:
    code = (
        "import json, toolkit\n"
        "from importlib import resources\n"
        "from jupyter_client.kernelspec import KernelSpecManager\n"
        "from toolkit.report.execute import ensure_kernel\n"
        "nb = resources.files('toolkit.report') / 'notebooks'\n"
        "spec = KernelSpecManager().get_kernel_spec(ensure_kernel())\n"
        "print(json.dumps({'toolkit': toolkit.__file__, 'notebooks': sorted(p.name for p in nb.iterdir()),\n"
        "                  'kernel': spec.argv[0]}))\n"
    )
    out = json.loads(_run([installed / "python", "-c", code], cwd=tmp_path, env=_env(installed)))
    venv = installed.parent.resolve()
    assert venv in Path(out["toolkit"]).resolve().parents, out
    assert out["notebooks"] == ["incident_report.ipynb", "weekly_report.ipynb"]
    kernel = Path(out["kernel"])
    assert out["kernel"] in {"python", "python3"} or kernel.parent.resolve() == installed.resolve(), out


def test_a_wheel_installed_vdrift_renders_the_incident_report(installed: Path, tmp_path: Path) -> None:
    env = _env(installed)
    vdrift = installed / "vdrift"
    _run([vdrift, "samples", "generate", "--scenario", "all", "--rows", "4000", "--seed", "0",
          "--format", "csv", "logs"], cwd=tmp_path, env=env)
    for kind, name in (("artifacts", "artifacts.csv"), ("deployments", "deployments.jsonl"),
                       ("predictions", "predictions.csv")):
        _run([vdrift, "ingest", kind, f"logs/{name}", "--db", "demo.duckdb", "--quiet"], cwd=tmp_path, env=env)
    printed = _run([vdrift, "report", "incident", "--db", "demo.duckdb",
                    "--param", "metric=rate:prediction=approved", "--param", "baseline=2026-11-02..2026-11-09",
                    "--param", "comparison=2026-11-09..2026-11-16", "--param", "n_boot=10"],
                   cwd=tmp_path, env=env, timeout=900).strip()

    assert printed == "reports/2026-11-09-incident/report.html"  # relative: it lies inside the working folder
    page = tmp_path / printed
    assert page.is_file()
    headline = json.loads((page.parent / "summary.json").read_text(encoding="utf-8"))["headline"]
    assert "data drift" in headline and "version drift" in headline, headline
    assert html.escape(headline, quote=False) in page.read_text(encoding="utf-8")
