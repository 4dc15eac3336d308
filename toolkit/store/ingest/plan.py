"""The column plan: how each contract column and covariate is typed from the source, and the row checks."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ...engine.keys import (INTEGER_TYPES, SPARK_READS, TEXT_ALIKE, Dialect, double_text_sql, epoch_sql, finite_sql,
                            from_zone_sql, json_string_sql, mapped_text_sql, sql_type, text_type, trim_sql)
from ...errors import InputError, from_duckdb, is_corruption
from ...sqlutil import one_row, placeholders, quote_ident
from ...timeutil import PLAUSIBLE_END, PLAUSIBLE_START, PLAUSIBLE_TEXT
from ...vocab import DEPLOYMENT_EVENTS, is_numeric_type
from ..mapping import EPOCH_UNITS, Mapping
from ..schema import BOOKKEEPING, CONTRACT
from .checks import _parser_reason
from .infer import infer_types, is_nested

#: columns the toolkit adds itself; a file's extra column with one of these names is not stored
_RESERVED = {*BOOKKEEPING, "resolved_version", "version_status", "expected_feature_version", "_row", "_reason"}
_TIME_COLUMNS = ("ts", "expected_end", "created_at")
#: at most this many covariate columns in a store (each is a column of predictions and of every
#: analysis's cells); a wider file must list the ones to keep in its mapping
MAX_COVARIATES = 500
#: names of columns that hold the answer, not an input: never a covariate unless declared
_LABEL_NAME = re.compile(r"^(y|label|labels|target|y_true|ground_truth|truth|actual|actuals|gold)$"
                         r"|_(label|target|truth)$|^(true|gold|actual)_", re.IGNORECASE)
#: names of identifier columns: never a covariate unless declared
_ID_NAME = re.compile(r"^(id|uuid|guid|key)$|_(id|uuid|guid)$", re.IGNORECASE)


@dataclass
class _Plan:
    #: the SQL dialect the plan's text is written in (ingest and attach: DuckDB; the Spark engine: Spark)
    dialect: Dialect = "duckdb"
    #: why the text cannot be written in :attr:`dialect` (Spark: what only DuckDB's typing reads); empty when it can
    unported: list[str] = field(default_factory=list)
    exprs: list[tuple[str, str]] = field(default_factory=list)  # target name -> typed SQL over src
    expr_params: list = field(default_factory=list)
    raw_refs: list[tuple[str, str]] = field(default_factory=list)  # raw source values needed by checks
    #: row checks, each SQL over the typed row yielding a reason or NULL, with the values its ``?`` bind
    rules: list[tuple[str, tuple]] = field(default_factory=list)
    new_covariates: list[tuple[str, str]] = field(default_factory=list)
    ignored: tuple[str, ...] = ()
    covariate_notes: tuple[str, ...] = ()

    def check(self, sql: str, *params: object) -> None:
        """Add a row check and the values of its ``?``: kept together, so no list must follow another's order."""
        if placeholders(sql) != len(params):
            raise ValueError(f"a row check binds {placeholders(sql)} values but {len(params)} were given: {sql}")
        self.rules.append((sql, params))

    @property
    def checks(self) -> list[str]:
        """The checks' SQL, in the order they were added."""
        return [sql for sql, _ in self.rules]

    @property
    def check_params(self) -> list:
        """Every check's values, in the order of :attr:`checks`."""
        return [v for _, params in self.rules for v in params]


