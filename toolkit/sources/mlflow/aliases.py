"""Alias history: the aliases read now against the last alias events vdrift stored, as deployment events."""

from __future__ import annotations

import datetime as dt

from ...errors import InputError
from .records import ACTOR, NOTE_PATTERN, NOTE_HEAD, AliasChange, RegistryVersion, iso


def _stored_aliases(store, component: str, scope: str) -> dict[tuple[str, str], tuple[int | None, dt.datetime]]:
    """The last alias event vdrift stored per (model, alias) for this component and scope."""
    rows = store.con.execute(
        "SELECT note, ts FROM deployments WHERE component = ? AND scope = ? AND actor = ? "
        "AND starts_with(note, ?) ORDER BY ts, ingest_id",
        [component, scope, ACTOR, NOTE_HEAD],
    ).fetchall()
    state: dict[tuple[str, str], tuple[int | None, dt.datetime]] = {}
    for note, ts in rows:
        m = NOTE_PATTERN.match(note)
        if m:
            version = None if m["version"] == "removed" else int(m["version"])
            state[(m["model"], m["alias"])] = (version, ts)
    return state


def alias_changes(
    store, names: list[str], wanted: tuple[str, ...] | None, current: list[tuple[str, str, int]],
    versions: list[RegistryVersion], component: str, scope: str, observed: dt.datetime,
) -> list[AliasChange]:
    """One :class:`AliasChange` per alias whose version differs from the last alias event stored."""
    by_number = {(v.model, v.version): v for v in versions}
    now = {(m, a): v for m, a, v in current}
    stored = {k: s for k, s in _stored_aliases(store, component, scope).items() if k[0] in names
              and (wanted is None or k[1] in wanted)}
    changes = []
    for key in sorted(set(now) | set(stored)):
        model, alias = key
        new = now.get(key)
        old, old_ts = stored.get(key, (None, None))
        if key in stored and old == new:
            continue
        if old_ts is not None and observed <= old_ts:
            raise InputError(
                f"alias {alias} of model {model!r} changed since vdrift's last alias event ({iso(old_ts)}), "
                f"but the read time {iso(observed)} is not after it; give a later observed_at"
            )
        target = by_number.get((model, new)) if new is not None else None
        since = old_ts
        # the move came after the target version was made, unless the registry's clock is ahead of the read's
        if target is not None and (since is None or target.created_at > since) and target.created_at <= observed:
            since = target.created_at
        if new is None:
            event = "config_change"
        elif old is not None and new < old:
            event = "rollback"
        else:
            event = "deploy"
        changes.append(AliasChange(
            model=model, alias=alias, version=new, previous=old, event=event, ts=observed, since=since,
            label=target.label if target is not None else None,
            artifact_hash=target.artifact_hash if target is not None else None,
        ))
    return changes
