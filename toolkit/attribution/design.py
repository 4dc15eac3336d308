"""Design vectors: the covariates as model terms, written once as SQL.

The attribution explains data drift with the covariates and uses them in the
per-version outcome model; it never stratifies on their joint bins. Every
covariate becomes a few terms ``z_j`` that DuckDB computes per row:

* a numeric covariate: its standardised value (missing values at the mean,
  with a missing indicator when any value is missing) and one step term
  ``1[x >= e_k]`` per interior quantile edge, so the model is piecewise
  linear-plus-steps in each covariate;
* a categorical covariate: one indicator per kept level except the most
  frequent one (levels beyond ``max_levels`` share the reference).

Sums of the terms per cell are additive, so cells built on a sample of rows
or on another engine combine exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from collections.abc import Mapping, Sequence

from ..engine.keys import Dialect, text_type
from ..engine.keys import finite_value_sql
from ..errors import InputError
from ..sqlutil import quote_ident
from .profile import Profile
from .rows import MISSING, CovKind

TermKind = Literal["value", "missing", "step", "level"]

#: Categorical levels kept as indicators (the rest share the reference level).
MAX_LEVELS = 30


@dataclass(frozen=True)
class Term:
    """One model term: ``sql`` is a DOUBLE expression whose ``?`` take ``params``.

    ``sql`` reads the covariate's *input column* of :meth:`Design.inputs`
    (``v__<i>``: the finite value of a numeric covariate, the level code of
    a categorical one), not the raw column: the casts and string matching
    happen once per row and covariate, not once per term.
    """

    name: str
    covariate: str
    kind: TermKind
    sql: str
    params: tuple = ()
    level: str | None = None

    @property
    def params_level(self) -> str:
        """The level a ``level`` term indicates."""
        assert self.level is not None
        return self.level


@dataclass(frozen=True)
class Design:
    """The model terms of every covariate.

    Attributes
    ----------
    covariates
        Covariate names, in order.
    kinds
        Covariate -> ``numeric`` or ``categorical``.
    terms
        The terms; ``terms_of(name)`` gives one covariate's.
    edges
        Numeric covariate -> its interior quantile edges (the step terms).
    centre, spread
        Numeric covariate -> the mean and standard deviation used to
        standardise it (pooled over both windows).
    """

    covariates: tuple[str, ...]
    kinds: Mapping[str, str]
    terms: tuple[Term, ...]
    edges: Mapping[str, tuple[float, ...]]
    centre: Mapping[str, float]
    spread: Mapping[str, float]

    @property
    def p(self) -> int:
        """Number of design terms."""
        return len(self.terms)

    def index_of(self, covariate: str) -> list[int]:
        """Positions of a covariate's terms in the design vector."""
        return [j for j, t in enumerate(self.terms) if t.covariate == covariate]

    def inputs(self, dialect: Dialect = "duckdb") -> tuple[list[str], list]:
        """SELECT expressions of the input columns ``v__<i>`` the terms read, and their parameters.

        ``dialect`` names the engine the text is for (the casts differ; the
        terms over the input columns are the same text on both).

        A numeric covariate becomes its value as DOUBLE (NaN and infinities
        as NULL); a categorical one the code of its level among its terms
        (1, 2, ...; 0 for the reference level and levels without a term).
        """
        exprs, params = [], []
        for i, name in enumerate(self.covariates):
            alias = quote_ident(input_name(i))
            if self.kinds[name] == "numeric":
                exprs.append(f"{finite_sql(name, dialect)} AS {alias}")
                continue
            levels = [t.params_level for t in self.terms if t.covariate == name and t.kind == "level"]
            if not levels:
                exprs.append(f"0 AS {alias}")
                continue
            whens = " ".join(f"WHEN ? THEN {k + 1}" for k in range(len(levels)))
            text = text_type(dialect)
            exprs.append(f"CASE coalesce(CAST({quote_ident(name)} AS {text}), ?) {whens} ELSE 0 END AS {alias}")
            params += [MISSING, *levels]
        return exprs, params

    def select(self) -> tuple[list[str], list]:
        """SELECT expressions ``z__j`` of the terms over the input columns, and their parameters, in order."""
        return [f"{t.sql} AS {quote_ident(f'z__{j}')}" for j, t in enumerate(self.terms)], self._term_params()

    def sums(self) -> tuple[list[str], list]:
        """Aggregate expressions ``s__j = sum(term j)`` over the input columns, and their parameters."""
        return [f"sum({t.sql}) AS {quote_ident(f's__{j}')}" for j, t in enumerate(self.terms)], self._term_params()

    def _term_params(self) -> list:
        """Every term's parameters in term order: what one expression per term, in that order, binds."""
        return [x for t in self.terms for x in t.params]