def _plan_columns(
    con: duckdb.DuckDBPyConnection, kind: str, path: Path, src_types: dict[str, str], mapping: Mapping,
    source: str, src_params: list, dialect: Dialect = "duckdb",
    existing: dict[str, tuple[str, str]] | None = None,
) -> _Plan:
    """How ``kind``'s columns are typed from a source with ``src_types`` under ``mapping``, and the row checks.

    ``dialect`` "spark" writes the same plan for the Spark engine's reading of
    an attached dataset in place; what has no identical Spark text is listed
    in :attr:`_Plan.unported` (and that source is then read through DuckDB).
    ``existing`` (lower name -> (store name, type)) replaces the store's
    covariate columns: a plan that repeats another's decisions types no
    column again.
    """
    contract = CONTRACT[kind]
    plan = _Plan(dialect=dialect)
    lower_src = {n.lower(): n for n in src_types}
    _check_mapped_sources(path, src_types, mapping, lower_src)
    raw_prefix = _raw_prefix(src_types)
    used_sources: set[str] = set()
    for cname, (ctype, required) in contract.items():
        actual = _plan_contract_column(plan, kind, path, src_types, lower_src, mapping, raw_prefix,
                                       cname, ctype, required)
        if actual is not None:
            used_sources.add(actual)
    _add_kind_rules(plan, kind)
    # extra columns: covariates for predictions, not stored for the other kinds
    extras = [n for n in src_types if n not in used_sources]
    ignored: list[str] = []
    if kind != "predictions":
        ignored = extras
    else:
        ignored = _plan_covariates(con, plan, path, src_types, mapping, source, src_params, contract, extras,
                                   raw_prefix, existing)
    plan.ignored = tuple(ignored)
    return plan


def _check_mapped_sources(path: Path, src_types: dict[str, str], mapping: Mapping,
                          lower_src: dict[str, str]) -> None:
    """Mapped source columns that do not exist."""
    for cname, sname in mapping.columns.items():
        if sname not in src_types and sname.lower() not in lower_src:
            raise InputError(
                f"{path}: the mapping says {cname} comes from column {sname!r}, but the file has "
                f"no such column; its columns are: {', '.join(src_types)}"
            )


def _raw_prefix(src_types: dict[str, str]) -> str:
    """A prefix for aliases of raw source values that no source column name starts with."""
    raw_prefix = "_raw_"
    while any(n.lower().startswith(raw_prefix) for n in src_types):
        raw_prefix = "_" + raw_prefix
    return raw_prefix


def _source_ref(plan: _Plan, name: str, styp: str) -> tuple[str, str]:
    """SQL reading a source column, and its type: a JSON value as text, a list or struct as text."""
    ref = f"src.{quote_ident(name)}"
    if plan.dialect == "spark" and not spark_reads(styp):  # Spark cannot read it, or writes it differently
        plan.unported.append(f"column {name} is {styp.lower()}")
    if styp == "JSON":  # a JSON lines key holding mixed types: its value, not JSON text ("v1", not '"v1"')
        return f"({ref} ->> '$')", "VARCHAR"
    if is_nested(styp):  # a list or struct read as text (and quarantined if a number was required)
        return f"CAST({ref} AS VARCHAR)", "VARCHAR"
    return ref, styp


def _plan_absent_column(plan: _Plan, kind: str, path: Path, src_types: dict[str, str], mapping: Mapping,
                        cname: str, ctype: str, required: bool) -> None:
    """A contract column the file does not have: its default, 'online', an error, or NULL."""
    if cname in mapping.defaults:
        plan.exprs.append((cname, f"CAST(? AS {sql_type(ctype, plan.dialect)})"))
        plan.expr_params.append(mapping.defaults[cname])
        return
    if kind == "predictions" and cname == "component":
        plan.exprs.append((cname, "'online'"))
        return
    if required:
        raise InputError(_missing_column_message(path, kind, cname, list(src_types)))
    # optional and absent: NULL, staged explicitly because duplicate keys use it (deployments' version)
    plan.exprs.append((cname, f"CAST(NULL AS {sql_type(ctype, plan.dialect)})"))


