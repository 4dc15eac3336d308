"""Number formats of RESULTS.md, shared by its sections."""

from __future__ import annotations

from benchmarks.targets import GIB


def boot_key(tier_runs: dict, method: str) -> str:
    """Key of the attribution run of ``method`` with the most bootstrap replicates."""
    keys = [k for k in tier_runs if k.startswith(f"attribute:{method}:")]
    return max(keys, key=lambda k: int(k.split(":")[2])) if keys else f"attribute:{method}:none"


def fmt_s(x: float | None) -> str:
    """Seconds with 3 significant-ish digits; ``-`` for None."""
    if x is None:
        return "-"
    return f"{x:.2f}" if x < 10 else f"{x:.1f}" if x < 100 else f"{x:.0f}"


def cell(entry: dict) -> str:
    """``median (min-max)`` of a measure's seconds."""
    return f"{fmt_s(entry['median'])} ({fmt_s(entry['min'])}-{fmt_s(entry['max'])})"


def gib(b: float) -> str:
    """Bytes as GiB, two decimals."""
    return f"{b / GIB:.2f}"


def load_text(entry: dict) -> str:
    """The load averages of a measure, ``1.2/0.8/...``."""
    return "/".join(f"{x:.1f}" for x in entry["load"])
