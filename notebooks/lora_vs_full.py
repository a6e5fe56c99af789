# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Writing up the LoRA-vs-full decision
#
# Reads one `embexp-report` output folder (`report.json`) and walks through the decision: is
# fine-tuning worth it, and does a cheaper configuration (LoRA, last layer) keep enough of the full
# fine-tune's gain? Every number below comes from the report; nothing is typed by hand.
#
# The folder is `$EMBEXP_REPORT`, by default `../reports/scifact-decision` (relative to this folder).

# %%
# %matplotlib inline
import math
import os
from pathlib import Path

from IPython.display import Markdown, display

from embexp.report import figures
from embexp.report.render import (
    fmt_diff,
    fmt_float,
    fmt_int,
    fmt_interval,
    fmt_metric,
    fmt_p,
    fmt_pct,
    fmt_seconds,
    load_report,
)
from embexp.report.verdict import SEED_CLAIM

REPORT_DIR = Path(os.environ.get("EMBEXP_REPORT", "../reports/scifact-decision")).resolve()
report = load_report(REPORT_DIR)
settings, ev = report["settings"], report["eval"]
PRIMARY = figures.primary(report)
BASE = figures.baseline_name(report)
ALPHA = settings["alpha"]
FINETUNED = [s["name"] for s in report["systems"] if s["kind"] == "finetuned"]