def build_design(profile: Profile, kinds: Mapping[str, str], *, bins: int,
                 moments: Mapping[str, tuple[float, float, bool]],
                 max_levels: int = MAX_LEVELS) -> Design:
    """Terms of every covariate from the profile.

    Parameters
    ----------
    profile
        :func:`~toolkit.attribution.cells.profile_covariates` of the rows
        (it serves the quantile edges of ``bins`` bins and the levels).
    kinds
        Covariate -> ``numeric`` or ``categorical`` (a numeric column
        declared categorical is read as text).
    bins
        Quantile bins per numeric covariate (``bins - 1`` step terms).
    moments
        Numeric covariate -> (mean, standard deviation, has missing values).
    max_levels
        Indicators per categorical covariate at most.
    """
    terms: list[Term] = []
    edges: dict[str, tuple[float, ...]] = {}
    centre: dict[str, float] = {}
    spread: dict[str, float] = {}
    for i, (name, kind) in enumerate(kinds.items()):
        v = quote_ident(input_name(i))
        if kind == "numeric":
            mean, sd, has_missing = moments[name]
            sd = sd if sd and sd > 0 else 1.0
            centre[name], spread[name] = mean, sd
            terms.append(Term(name, name, "value", f"(coalesce({v}, ?) - ?) / ?", (mean, mean, sd)))
            if has_missing:
                terms.append(Term(f"{name}[missing]", name, "missing", f"CAST({v} IS NULL AS DOUBLE)"))
            e = tuple(profile.edges(name, bins)) if bins > 1 and profile.serves(name, bins) else ()
            edges[name] = e
            for edge in e:
                terms.append(Term(f"{name}>={edge:.6g}", name, "step",
                                  f"CAST(coalesce({v} >= ?, FALSE) AS DOUBLE)", (edge,)))
        elif kind == "categorical":
            # the most frequent level is the reference; a missing value is a level of its own
            levels = [lv for lv, _ in profile.levels.get(name, ())]
            counts = profile.level_counts.get(name)
            if counts is not None and (counts["level"] == MISSING).any():
                levels.append(MISSING)
            for k, lv in enumerate(levels[1:max_levels + 1]):
                terms.append(Term(f"{name}={lv}", name, "level", f"CAST({v} = {k + 1} AS DOUBLE)",
                                  level=lv))
        else:
            raise InputError(f"covariate {name!r}: unknown kind {kind!r}")
    return Design(tuple(kinds), dict(kinds), tuple(terms), edges, centre, spread)


def input_name(i: int) -> str:
    """Name of the input column of the i-th covariate (see :meth:`Design.inputs`)."""
    return f"v__{i}"


def finite_sql(name: str, dialect: Dialect = "duckdb") -> str:
    """A numeric covariate as DOUBLE with NaN and infinities read as missing."""
    return finite_value_sql(f"CAST({quote_ident(name)} AS DOUBLE)", dialect)


def covariate_kinds(types: Mapping[str, str], covariates: Sequence[str],
                    categorical: Sequence[str] = ()) -> dict[str, CovKind]:
    """``numeric`` or ``categorical`` per covariate from the column types.

    ``categorical`` names numeric columns (integer codes) to read as levels.
    """
    from .rows import _is_numeric

    unknown = [c for c in categorical if c not in covariates]
    if unknown:
        raise InputError(f"--categorical names {', '.join(map(repr, unknown))}, which are not among the "
                         f"covariates ({', '.join(covariates) or 'none'})")
    return {c: ("numeric" if _is_numeric(types[c]) and c not in categorical else "categorical")
            for c in covariates}