def _typed_expr(plan: _Plan, kind: str, cname: str, ctype: str, ref: str, styp: str,
                mapping: Mapping) -> tuple[str, list]:
    """SQL typing one contract column's source value (the team's value names mapped first), its parameters."""
    value_ref, params = ref, []
    d = plan.dialect
    txt = text_type(d)
    if d == "spark" and ctype not in ("VARCHAR", "TIMESTAMP") and (styp == "VARCHAR" or cname in mapping.values):
        plan.unported.append(f"{cname} is text, read as {ctype.lower()}")  # the engines' casts of text differ
    if d == "spark" and ctype == "VARCHAR" and styp not in TEXT_ALIKE:
        plan.unported.append(f"{cname} is {styp.lower()}, written as text")  # e.g. 1e+20 against 1.0E20
    if cname in mapping.values:  # the team's own names for values: mapped before typing and checks
        keys, vals = zip(*mapping.values[cname].items(), strict=True)
        value_ref = mapped_text_sql(trim_sql(f"CAST({ref} AS {txt})", d), d)
        params = [list(keys), list(vals)]
    if ctype == "TIMESTAMP":
        expr, params = _time_expr(plan, cname, ref, styp, mapping)
    elif ctype == "VARCHAR":
        expr = f"NULLIF({trim_sql(f'CAST({value_ref} AS {txt})', d)}, '')"
    else:
        expr = f"TRY_CAST({value_ref} AS {ctype})"
    if kind == "predictions" and cname == "component":
        expr = f"coalesce({expr}, 'online')"
    return expr, params


def _plan_contract_column(plan: _Plan, kind: str, path: Path, src_types: dict[str, str], lower_src: dict[str, str],
                          mapping: Mapping, raw_prefix: str, cname: str, ctype: str, required: bool) -> str | None:
    """One contract column's typed expression and row checks; returns the source column it used (if any)."""
    sname = mapping.source_for(cname)
    actual = sname if sname in src_types else lower_src.get(sname.lower())
    raw_alias = f"{raw_prefix}{cname}"
    if actual is None:
        _plan_absent_column(plan, kind, path, src_types, mapping, cname, ctype, required)
        return None
    ref, styp = _source_ref(plan, actual, src_types[actual].upper())
    expr, params = _typed_expr(plan, kind, cname, ctype, ref, styp, mapping)
    plan.exprs.append((cname, expr))
    plan.expr_params.extend(params)
    plan.raw_refs.append((raw_alias, ref))
    _add_contract_checks(plan, kind, cname, ctype, required, styp, raw_alias, mapping)
    return actual


def _add_contract_checks(plan: _Plan, kind: str, cname: str, ctype: str, required: bool, styp: str,
                         raw_alias: str, mapping: Mapping) -> None:
    """Row checks of one contract column: missing, unreadable, infinite or implausible time."""
    q = quote_ident(cname)
    raw = quote_ident(raw_alias)
    d = plan.dialect
    # a typed source value (Parquet, JSON numbers) is never blank text: skip the text checks
    present = (f"{raw} IS NOT NULL AND {trim_sql(f'CAST({raw} AS {text_type(d)})', d)} <> ''" if styp == "VARCHAR"
               else f"{raw} IS NOT NULL")
    if ctype == "VARCHAR" and not (kind == "predictions" and cname == "component"):
        # the typed value is NULLIF(trim(text), ''): NULL exactly when the source value is missing
        # or blank, so the check need not trim every value a second time
        present = f"{q} IS NOT NULL"
    if required:
        plan.check(
            f"CASE WHEN NOT ({present}) THEN 'missing required value: {cname} (' || "
            f"CASE WHEN {raw} IS NULL THEN 'absent' ELSE 'blank: ' || {shown(raw, d)} END || ')' END"
        )
    if ctype != "VARCHAR" and styp != ctype:
        plan.check(
            f"CASE WHEN {present} AND {q} IS NULL THEN 'cannot read {cname} as {ctype.lower()}: ' || "
            f"{shown(raw, d)} || ' ' || ? END", _expected(cname, ctype, mapping))
    if ctype == "TIMESTAMP":
        # DuckDB reads 'infinity' / '-infinity' as timestamps: not a point in time (Spark has no such timestamp)
        finite = f"isfinite({q})" if d == "duckdb" else f"{q} IS NOT NULL"
        if d == "duckdb":
            plan.check(
                f"CASE WHEN NOT isfinite({q}) THEN '{cname} is infinite (' || {shown(raw, d)} || '), "
                f"not a point in time' END"
            )
        # the one plausible-time rule (toolkit.timeutil): what analyses can compute with
        # Spark writes a year past 9999 with a sign (+58825-05-18): the text without it, as DuckDB's
        when = q if d == "duckdb" else f"regexp_replace(CAST({q} AS STRING), '^[+]', '')"
        plan.check(
            f"CASE WHEN {finite} AND NOT ({q} >= ? AND {q} < ?) THEN "
            f"'{cname} ' || {shown(when, d)} || ' outside the plausible range ' || ? END",
            PLAUSIBLE_START, PLAUSIBLE_END, PLAUSIBLE_TEXT)


