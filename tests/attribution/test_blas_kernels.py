"""The same seed gives the same intervals whichever BLAS kernel numpy runs.

CI machines and developer machines may run different OpenBLAS kernels (CI once had
OPENBLAS_CORETYPE set; a developer machine did not). The outcome models' coefficient
draws used ``U * sqrt(w)`` from ``eigh``, whose column signs are LAPACK's choice per
kernel, so the bootstrap drew other coefficients and the demo's intervals moved in
their third digit. The draws now use the unique symmetric square root.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from toolkit.attribution.models import _sqrt_psd

ROOT = Path(__file__).resolve().parents[2]

_SCRIPT = """
import json, sys, tempfile
from pathlib import Path
from toolkit import Store
from toolkit.attribution import attribute
demo = Path(sys.argv[1])
with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "d.duckdb") as s:
    for kind, name in (("artifacts", "artifacts.csv"), ("deployments", "deployments.jsonl"),
                       ("predictions", "predictions.csv.gz")):
        s.ingest(kind, [demo / name])
    res = attribute(s, "mean:score", "2026-11-02..2026-11-09", "2026-11-09..2026-11-16", n_boot=20, seed=0)
    print(json.dumps(res.to_frame().select("method", "component", "estimate", "ci_low", "ci_high").rows()))
"""


def test_the_square_root_is_the_symmetric_one_and_ignores_eigenvector_signs() -> None:
    rng = np.random.default_rng(3)
    a = rng.standard_normal((5, 5))
    cov = a @ a.T
    cov[:, 4] = cov[4, :] = 0.0  # a singular direction, as a constant design term gives
    root = _sqrt_psd(cov)
    np.testing.assert_allclose(root, root.T, atol=1e-12)
    np.testing.assert_allclose(root @ root.T, cov, atol=1e-10)
    w, U = np.linalg.eigh(cov)
    flipped = U * np.array([1, -1, 1, -1, -1])  # the same eigenvectors with other signs
    np.testing.assert_allclose((flipped * np.sqrt(np.clip(w, 0, None))) @ flipped.T, root, atol=1e-10)


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="OpenBLAS kernel names are x86's")
def test_demo_intervals_are_equal_on_two_blas_kernels() -> None:
    got = {}
    for kernel in ("Haswell", "Prescott"):
        env = {**os.environ, "OPENBLAS_CORETYPE": kernel}
        out = subprocess.run([sys.executable, "-c", _SCRIPT, str(ROOT / "data" / "samples" / "demo")], env=env,
                             capture_output=True, text=True, check=True, timeout=600)
        got[kernel] = json.loads(out.stdout.strip().splitlines()[-1])
    a, b = got["Haswell"], got["Prescott"]
    assert [r[:2] for r in a] == [r[:2] for r in b] and len(a) >= 12
    for ra, rb in zip(a, b, strict=True):
        np.testing.assert_allclose(ra[2:], rb[2:], rtol=1e-9, atol=1e-12, err_msg=f"{ra[:2]}")