def md_table(headers: list[str], rows: list[list], empty: str = "None.") -> Markdown:
    """A markdown pipe table (renders in Jupyter and on GitHub); ``empty`` when there are no rows."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in rows]
    return Markdown("\n".join(lines) if rows else empty)


def mean_ci(row: dict | None) -> str:
    if row is None:
        return "–"
    return f"{fmt_metric(row['mean'])} {fmt_interval(fmt_metric, row['ci_low'], row['ci_high'])}"


def diff_ci(row: dict) -> str:
    return f"{fmt_diff(row['diff'])} {fmt_interval(fmt_diff, row['ci_low'], row['ci_high'])}"


print(f"report: {REPORT_DIR}")

# %% [markdown]
# ## Eval setup

# %%
code = report.get("code") or {}
setup = [
    f"**Data:** {ev['dataset']} / {ev['split']}, {fmt_int(ev['n_queries'])} queries "
    f"(fingerprint `{ev.get('fingerprint')}`)",
    f"**Base model:** `{ev['base_model']}`",
    "**Slices:** " + ", ".join(f"{k} (n={v})" for k, v in ev["slices"].items()),
    "**Configurations (seeds):** "
    + ", ".join(f"{s['name']} ({s['n_seeds']})" for s in report["systems"] if s["kind"] == "finetuned"),
    f"**Primary metric:** {PRIMARY}; tested: {', '.join(settings['metrics'])}",
    f"**Statistics:** {settings['confidence']:.0%} CIs, {settings['resamples']} resamples, "
    f"Holm-corrected at α = {ALPHA:g}",
    f"**Machine:** {report.get('machine')}; created {report.get('created')}; "
    f"embexp {code.get('embexp')} `{(code.get('git_commit') or '')[:10]}`",
]
display(Markdown("\n".join(f"- {line}" for line in setup)))

# %% [markdown]
# ## Verdict

# %%
display(Markdown(report["verdict"]))
caveats = report.get("caveats") or []
display(Markdown("**Caveats**\n\n" + "\n".join(f"- {c}" for c in caveats) if caveats else "No caveats."))
if report.get("warnings"):
    display(Markdown("**Warnings**\n\n" + "\n".join(f"- {w}" for w in report["warnings"])))

# %% [markdown]
# ## Summary: primary metric per system and slice
#
# Mean over seeds with its confidence interval `mean [low, high]`. A † marks a query-bootstrap CI
# (fewer than 3 seeds: the seed-to-seed variance is not included).

# %%
index = figures.summary_index(report)
slices = figures.slice_names(report)
rows = []
for name in figures.system_names(report):
    cells = [index.get((name, s, PRIMARY)) for s in slices]
    if any(cells):
        rows.append([name] + [mean_ci(c) + (" †" if c and c.get("flag") else "") for c in cells])
display(md_table(["system"] + [f"{s} (n={ev['slices'].get(s, '?')})" for s in slices], rows))

# %% [markdown]
# ## Comparisons (paired per query, Holm-corrected)
#
# `diff = a − b` on the primary metric. Holm's correction runs over the whole family of
# configuration tests (every configuration vs the base model and vs each other, every slice and
# metric), so "Holm p" is the number to read; ✓ = significant at α.

# %%
CMP_HEADERS = ["a", "b", "slice", "mean a", "mean b", "diff [CI]", "p", "Holm p", "sig."]


def cmp_rows(rows: list[dict]) -> list[list]:
    return [
        [c["a"], c["b"], c["slice"], fmt_metric(c["mean_a"]), fmt_metric(c["mean_b"]), diff_ci(c)]
        + [fmt_p(c["p"]), fmt_p(c.get("p_holm")), "✓" if c.get("significant") else ""]
        for c in rows
    ]


configs = [c for c in report["comparisons"] if c["family"] == "configurations" and c["metric"] == PRIMARY]
display(Markdown(f"### vs {BASE}"))
display(md_table(CMP_HEADERS, cmp_rows([c for c in configs if c["b"] == BASE])))
display(Markdown("### Between configurations"))
display(md_table(CMP_HEADERS, cmp_rows([c for c in configs if c["b"] != BASE])))

# %% [markdown]
# ### Against the lexical references
#
# BM25 and the hybrid (RRF of BM25 and an encoder) — a separate Holm family. If the base model's
# hybrid is already as good as the fine-tuned encoder, fine-tuning is not the first thing to ship.

# %%
refs = [
    c
    for c in report["comparisons"]
    if c["family"] == "references" and c["metric"] == PRIMARY and c["slice"] == "all"
]
display(md_table(CMP_HEADERS, cmp_rows(refs), "No reference rows (the report was built without them)."))

# %% [markdown]
# ## Recovery: share of the full fine-tune's gain recovered
#
# `(cheaper − base) / (full − base)` with a paired bootstrap CI, on every metric (slice `all`).
# The seed guide claims "LoRA keeps a fixed range of the full fine-tune's recall gain" (the range is
# `embexp.report.verdict.SEED_CLAIM`, printed below); the last column checks it against the CI
# ("consistent" = the CI overlaps the claimed range, which does not prove it).

# %%
lo, hi = SEED_CLAIM
display(Markdown(f"Claimed range: **{fmt_pct(lo)}–{fmt_pct(hi)}** of the full fine-tune's recall gain."))


def guide_check(r: dict) -> str:
    low, high = r["ci_low"], r["ci_high"]
    if not r["stable"] or any(v is None or math.isnan(v) for v in (low, high)):
        return "undefined (full gain not distinguishable from 0)"
    if high < lo:
        return "below"
    return "above" if low > hi else "consistent"


recovery = [r for r in report["recovery"] if r["slice"] == "all"]
display(
    md_table(
        ["cheaper", "full", "metric", "gain cheaper", "gain full", "recovered [CI]", "vs claim"],
        [
            [r["cheaper"], r["full"], r["metric"], fmt_diff(r["gain_cheaper"]), fmt_diff(r["gain_full"])]
            + [f"{fmt_pct(r['ratio'])} {fmt_interval(fmt_pct, r['ci_low'], r['ci_high'])}", guide_check(r)]
            for r in recovery
        ],
        "No recovery ratio: it needs a full fine-tune, a cheaper configuration and the base model.",
    )
)

# %% [markdown]
# ## Per-slice regressions
#
# A configuration significantly (after Holm) below the base model, or below the best configuration,
# on some slice and metric.

# %%
display(
    md_table(
        ["system", "worse than", "slice", "metric", "diff [CI]", "Holm p"],
        [
            [r["system"], r["against"], r["slice"], r["metric"], diff_ci(r), fmt_p(r["p_holm"])]
            for r in report["regressions"]
        ],
        "No significant regression on any slice after Holm correction.",
    )
)

# %% [markdown]
# ## Cost
#
# Mean over seeds of what the runs recorded; latency is query encoding at batch 1 on the report's
# machine (empty when the report was built without it).

# %%
display(Markdown(f"Machine: {report.get('machine')}"))
display(
    md_table(
        ["system", f"{PRIMARY} (all)", "trainable params", "model MB", "peak memory MB"]
        + ["train wall time", "pairs/s", "re-embed corpus", "latency p50 ms"],
        [
            [r["system"], mean_ci(index.get((r["system"], "all", PRIMARY)))]
            + [fmt_int(r.get("trainable_params")), fmt_float(r.get("model_size_mb"))]
            + [fmt_float(r.get("peak_memory_mb")), fmt_seconds(r.get("train_wall_s"))]
            + [fmt_float(r.get("pairs_per_s")), fmt_seconds(r.get("reembed_corpus_s"))]
            + [fmt_float(r.get("latency_p50_ms"), 2)]
            for r in report["cost"]
        ],
    )
)

# %% [markdown]
# ## Figures
#
# ### Primary metric per system (slice `all`)

# %%
display(figures.metric_bars(report))

# %% [markdown]
# ### Primary metric per slice

# %%
display(figures.slice_bars(report))

# %% [markdown]
# ### Per-slice difference from the base model

# %%
display(figures.delta_heatmap(report))

# %% [markdown]
# ### Quality against training cost (Pareto front)

# %%
display(figures.quality_vs_cost(report))

# %% [markdown]
# ### Per-query scores of the two leading configurations

# %%
scatter = figures.paired_scatter(report)
display(scatter if scatter is not None else Markdown("No pair of systems to plot."))

# %% [markdown]
# ### Dev metric during training

# %%
display(figures.dev_curves(report))

# %% [markdown]
# ## How to read this / what to do next
#
# - **Overlapping CIs** between the two leading configurations (see the caveats): the data do not
#   separate them yet — run more seeds before deciding, and prefer the cheaper one meanwhile.
# - **Recovery "consistent" with the claim** only means the CI overlaps the claimed range; a wide
#   CI is also an argument for more seeds (or more eval queries).
# - **A regressing slice** (especially a tail slice): look at its queries in `per_query.jsonl`
#   before shipping, and check the slice definitions (`eval.slices`) are what you think.
# - **The hybrid beats or matches fine-tuning**: ship the base model's hybrid first; fine-tune
#   later if its encoder inside the hybrid adds a significant gain.
# - **No significant gain over the base model**: check the training curves (dev metric flat or
#   falling) and the training data before spending on more configurations.

# %%
HYBRID = "hybrid: base model"


def beats(a: str | None, b: str) -> bool:
    """``a`` significantly above ``b`` on the primary metric, slice all."""
    return any(
        (c["a"], c["b"], c["slice"], c["metric"]) == (a, b, "all", PRIMARY)
        and c["significant"]
        and c["diff"] > 0
        for c in report["comparisons"]
    )


top = sorted(
    (index[(f, "all", PRIMARY)] for f in FINETUNED if (f, "all", PRIMARY) in index), key=lambda r: -r["mean"]
)
best = top[0]["system"] if top else None
has_hybrid = HYBRID in figures.system_names(report)
checks = {
    "the two leading configurations' CIs overlap → more seeds": len(top) >= 2
    and top[1]["ci_high"] >= top[0]["ci_low"],
    "a configuration regresses on some slice → read that slice's queries": bool(report["regressions"]),
    f"{best} does not beat the base model's hybrid → ship the hybrid first"
    + ("" if has_hybrid else " (no hybrid in this report)"): has_hybrid and not beats(best, HYBRID),
    f"{best} is not significantly above {BASE} → check the curves and the data": best is not None
    and not beats(best, BASE),
}
display(
    Markdown(
        "**Applies to this report:**\n\n"
        + "\n".join(f"- [{'x' if v else ' '}] {k}" for k, v in checks.items())
    )
)