def _add_kind_rules(plan: _Plan, kind: str) -> None:
    """Kind-specific row checks: deployment events and traffic shares, finite prediction scores."""
    if kind == "deployments":
        plan.check(
            f"CASE WHEN event IS NOT NULL AND NOT list_contains(?, event) THEN 'unknown event ' || {shown('event')} "
            "|| ' (allowed: ' || ? || '; map your own event names under [values.event] in the mapping file)' END",
            list(DEPLOYMENT_EVENTS), ", ".join(DEPLOYMENT_EVENTS))
        if any(n == "traffic_pct" for n, _ in plan.exprs):
            plan.check(
                f"CASE WHEN traffic_pct < 0 OR traffic_pct > 100 THEN 'traffic_pct ' || {shown('traffic_pct')} "
                "|| ' outside 0..100' END"
            )
    if kind == "predictions" and any(n == "score" for n, _ in plan.exprs):
        d = plan.dialect
        plan.check(
            f"CASE WHEN NOT {finite_sql('score', d)} THEN 'score is not a finite number: ' || "
            f"{shown(double_text_sql('score', d), d)} END"
        )


def _wanted_covariates(path: Path, src_types: dict[str, str], mapping: Mapping,
                       extras: list[str]) -> tuple[list[str], list[str]]:
    """The extra columns wanted as covariates (all, or the mapping's list), and those left out."""
    if mapping.covariates is None:
        return extras, []
    missing = [c for c in mapping.covariates if c not in src_types]
    if missing:
        raise InputError(
            f"{path}: the mapping declares covariate(s) {missing} that the file does not have; "
            f"its columns are: {', '.join(src_types)}"
        )
    return [c for c in extras if c in mapping.covariates], [c for c in extras if c not in mapping.covariates]


def _without_reserved(wanted: list[str], contract: dict, ignored: list[str]) -> list[str]:
    """The wanted names that vdrift does not reserve; the reserved ones are noted in ``ignored``."""
    keep = []
    for name in wanted:
        if name.lower() in _RESERVED or name.lower() in {c.lower() for c in contract}:
            ignored.append(f"{name} (name reserved by vdrift)")
        else:
            keep.append(name)
    return keep


def _categorical(path: Path, mapping: Mapping, src_types: dict[str, str]) -> set[str]:
    categorical = set(mapping.categorical)
    unknown = sorted(categorical - set(src_types))
    if unknown:
        raise InputError(
            f"{path}: the mapping declares categorical column(s) {unknown} that the file does not have; "
            f"its columns are: {', '.join(src_types)}"
        )
    return categorical


def _excluded_by_name(keep: list[str], existing: dict) -> list[str]:
    """New columns named like labels or identifiers (chosen by vdrift: they are not inputs)."""
    excluded: list[str] = []
    for name in [n for n in keep if n.lower() not in existing]:
        if _LABEL_NAME.search(name):
            excluded.append(f"{name} (looks like a label: map it as outcome, or list it under covariates)")
        elif _ID_NAME.search(name):
            excluded.append(f"{name} (named like an identifier; list it under covariates to keep it)")
    return excluded


