"""Generate the benchmark tiers: day-partitioned Parquet logs with history, registry and truth.

Each tier is one run of the sample simulator (:func:`toolkit.samples.generate`,
all scenarios, seed 0) written to ``benchmarks/data/<tier>/``::

    predictions/day=YYYY-MM-DD/part.parquet   one file per UTC day (14 days)
    deployments.jsonl  artifacts.csv  ground_truth.json

A tier that is already on disk with the same rows and seed is kept (the
simulator's output is byte-identical for the same arguments).

Usage::

    .venv/bin/python benchmarks/generate.py --tiers 100k 1m 10m
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"

#: tier name -> requests simulated (shadow rows come on top, about 5%)
TIERS: dict[str, int] = {
    "100k": 100_000,
    "1m": 1_000_000,
    "10m": 10_000_000,
    "100m": 100_000_000,
}
SEED = 0


def tier_dir(tier: str, root: Path = DATA) -> Path:
    """Directory of a tier's files."""
    return root / tier


def is_ready(tier: str, root: Path = DATA, seed: int = SEED) -> bool:
    """True when the tier's files exist and were written for the same rows and seed."""
    truth = tier_dir(tier, root) / "ground_truth.json"
    if not truth.exists():
        return False
    try:
        meta = json.loads(truth.read_text())
    except (OSError, ValueError):
        return False
    return meta.get("rows") == TIERS[tier] and meta.get("seed") == seed


def generate_tier(tier: str, root: Path = DATA, seed: int = SEED, *, force: bool = False) -> dict:
    """Write one tier (unless it is already there) and return what was done.

    Returns
    -------
    dict
        ``tier``, ``rows``, ``rows_written``, ``seconds`` (0 when reused),
        ``bytes`` (size of the prediction files) and ``reused``.
    """
    if tier not in TIERS:
        raise SystemExit(f"unknown tier {tier!r}: choose from {', '.join(TIERS)}")
    out = tier_dir(tier, root)
    reused = is_ready(tier, root, seed) and not force
    seconds = 0.0
    if not reused:
        from toolkit.samples import generate

        t0 = time.perf_counter()
        generate(out, ("all",), rows=TIERS[tier], seed=seed, fmt="parquet", partition_by_day=True)
        seconds = time.perf_counter() - t0
    meta = json.loads((out / "ground_truth.json").read_text())
    size = sum(p.stat().st_size for p in (out / "predictions").rglob("*.parquet"))
    return {"tier": tier, "rows": meta["rows"], "rows_written": meta["rows_written"], "seconds": seconds,
            "bytes": size, "reused": reused}


def day_files(tier: str, root: Path = DATA) -> list[Path]:
    """The tier's prediction files, one per day, oldest first."""
    return sorted((tier_dir(tier, root) / "predictions").glob("day=*/part.parquet"))


def main(argv: list[str] | None = None) -> int:
    """Command line entry point: write the requested tiers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiers", nargs="+", default=["1m", "10m"], choices=list(TIERS))
    parser.add_argument("--root", type=Path, default=DATA, help="where tiers are written (default benchmarks/data)")
    parser.add_argument("--force", action="store_true", help="regenerate even when the tier exists")
    args = parser.parse_args(argv)
    for tier in args.tiers:
        info = generate_tier(tier, args.root, force=args.force)
        what = "reused" if info["reused"] else f"generated in {info['seconds']:.1f} s"
        print(f"{tier}: {info['rows_written']:,} rows, {info['bytes'] / 2**20:.1f} MiB Parquet, {what}", flush=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    sys.exit(main())
