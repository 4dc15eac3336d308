"""Quarantine rules as ingest reports them (values shown as ``…``), literally as the user reads them."""

TS_ISO = ("cannot read ts as timestamp: … (tried ISO 8601 such as 2026-11-09 14:30:00 or "
          "2026-11-09T14:30:00+01:00, and epoch seconds/milliseconds; for another layout set [timestamps] "
          "format in the mapping file)")
SCORE = "cannot read score as double: … (expected a double number)"
CACHE_HIT = ("cannot read cache_hit as boolean: … (expected true/false, t/f, yes/no, y/n or 1/0; map other "
             "names under [values.cache_hit] in the mapping file)")
UNKNOWN_EVENT = ("unknown event … (allowed: deploy, rollout_start, rollout_step, rollout_complete, rollback, "
                 "experiment_start, experiment_end, config_change, cache_flush; map your own event names under "
                 "[values.event] in the mapping file)")
TS_RANGE = "ts … outside the plausible range 1900-01-01..2200-01-01 UTC"
TS_INFINITE = "ts is infinite (…), not a point in time"
TRAFFIC = "traffic_pct … outside 0..100"
NOT_FINITE = "score is not a finite number: …"
DUP_FILE = "duplicate request_id … within the file (first kept)"
DUP_STORE = "duplicate request_id … already in the store"


def missing(column: str, how: str = "absent") -> str:
    """The rule of a missing required value (``how``: absent, or blank: …)."""
    return f"missing required value: {column} ({how})"