def _check_covariate_limit(con: duckdb.DuckDBPyConnection, path: Path, mapping: Mapping, fresh: list[str]) -> None:
    stored = one_row(con, "SELECT count(*) FROM covariates")[0]
    if stored + len(fresh) > MAX_COVARIATES:
        declared = "the mapping declares" if mapping.covariates is not None else "the file brings"
        raise InputError(
            f"{path}: {declared} {len(fresh):,} new covariate column(s) and the store has {stored:,}; vdrift "
            f"keeps at most {MAX_COVARIATES:,} covariates per store. Nothing was ingested from the file: list "
            'the columns to keep in a mapping file, e.g. covariates = ["amount", "channel"] (the others are '
            "then not stored)"
        )


def _infer_fresh(con: duckdb.DuckDBPyConnection, path: Path, source: str, src_params: list,
                 src_types: dict[str, str], fresh: list[str]) -> tuple[dict[str, str], dict[str, bool]]:
    try:  # a scan of the whole file: the reader may meet what DESCRIBE (its sample) did not
        return infer_types(con, source, src_params, {n: src_types[n] for n in fresh})
    except duckdb.Error as exc:
        if is_corruption(str(exc)) or from_duckdb(exc) is not None:
            raise
        fmt = "csv" if source.startswith("read_csv") else "json" if source.startswith("read_json") else "parquet"
        raise InputError(f"{path}: cannot read it as {fmt}: {_parser_reason(exc, fmt, path)}") from None


def _covariate_notes(undeclared: bool, fresh: list[str], inferred: dict[str, str],
                     categorical: set[str]) -> tuple[str, ...]:
    notes = []
    if undeclared and fresh:
        why = {"DOUBLE": "every value is a number", "BOOLEAN": "boolean", "VARCHAR": "text"}
        chosen = ", ".join(
            f"{n} ({inferred[n].lower()}: {'declared categorical' if n in categorical else why[inferred[n]]})"
            for n in fresh)
        notes.append("the mapping lists no covariates, so these new columns outside the contract become "
                     f"covariates: {chosen}; choose them with covariates = [...] in a mapping file")
    return tuple(notes)


def _plan_covariate(plan: _Plan, name: str, src_types: dict[str, str], existing: dict, inferred: dict[str, str],
                    raw_prefix: str) -> None:
    """One covariate's typed expression (a new store column if it is new) and its readability check."""
    ref, _ = _source_ref(plan, name, src_types[name].upper())
    if name.lower() in existing:
        store_name, typ = existing[name.lower()]
    else:
        store_name, typ = name, inferred[name]
        plan.new_covariates.append((name, typ))
    src = src_types[name].upper()
    parsed, written = typ != "VARCHAR" and src == "VARCHAR", typ == "VARCHAR" and src not in TEXT_ALIKE
    if plan.dialect == "spark" and (parsed or written):  # the engines' casts from and to text differ
        plan.unported.append(f"covariate {name} is {src.lower()}, read as {typ.lower()}")
    typed = f"TRY_CAST({ref} AS {typ})" if typ != "VARCHAR" else f"CAST({ref} AS {text_type(plan.dialect)})"
    plan.exprs.append((store_name, typed))
    src_typ = src_types[name].upper()
    lossless = typ == "DOUBLE" and is_numeric_type(src_typ)
    if typ != "VARCHAR" and not lossless:
        raw_alias = f"{raw_prefix}cov_{len(plan.raw_refs)}"
        plan.raw_refs.append((raw_alias, ref))
        raw = quote_ident(raw_alias)
        present = (f"{raw} IS NOT NULL AND {trim_sql(f'CAST({raw} AS {text_type(plan.dialect)})', plan.dialect)} <> ''"
                   if src_typ in ("VARCHAR", "JSON") or is_nested(src_typ) else f"{raw} IS NOT NULL")
        plan.check(f"CASE WHEN {present} AND {quote_ident(store_name)} IS NULL "
                   f"THEN ? || {shown(raw, plan.dialect)} END",
                   f"cannot read covariate {store_name} as {typ.lower()}: ")


