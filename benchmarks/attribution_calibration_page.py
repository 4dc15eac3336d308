"""The results page of the attribution calibration (``benchmarks/attribution_calibration.py``).

:func:`summarise` reduces the replications (one row per source, replication,
metric, method and component) to error, RMSE, share within the acceptance
tolerance and interval coverage with its Wilson interval; :func:`markdown`
writes the page, with a reading generated from the figures
(:func:`interpretation`).
"""

from __future__ import annotations

# the windows and the estimates compared are the benchmark's settings, defined once with its runs
from benchmarks.attribution_calibration import BASELINE, COMPARISON, COMPONENTS, METHODS

#: acceptance tolerance: max(TOL_ABS, TOL_REL * |truth|), raw units of the metric
TOL_ABS = 0.006
TOL_REL = 0.30
#: the coverage band a 95% interval should land in over the replications
BAND = (90.0, 98.0)
#: share of replications within tolerance for a cell to "meet" it
TOL_PASS = 90.0
#: slack of the coverage check (degenerate cells: a single version gives a zero-width interval at the truth)
EPS = 1e-9


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of ``k`` successes in ``n`` trials (``nan`` for ``n = 0``)."""
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5
    return 100 * max(0.0, centre - half), 100 * min(1.0, centre + half)


def summarise(frame):
    """Per source, metric, method and component: error, RMSE, share within tolerance and coverage."""
    import polars as pl

    tol = pl.max_horizontal(pl.lit(TOL_ABS), TOL_REL * pl.col("truth").abs())
    g = (
        frame.with_columns(
            (pl.col("estimate") - pl.col("truth")).alias("error"),
            ((pl.col("ci_low") - EPS <= pl.col("truth")) & (pl.col("truth") <= pl.col("ci_high") + EPS))
            .alias("covered"),
            ((pl.col("estimate") - pl.col("truth")).abs() <= tol).alias("within"),
            (pl.col("ci_high") - pl.col("ci_low")).alias("width"),
        )
        .group_by("kind", "source", "metric", "method", "component", maintain_order=True)
        .agg(
            pl.len().alias("reps"),
            pl.col("truth").mean().alias("mean_truth"),
            pl.col("truth").std().alias("sd_truth"),
            pl.col("error").mean().alias("mean_error"),
            pl.col("error").std().alias("sd_error"),
            (pl.col("error") ** 2).mean().sqrt().alias("rmse"),
            pl.col("within").sum().alias("n_within"),
            pl.col("covered").sum().alias("n_covered"),
            pl.col("width").mean().alias("mean_width"),
        )
        .with_columns(
            (100 * pl.col("n_within") / pl.col("reps")).alias("within_pct"),
            (100 * pl.col("n_covered") / pl.col("reps")).alias("coverage_pct"),
            ((pl.col("rmse") < EPS) & (pl.col("mean_width") < EPS)).alias("exact"),
        )
        .with_columns(
            (pl.col("exact") | pl.col("coverage_pct").is_between(*BAND)).alias("in_band"),
            (pl.col("within_pct") >= TOL_PASS).alias("in_tol"),
            pl.struct("n_covered", "reps").map_elements(
                lambda x: wilson(x["n_covered"], x["reps"])[0], return_dtype=pl.Float64).alias("cov_lo"),
            pl.struct("n_covered", "reps").map_elements(
                lambda x: wilson(x["n_covered"], x["reps"])[1], return_dtype=pl.Float64).alias("cov_hi"),
        )
    )
    return g


def _metric_family(metric: str) -> str:
    if metric.startswith("rate:"):
        return "rate"
    if metric.startswith("mean:"):
        return "mean:score"
    return metric


def _ok_cov(c: float) -> bool:
    return BAND[0] <= c <= BAND[1]


def _row(r: dict) -> str:
    lo, hi = r["cov_lo"], r["cov_hi"]
    if r["exact"]:
        cov = f"{r['coverage_pct']:.0f} (exact: zero-width interval at the truth)"
    else:
        flag = "" if _ok_cov(r["coverage_pct"]) else (" **low**" if r["coverage_pct"] < BAND[0] else " **high**")
        cov = f"{r['coverage_pct']:.0f} ({lo:.0f}-{hi:.0f}){flag}"
    tol_flag = "" if r["within_pct"] >= TOL_PASS else " **<90**"
    return (f"| {r['source']} | `{r['metric']}` | {r['method']} | {r['component']} | {r['reps']} | "
            f"{r['mean_truth']:+.4f} | {r['mean_error']:+.4f} | {r['rmse']:.4f} | {r['mean_width']:.4f} | "
            f"{r['within_pct']:.0f}{tol_flag} | {cov} |")


HEAD = ("| source | metric | method | component | R | mean truth | mean error | RMSE | mean CI width | "
        "within tol. % | coverage % (Wilson 95%) |\n|---|---|---|---|---|---|---|---|---|---|---|")


def interpretation(summary) -> list[str]:
    """Data-driven reading: which cells meet the coverage band and the tolerance (rate and mean:score)."""
    import polars as pl

    main = summary.filter(pl.col("metric") != "accuracy")
    live = main.filter(~pl.col("exact"))
    nominal_out = live.filter((pl.col("cov_hi") < 95.0) | (pl.col("cov_lo") > 95.0))
    out = [
        (f"Of the {main.height} cells of rate and mean-score metrics ({main.height - live.height} of them exact: "
        "a single version in both windows gives a zero-width interval at the truth), "
        f"{main.filter(pl.col('in_band') & pl.col('in_tol')).height} meet both the coverage band "
        f"({BAND[0]:.0f}-{BAND[1]:.0f}%) and the tolerance (at least {TOL_PASS:.0f}% of replications within "
        f"max(0.006, 30% of |truth|)). Of the others, {live.filter(pl.col('coverage_pct') < BAND[0]).height} "
        f"under-cover, {live.filter(pl.col('coverage_pct') > BAND[1]).height} over-cover, "
        f"{main.filter(~pl.col('in_tol')).height} miss the tolerance; {nominal_out.height} have a Wilson interval "
        "of the coverage that excludes 95% (a miss not explained by the finite R)."),
        "",
        "By method and component (pooled over sources and metrics; real cases and simulator apart):",
        "",
        ("| sources | method | component | cells | cells in band | cells within tol. | pooled coverage % "
        "| pooled within tol. % | RMSE range | worst coverage % (cell) |"),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, label in (("real", "real cases"), ("sim", "simulator")):
        sub = main.filter(pl.col("kind") == kind)
        for method in METHODS:
            for comp in COMPONENTS:
                c = sub.filter((pl.col("method") == method) & (pl.col("component") == comp))
                if c.height == 0:
                    continue
                reps = c["reps"].sum()
                worst = c.sort("coverage_pct").row(0, named=True)
                out.append(
                    f"| {label} | {method} | {comp} | {c.height} | {c['in_band'].sum()} | {c['in_tol'].sum()} | "
                    f"{100 * c['n_covered'].sum() / reps:.1f} | {100 * c['n_within'].sum() / reps:.1f} | "
                    f"{c['rmse'].min():.4f}-{c['rmse'].max():.4f} | "
                    f"{worst['coverage_pct']:.0f} ({worst['source']}, `{worst['metric']}`) |")
    over = main.filter(pl.col("in_tol") & ~pl.col("exact") & (pl.col("coverage_pct") > BAND[1]))
    if over.height:
        ratio = (over["mean_width"] / (2 * 1.959964 * over["sd_error"])).drop_nans().drop_nulls()
        out += ["", (f"{over.height} cells within the tolerance over-cover (coverage above {BAND[1]:.0f}%): their "
                "intervals are wider than the spread of the error calls for; the mean half-width is "
                f"{ratio.median():.1f} times 1.96 SD of the error across replications in the median such cell "
                f"(range {ratio.min():.1f}-{ratio.max():.1f}; 1.0 is a calibrated interval when the bias is nil).")]
    fails = main.filter((~pl.col("in_band") & (pl.col("coverage_pct") < BAND[0])) | ~pl.col("in_tol")).sort(
        "coverage_pct")
    if fails.height:
        out += ["", ("Cells that under-cover or miss the tolerance, lowest coverage first. bias = mean error; "
                "bias/SD = bias over the SD of the error across replications (how many of its own standard "
                "deviations the estimate is off on average); half-width = mean half-width of the interval, "
                "to compare with the RMSE:"), ""]
        for r in fails.iter_rows(named=True):
            sd = r["sd_error"] if r["sd_error"] is not None else float("nan")
            ratio = r["mean_error"] / sd if sd > 0 else float("nan")
            why = []
            if not r["in_band"]:
                why.append(f"coverage {r['coverage_pct']:.0f}% ({r['cov_lo']:.0f}-{r['cov_hi']:.0f})")
            if not r["in_tol"]:
                why.append(f"within tolerance {r['within_pct']:.0f}%")
            out.append(
                f"- {r['source']} `{r['metric']}` {r['method']} {r['component']}: {', '.join(why)}; "
                f"truth {r['mean_truth']:+.4f}, bias {r['mean_error']:+.4f} (bias/SD {ratio:+.1f}), "
                f"RMSE {r['rmse']:.4f}, half-width {r['mean_width'] / 2:.4f}.")
    return out


def markdown(frame, summary, meta: dict, notes: str | None) -> str:
    """The results page: the summary tables, the run's metadata and the hand-written notes."""
    import polars as pl

    lines = [
        "# Attribution accuracy and interval calibration against replay truth",
        "",
        (f"Generated {meta['generated']} by `benchmarks/attribution_calibration.py` ({meta['cmd']}); "
        f"{meta['runtime']}."),
        "",
        ("Each replication builds a store and attributes the shift of each metric between "
        f"{BASELINE} and {COMPARISON} with every method (`method='all'`, `n_boot={meta['n_boot']}`, "
        "bootstrap seed = replication index); the data drift and version drift of each method are compared with "
        "the exact replay truth. Real-data cases (`toolkit.samples.real`): the records resampled with "
        f"`fraction={meta['fraction']}` and seed = replication index (redraws the routing and the records). "
        f"Simulator: `simulate(scenarios=[name], rows={meta['rows']}, seed=replication index)`."),
        "",
        (f"- **within tol. %**: share of replications with |estimate - truth| <= max({TOL_ABS}, "
        f"{TOL_REL:.0%} of |truth|) (0.6 points of a rate or accuracy; 0.006 of a mean score, a probability); "
        f"**<90** marks a cell below {TOL_PASS:.0f}%."),
        f"- **coverage %**: share of replications whose 95% interval holds the truth, with its Wilson 95% "
        f"interval; **low** / **high** mark cells outside {BAND[0]:.0f}-{BAND[1]:.0f}%. The binomial SE of a "
        "coverage near 95% is "
        + ", ".join(f"{100 * (0.95 * 0.05 / r) ** 0.5:.1f} points at R={r}"
                    for r in sorted(set(summary['reps'].to_list())) if r > 0)
        + f". Checked with a slack of {EPS:g} (cells with one version have zero-width intervals at the truth).",
        ("- **mean truth** varies between replications of the real cases (the subsample and routing change it); "
        "mean error is estimate - truth, RMSE its root mean square, mean CI width the mean of hi - lo."),
        "",
        "## Positive rate and mean score",
        "",
        HEAD,
    ]
    main = summary.filter(pl.col("metric") != "accuracy")
    for kind in ("real", "sim"):
        for r in main.filter(pl.col("kind") == kind).iter_rows(named=True):
            lines.append(_row(r))
    lines += ["", "## Reading (generated from the figures)", ""] + interpretation(summary)
    acc = summary.filter(pl.col("metric") == "accuracy")
    if acc.height:
        lines += [
            "", "## Accuracy (real cases; not comparable as an acceptance test)", "",
            ("For an outcome metric the replay truth books concept drift (the outcome changing given the inputs, "
            "e.g. a different delay or wage regime in the comparison window) to **data drift**, because it "
            "replays the logged inputs *with their logged outcomes*; vdrift's outcome models hold the "
            "baseline's outcome-given-inputs relation and book that change to the **residual**. A gap "
            "between vdrift's data drift and the truth's is therefore expected whenever concept drift is "
            "present; the version drift is comparable in principle. The mean residual estimate is shown per "
            "cell for that reason."),
            "",
            ("| source | metric | method | component | R | mean truth | mean error | RMSE | mean CI width | "
            "within tol. % | coverage % (Wilson 95%) | mean vdrift residual |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|"),
        ]
        resid = (frame.filter(pl.col("metric") == "accuracy")
                 .group_by("source", "method", "component").agg(pl.col("est_residual").mean()))
        rmap = {(r["source"], r["method"], r["component"]): r["est_residual"] for r in resid.iter_rows(named=True)}
        for r in acc.iter_rows(named=True):
            lines.append(_row(r) + f" {rmap[(r['source'], r['method'], r['component'])]:+.4f} |")
    if notes:
        lines += ["", notes.strip()]
    lines.append("")
    return "\n".join(lines)
