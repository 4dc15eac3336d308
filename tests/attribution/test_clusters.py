"""Sticky experiment arms: the test on the model sample, and replicate groups hashed from the entity."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from toolkit.attribution import attribute
from toolkit.attribution.clusters import CLUSTERED_SQL, arms, group_key_sql
from toolkit.engine.keys import group_sql
from toolkit.samples import simulate

from .test_attribution_helpers import BASELINE, COMPARISON, load_simulation


def _rows(rng: np.random.Generator, n_entities: int, per_entity: int, sticky: bool, share: float = 0.5):
    """One window, two segments; each entity's rows routed per entity (sticky) or per request."""
    e = np.repeat(np.arange(n_entities), per_entity)
    r = (e % 2).astype(int)
    u = rng.random(n_entities)[e] if sticky else rng.random(len(e))
    v = (u < share).astype(int)
    return np.zeros(len(e), dtype=int), r, v, e.astype(np.int64), np.ones(len(e))


def test_arms_assigned_per_entity_are_sticky() -> None:
    a = arms(*_rows(np.random.default_rng(1), 400, 3, sticky=True))
    assert a.sticky and a.mixed == 0 and a.entities == 400
    # under routing per request, 1 - 0.5^3 - 0.5^3 = 75% of 3-row entities would see both arms
    assert a.expected == pytest.approx(0.75 * 400, rel=0.1)
    assert a.as_dict()["groups_by"] == "entity_id"


def test_arms_assigned_per_request_are_not_sticky() -> None:
    a = arms(*_rows(np.random.default_rng(2), 400, 3, sticky=False))
    assert not a.sticky and a.as_dict()["groups_by"] == "request_id"
    # the mixed count is close to what routing per request predicts (binomial sd ~ 9 of 300)
    assert abs(a.mixed - a.expected) < 45


def test_too_few_repeat_entities_decide_nothing() -> None:
    # three entities with two rows each: fewer than 10 expected mixed entities, so no clustering
    a = arms(*_rows(np.random.default_rng(3), 3, 2, sticky=True))
    assert a.entities == 3 and a.expected < 10 and not a.sticky
    t, r, v, e, w = _rows(np.random.default_rng(3), 50, 2, sticky=True)
    none = arms(t, r, v, np.full_like(e, -1), w)
    assert (none.entities, none.mixed, none.expected, none.sticky) == (0, 0, 0.0, False)


def test_one_version_per_segment_expects_no_mix() -> None:
    t, r, _, e, w = _rows(np.random.default_rng(4), 200, 4, sticky=False)
    a = arms(t, r, np.zeros_like(r), e, w)
    assert a.expected == 0.0 and a.mixed == 0 and not a.sticky


@pytest.fixture(scope="module")
def experiment_store():
    store = load_simulation(simulate(scenarios=["experiment"], rows=20_000, seed=5))
    yield store
    store.close()


def test_sticky_experiment_groups_by_entity(experiment_store) -> None:
    res = attribute(experiment_store, "mean:score", BASELINE, COMPARISON, method="regression", n_boot=20, seed=0)
    groups = res.diagnostics.details["replicate_groups"]
    assert groups["groups_by"] == "entity_id" and groups["sticky_arms"]
    assert groups["mixed_entities"] == 0 and groups["expected_mixed"] >= 100
    # the experiment's cell (apac) in each window: counts move by customers of several requests each
    effects = {(d["window"], d["cell"]): d for d in groups["design_effects"]}
    assert set(effects) == {("baseline", "apac"), ("comparison", "apac")}
    assert all(d["count"] > 2 and 1 <= d["answers"] <= d["count"] for d in effects.values())
    note = [n for n in res.diagnostics.notes if n.code == "sticky_arms"]
    assert len(note) == 1 and note[0].level == "info" and "entity_id" in note[0].message
    assert "sticky_arms" in res.summary()


def test_entity_groups_hold_whole_entities(experiment_store) -> None:
    con = experiment_store.con
    grp = group_sql(group_key_sql(True, "duckdb"), "duckdb")
    rows = con.execute(
        f"SELECT entity_id, experiment IS NOT NULL AND entity_id IS NOT NULL AS clustered, request_id, {grp} AS g "
        "FROM predictions", [64]).fetchall()
    clustered = [(e, rid, g) for e, c, rid, g in rows if c]
    assert clustered and len(clustered) < len(rows)
    for e, _, g in clustered[:500]:
        assert g == int(hashlib.md5(e.encode()).hexdigest()[:8], 16) % 64
    for _, c, rid, g in rows[:2000]:
        if not c:
            assert g == int(hashlib.md5(rid.encode()).hexdigest()[:8], 16) % 64
    by_entity: dict[str, set[int]] = {}
    for e, _, g in clustered:
        by_entity.setdefault(e, set()).add(g)
    assert all(len(s) == 1 for s in by_entity.values())
    # the rule is one text: the same condition the sample's entity key uses
    assert CLUSTERED_SQL in group_key_sql(True, "spark") and group_key_sql(False, "duckdb") == '"request_key"'


def test_routing_per_request_keeps_request_groups() -> None:
    with load_simulation(simulate(scenarios=["canary"], rows=20_000, seed=5)) as store:
        res = attribute(store, "mean:score", BASELINE, COMPARISON, method="regression", n_boot=20, seed=0)
    assert res.diagnostics.details["replicate_groups"]["groups_by"] == "request_id"
    assert not [n for n in res.diagnostics.notes if n.code == "sticky_arms"]


def _clustered(rng: np.random.Generator, n_entities: int, k: int, between: float, keep: float = 1.0):
    """One window and cell of sticky rows: k rows per entity, y = entity effect * between + noise."""
    e = np.repeat(np.arange(n_entities), k)
    v = (rng.random(n_entities) < 0.5).astype(int)[e]
    y = between * rng.standard_normal(n_entities)[e] + (1 - between) * rng.standard_normal(len(e)) + v
    on = rng.random(len(e)) < keep
    w = np.full(on.sum(), 1 / keep)
    return (np.zeros(on.sum(), dtype=int), np.zeros(on.sum(), dtype=int), v[on], e[on].astype(np.int64), w, y[on],
            np.full(on.sum(), "apac", dtype=object))


@pytest.mark.parametrize("keep", [1.0, 0.5])
def test_design_effects_of_sticky_rows(keep: float) -> None:
    rng = np.random.default_rng(7)
    alike = arms(*_clustered(rng, 3000, 6, between=1.0, keep=keep))
    (t, cell, count, answers), = alike.effects
    # six rows per entity: a count moves by whole entities (deff 6); identical answers within an entity too
    assert (t, cell) == (0, "apac") and count == pytest.approx(6, rel=0.05) and answers == pytest.approx(6, rel=0.05)
    assert np.array_equal(alike.effect(0, ("us", "apac")), [[1.0, count], [1.0, 1.0]])
    unlike = arms(*_clustered(rng, 3000, 6, between=0.0, keep=keep))
    (_, _, count, answers), = unlike.effects
    # answers independent within an entity: no inflation of their sum (the versions' difference is taken out)
    assert count == pytest.approx(6, rel=0.05) and answers == pytest.approx(1, abs=0.1)


def test_design_effects_only_when_sticky() -> None:
    t, r, v, e, w = _rows(np.random.default_rng(8), 400, 3, sticky=False)
    a = arms(t, r, v, e, w, np.ones(len(t)), np.full(len(t), "eu", dtype=object))
    assert not a.sticky and a.effects == () and np.array_equal(a.effect(1, ("eu",)), np.ones((2, 1)))
    assert "design_effects" not in a.as_dict()