def _plan_covariates(con: duckdb.DuckDBPyConnection, plan: _Plan, path: Path, src_types: dict[str, str],
                     mapping: Mapping, source: str, src_params: list, contract: dict, extras: list[str],
                     raw_prefix: str, existing: dict[str, tuple[str, str]] | None = None) -> list[str]:
    """Predictions' extra columns as covariates; returns the columns not stored, with why."""
    if existing is None:
        existing = store_columns(con)
    wanted, ignored = _wanted_covariates(path, src_types, mapping, extras)
    keep = _without_reserved(wanted, contract, ignored)
    categorical = _categorical(path, mapping, src_types)
    undeclared = mapping.covariates is None
    excluded: list[str] = []
    if undeclared:  # chosen by vdrift: labels and identifiers are not inputs
        excluded = _excluded_by_name(keep, existing)
        keep = [n for n in keep if not any(e.startswith(f"{n} (") for e in excluded)]
    fresh = [n for n in keep if n.lower() not in existing]
    _check_covariate_limit(con, path, mapping, fresh)
    # a declared covariate declared categorical is text whatever it holds: no scan decides its type
    scanned = [n for n in fresh if undeclared or n not in categorical]
    inferred, unique = _infer_fresh(con, path, source, src_params, src_types, scanned)
    if undeclared:
        for name in [n for n in fresh if unique.get(n)]:
            excluded.append(f"{name} (text unique on almost every row: an identifier; "
                            "list it under covariates to keep it)")
        keep = [n for n in keep if not unique.get(n)]
        fresh = [n for n in fresh if not unique.get(n)]
    for name in fresh:
        if name in categorical:
            inferred[name] = "VARCHAR"
    ignored.extend(excluded)
    plan.covariate_notes = _covariate_notes(undeclared, fresh, inferred, categorical)
    for name in keep:
        _plan_covariate(plan, name, src_types, existing, inferred, raw_prefix)
    return ignored


def spark_reads(styp: str) -> bool:
    """Whether Spark reads a source column of DuckDB type ``styp`` as DuckDB does (:data:`SPARK_READS`)."""
    return styp in SPARK_READS or styp.startswith("DECIMAL")


def store_columns(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, str]]:
    """The store's ``predictions`` columns: lower name -> (name, type)."""
    return {r[0].lower(): (r[0], r[1]) for r in con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'predictions'"
    ).fetchall()}


def shown(sql: str, dialect: Dialect = "duckdb") -> str:
    """SQL naming a value in a quarantine reason: the value as a JSON string, at most 80 characters.

    Every reason shows its offending value this way (and only this way), so
    :func:`toolkit.store.ingest.results.reason_rule` can group reasons by rule.
    """
    return json_string_sql(f"left(CAST({sql} AS {text_type(dialect)}), 80)", dialect)


def _expected(cname: str, ctype: str, mapping: Mapping) -> str:
    """What a value of ``cname`` should have looked like: the format tried, for a quarantine reason."""
    if ctype == "TIMESTAMP":
        fmt = mapping.time_format
        if fmt in EPOCH_UNITS:
            return f"(tried the mapping's timestamps.format {fmt}: a number of {fmt.removeprefix('epoch_')} since 1970)"
        if fmt:
            return f"(tried the mapping's timestamps.format {fmt!r})"
        return ("(tried ISO 8601 such as 2026-11-09 14:30:00 or 2026-11-09T14:30:00+01:00, and epoch "
                "seconds/milliseconds; for another layout set [timestamps] format in the mapping file)")
    if ctype == "BOOLEAN":
        return (f"(expected true/false, t/f, yes/no, y/n or 1/0; map other names under [values.{cname}] "
                "in the mapping file)")
    return f"(expected a {ctype.lower()} number)" if ctype == "DOUBLE" else f"(expected {ctype.lower()})"


def _missing_column_message(path: Path, kind: str, cname: str, columns: list[str]) -> str:
    import difflib

    guess = difflib.get_close_matches(cname, columns, n=1, cutoff=0.4)
    suggestion = guess[0] if guess else "<your column>"
    return (
        f"{path}: required {kind} column {cname!r} is missing (the file has: {', '.join(columns)}). "
        f"If it is under another name, add to your mapping file:\n    [columns]\n    {cname} = \"{suggestion}\""
    )


