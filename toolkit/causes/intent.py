"""Served versus intended routing per unit: what serving as the deployment history intended would change.

A *unit* is one hour x component x region x instance x governing
intended-state piece of the audit's cells (:mod:`toolkit.audit.census`).
Inside it the intended state is one distribution over versions
(:mod:`toolkit.audit.intended`):

* a ``full`` piece (deploy, rollback, completed rollout, ended experiment):
  its version at 100 %;
* an open split before its deadline: the split's shares;
* an **overdue** split (past ``expected_end``, or the audit's default age):
  a rollout is taken as completed at its deadline (its target at 100 %); an
  experiment as ended at its deadline with its control, the version deployed
  before it, serving (the history does not say which arm would have won).

Rows a version outside the intended distribution served are *off-intent*;
the counterfactual re-serves them by the intended versions in proportion to
their intended shares, and leaves every other row as it was (a split's
sampling noise is not a cost). Units outside any deployment history
(``governed`` false) are as intended by definition; their share is
reported.
"""

from __future__ import annotations

from dataclasses import dataclass

from collections.abc import Callable

import duckdb
import polars as pl

from ..audit.census import CELLS
from ..audit.intended import IV, SEG

UNITS_SQL = f"""
SELECT bucket_start, component, region, instance_id, resolved_version AS version,
       gov, eff_scope, pos, coalesce(overdue, false) AS overdue, governed,
       sum(n)::BIGINT AS n
FROM {CELLS}
WHERE component IS DISTINCT FROM 'shadow'
GROUP BY ALL
"""

PIECES_SQL = f"""
SELECT s.component AS gov, s.eff_scope, s.pos, s.kind, s.target_version, s.base_version,
       iv.version, iv.share
FROM {SEG} AS s JOIN {IV} AS iv USING (component, eff_scope, pos)
"""

UNIT_KEYS = ("bucket_start", "component", "region", "instance_id", "gov", "eff_scope", "pos", "overdue")


@dataclass(frozen=True)
class Units:
    """The served rows per unit and version, and the intended distribution of each unit.

    ``served``: one row per (unit, version) with ``n``; ``intended``: one row
    per (gov, eff_scope, pos, overdue, version) with ``share`` (rows of a
    unit's piece sum to 1).
    """

    served: pl.DataFrame
    intended: pl.DataFrame
    observed: pl.DataFrame

    @property
    def rows(self) -> int:
        """Rows of every unit (shadow rows left out)."""
        return int(self.served["n"].sum()) if self.served.height else 0

    @property
    def ungoverned_rows(self) -> int:
        """Rows no deployment history governs (as intended by definition)."""
        if not self.served.height:
            return 0
        return int(self.served.filter(~pl.col("governed"))["n"].sum())


def units_reader(observed: pl.DataFrame) -> Callable[[duckdb.DuckDBPyConnection], Units]:
    """A reader of the units for :func:`toolkit.audit.api.audit_units` (it runs on the audit's tables).

    Besides the served rows and intended shares it keeps ``observed``, the
    metric's sums per (hour, component, region, instance, version) in the
    window (:func:`toolkit.causes.timeline.window_hours`): the rows served
    off-intent are priced with what they really answered.
    """
    def read(con: duckdb.DuckDBPyConnection) -> Units:
        served = con.execute(UNITS_SQL).pl()
        pieces = con.execute(PIECES_SQL).pl()
        return Units(served, intended_shares(pieces), observed)

    return read


def intended_shares(pieces: pl.DataFrame) -> pl.DataFrame:
    """Intended distribution per (piece, overdue): the split's shares, or the overdue rule's version."""
    rows = []
    for key, grp in pieces.group_by(["gov", "eff_scope", "pos"], maintain_order=True):
        gov, scope, pos = key
        kind = grp["kind"][0]
        split = {v: float(s) for v, s in zip(grp["version"], grp["share"], strict=True)}
        final = None
        if kind == "rollout":
            final = grp["target_version"][0]
        elif kind == "experiment":
            final = grp["base_version"][0]
        for overdue in (False, True):
            shares = {final: 1.0} if (overdue and final is not None) else split
            total = sum(shares.values())
            for v, s in shares.items():
                rows.append({"gov": gov, "eff_scope": scope, "pos": pos, "overdue": overdue,
                             "version": v, "share": s / total if total > 0 else 0.0})
    schema = {"gov": pl.String, "eff_scope": pl.String, "pos": pl.Int64, "overdue": pl.Boolean,
              "version": pl.String, "share": pl.Float64}
    return pl.DataFrame(rows, schema=schema)


__all__ = ["Units", "units_reader", "intended_shares", "UNIT_KEYS"]