def _time_expr(plan: _Plan, cname: str, ref: str, styp: str, mapping: Mapping) -> tuple[str, list]:
    """SQL turning a source time value into naive UTC, and its parameters."""
    tz = mapping.timezone
    fmt = mapping.time_format
    d = plan.dialect
    if styp.startswith("TIMESTAMP WITH TIME ZONE") or styp == "TIMESTAMPTZ":
        return f"CAST({ref} AS TIMESTAMP)", []
    if styp.startswith("TIMESTAMP") or styp == "DATE":
        if tz == "UTC":  # already UTC wall-clock time: no per-row time-zone arithmetic
            return f"CAST({ref} AS TIMESTAMP)", []
        if d == "spark":  # the engines resolve the repeated hour of a DST change to different offsets
            plan.unported.append(f"{cname} is local time in {tz}")
        return from_zone_sql(f"CAST({ref} AS TIMESTAMP)", d), [tz]
    if fmt in EPOCH_UNITS or is_numeric_type(styp):
        if d == "spark" and styp not in INTEGER_TYPES:  # text or floating epochs: casts and reasons differ
            plan.unported.append(f"{cname} is {styp.lower()}, read as epoch time")
        divisor = EPOCH_UNITS.get(fmt or "", None)
        num = f"TRY_CAST({ref} AS DOUBLE)"
        if divisor is None:  # by magnitude: seconds, milliseconds, microseconds or nanoseconds
            divisor_sql = (f"CASE WHEN abs({num}) < 1e11 THEN 1 WHEN abs({num}) < 1e14 THEN 1e3 "
                           f"WHEN abs({num}) < 1e17 THEN 1e6 ELSE 1e9 END")
        else:
            divisor_sql = repr(float(divisor))
        return epoch_sql(f"{num} / ({divisor_sql})", d), []
    if d == "spark":  # the engines' text-to-time casts differ at the edges (e.g. '14:30:00 +01')
        plan.unported.append(f"{cname} is text, parsed as a time")
    text = f"trim(CAST({ref} AS VARCHAR))"
    if fmt and ("%z" in fmt or "%Z" in fmt):  # the text carries its own offset: already absolute
        return f"CAST(try_strptime({text}, ?) AS TIMESTAMP)", [fmt]
    if fmt:
        return f"CAST(timezone(?, try_strptime({text}, ?)) AS TIMESTAMP)", [tz, fmt]
    return (
        f"CASE WHEN regexp_matches({text}, '^[0-9]{{9,}}([.][0-9]+)?$') "
        f"THEN " + epoch_sql(f"TRY_CAST({text} AS DOUBLE) / CASE WHEN TRY_CAST({text} AS DOUBLE) < 1e11 THEN 1 "
                             f"WHEN TRY_CAST({text} AS DOUBLE) < 1e14 THEN 1e3 "
                             f"WHEN TRY_CAST({text} AS DOUBLE) < 1e17 THEN 1e6 ELSE 1e9 END", d) + " "
        f"WHEN regexp_matches({text}, '(Z|z|[+-][0-9]{{2}}(:?[0-9]{{2}})?)$') "
        # an offset beyond +-14:00 or with minutes past 59 (DuckDB reads -99:00 as 99 hours): NULL, quarantined
        f"THEN CASE WHEN right({text}, 1) NOT IN ('Z', 'z') AND regexp_matches({text}, {_BAD_OFFSET}) THEN NULL "
        f"ELSE CAST(TRY_CAST({text} AS TIMESTAMPTZ) AS TIMESTAMP) END "
        f"ELSE CAST(timezone(?, TRY_CAST({text} AS TIMESTAMP)) AS TIMESTAMP) END",
        [tz],
    )


#: a time of day followed by a UTC offset whose hours exceed 14 or whose minutes exceed 59
_BAD_OFFSET = ("'[0-9]:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)? *[+-]"
               "((1[5-9]|[2-9][0-9])(:?[0-9]{2})?|[0-9]{2}:?[6-9][0-9])$'")
