"""Figures of a comparison report, drawn from the report dict (the parsed ``report.json``).

Every function returns a :class:`matplotlib.figure.Figure` bound to the Agg canvas (no pyplot,
no global backend switch), so they run headless and leave no open pyplot state behind.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embexp.utils.io import atomic_path


@dataclass(frozen=True)
class FigureSpec:
    """A report figure: ``draw(report)`` -> Figure (or None), its alt text, and whether a
    report has something to show in it."""

    name: str
    draw: Callable[[dict], Any]
    alt: str
    shows: Callable[[dict], bool]


REGISTRY: dict[str, FigureSpec] = {}  # name -> spec, in the order the report places them


def figure(alt: str, shows: Callable[[dict], bool]):
    """Register the decorated drawing function as the figure of its name (``fig_<name>.png``)."""

    def register(fn):
        REGISTRY[fn.__name__] = FigureSpec(fn.__name__, fn, alt, shows)
        return fn

    return register


DPI = 120
SEED_LINESTYLES = ("-", "--", ":", "-.")
BASELINE_COLOR = "#9e9e9e"
REFERENCE_COLORS = ("#d9b38c", "#b7a0c9", "#a3c4bc", "#e0c36a")
FINETUNED_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")
COST_LABELS = {
    "train_wall_s": "training wall time (s)",
    "trainable_params": "trainable parameters",
    "model_size_mb": "model size (MB)",
    "peak_memory_mb": "peak memory (MB)",
    "reembed_corpus_s": "corpus re-embedding time (s)",
    "latency_p50_ms": "query latency p50 (ms)",
    "latency_p95_ms": "query latency p95 (ms)",
    "pairs_per_s": "training throughput (pairs/s)",
    "train_steps": "training steps",
}


# ---------------------------------------------------------------------------- report look-ups


def primary(report: dict) -> str:
    """The primary metric (``settings.primary``, else the first metric, else ndcg@10)."""
    settings = report.get("settings") or {}
    return settings.get("primary") or (settings.get("metrics") or ["ndcg@10"])[0]


def system_names(report: dict) -> list[str]:
    """Systems in report order, then any that only appear in ``summary``."""
    names = [s["name"] for s in report.get("systems") or []]
    for row in report.get("summary") or []:
        if row["system"] not in names:
            names.append(row["system"])
    return names


def slice_names(report: dict) -> list[str]:
    """Slices in ``eval.slices`` order (``all`` first), then any only in ``summary``."""
    names = list(((report.get("eval") or {}).get("slices") or {}).keys())
    for row in report.get("summary") or []:
        if row["slice"] not in names:
            names.append(row["slice"])
    if "all" in names:
        names.remove("all")
        names.insert(0, "all")
    return names


def baseline_name(report: dict) -> str | None:
    """``settings.baseline`` when it names a system, else the first system of kind baseline."""
    names = system_names(report)
    wanted = (report.get("settings") or {}).get("baseline")
    if wanted in names:
        return wanted
    return next((s["name"] for s in report.get("systems") or [] if s.get("kind") == "baseline"), None)


def summary_index(report: dict) -> dict[tuple[str, str, str], dict]:
    """(system, slice, metric) -> summary row."""
    return {(r["system"], r["slice"], r["metric"]): r for r in report.get("summary") or []}


def kinds(report: dict) -> dict[str, str]:
    return {s["name"]: s.get("kind", "finetuned") for s in report.get("systems") or []}


def significance_mark(p_holm: float | None, alpha: float = 0.05) -> str:
    """``*`` p<alpha, ``**`` p<0.01, ``***`` p<0.001 (Holm-corrected p); '' otherwise."""
    if p_holm is None or _nan(p_holm) or p_holm >= alpha:
        return ""
    return "***" if p_holm < 0.001 else "**" if p_holm < 0.01 else "*"


def _nan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _num(v: Any) -> float | None:
    return None if v is None or _nan(v) else float(v)


def _alpha(report: dict) -> float:
    return float((report.get("settings") or {}).get("alpha") or 0.05)


# ---------------------------------------------------------------------------- styling helpers


def _styles(report: dict) -> dict[str, dict]:
    """System -> bar style: grey baseline, hatched pastel references, strong colours for fine-tunes."""
    kind_of, out, n_ref, n_ft = kinds(report), {}, 0, 0
    for name in system_names(report):
        kind = kind_of.get(name, "finetuned")
        if kind == "baseline":
            out[name] = {"color": BASELINE_COLOR, "hatch": "..", "edgecolor": "#555555"}
        elif kind == "reference":
            out[name] = {"color": REFERENCE_COLORS[n_ref % len(REFERENCE_COLORS)], "hatch": "//"}
            out[name]["edgecolor"] = "#555555"
            n_ref += 1
        else:
            out[name] = {"color": FINETUNED_COLORS[n_ft % len(FINETUNED_COLORS)], "hatch": None}
            out[name]["edgecolor"] = "#333333"
            n_ft += 1
    return out


def _figure(width: float, height: float):
    """A Figure on the Agg canvas (no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _empty(title: str, message: str):
    fig = _figure(6, 2.5)
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=11, color="#666666", transform=ax.transAxes)
    return fig


def _rotate_labels(ax, labels: list[str]) -> None:
    """System names on the x axis, rotated when many or long."""
    long = len(labels) > 4 or max((len(s) for s in labels), default=0) > 12
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=35 if long else 0, ha="right" if long else "center", fontsize=9)


def _err(rows: list[dict | None]) -> tuple[list[float], list[list[float]]]:
    """Means and asymmetric error bar lengths (0 where the CI is missing)."""
    means, lo, hi = [], [], []
    for r in rows:
        m = _num(r.get("mean")) if r else None
        low, high = (_num(r.get("ci_low")), _num(r.get("ci_high"))) if r else (None, None)
        means.append(math.nan if m is None else m)
        lo.append(max(m - low, 0.0) if m is not None and low is not None else 0.0)
        hi.append(max(high - m, 0.0) if m is not None and high is not None else 0.0)
    return means, [lo, hi]


# ---------------------------------------------------------------------------- figures


@figure("Primary metric per system with confidence intervals", lambda r: bool(r.get("summary")))
def metric_bars(report: dict, metric: str | None = None, slice: str = "all"):
    """Mean per system with CI error bars on one slice; baseline and references hatched."""
    metric = metric or primary(report)
    idx, styles = summary_index(report), _styles(report)
    names = [n for n in system_names(report) if (n, slice, metric) in idx]
    if not names:
        return _empty(f"{metric} ({slice})", "no results")
    means, err = _err([idx[(n, slice, metric)] for n in names])
    fig = _figure(max(5.0, 0.75 * len(names) + 2.5), 4.2)
    ax = fig.add_subplot()
    for i, (n, m) in enumerate(zip(names, means)):
        st = styles[n]
        ax.bar(i, m, color=st["color"], hatch=st["hatch"], edgecolor=st["edgecolor"], linewidth=0.8)
        ax.errorbar(i, m, yerr=[[err[0][i]], [err[1][i]]], color="black", capsize=4, linewidth=1)
        if not math.isnan(m):
            ax.annotate(
                f"{m:.3f}",
                (i, m + err[1][i]),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=8,
            )
    _rotate_labels(ax, names)
    if len(names) < 3:  # keep a lone bar from filling the axes
        ax.set_xlim((len(names) - 1) / 2 - 1.5, (len(names) - 1) / 2 + 1.5)
    ax.set_ylabel(metric)
    _pad_top(ax, [m + e for m, e in zip(means, err[1])])
    n = ((report.get("eval") or {}).get("slices") or {}).get(slice)
    ax.set_title(f"{metric} on {slice}" + (f" ({n} queries)" if n else "") + f", {_ci_label(report)}")
    ax.legend(
        handles=_kind_legend(report, styles, names), fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1)
    )
    ax.grid(axis="y", alpha=0.3)
    return fig


def _ci_label(report: dict) -> str:
    conf = (report.get("settings") or {}).get("confidence") or 0.95
    return f"{conf * 100:.0f}% CI"


def _pad_top(ax, tops: list[float]) -> None:
    finite = [t for t in tops if not math.isnan(t)]
    if finite:
        ax.set_ylim(0, max(finite) * 1.12 + 1e-9)


def _kind_legend(report: dict, styles: dict, names: list[str]) -> list:
    """One legend patch per kind present (baseline / reference / fine-tuned)."""
    from matplotlib.patches import Patch

    kind_of, seen, handles = kinds(report), set(), []
    for n in names:
        kind = kind_of.get(n, "finetuned")
        if kind not in seen:
            seen.add(kind)
            st = styles[n]
            label = {"finetuned": "fine-tuned"}.get(kind, kind)
            handles.append(
                Patch(facecolor=st["color"], hatch=st["hatch"], edgecolor=st["edgecolor"], label=label)
            )
    return handles


@figure("Primary metric per slice and system", lambda r: bool(r.get("summary")))
def slice_bars(report: dict, metric: str | None = None):
    """Grouped bars: one group per slice, one bar per system, with CI error bars."""
    metric = metric or primary(report)
    idx, styles = summary_index(report), _styles(report)
    slices = [s for s in slice_names(report) if any(k[1] == s and k[2] == metric for k in idx)]
    names = [n for n in system_names(report) if any((n, s, metric) in idx for s in slices)]
    if not names:
        return _empty(f"{metric} per slice", "no results")
    width = 0.8 / len(names)
    fig = _figure(min(14.0, max(6.0, 0.35 * len(names) * len(slices) + 3.0)), 4.5)
    ax = fig.add_subplot()
    tops = []
    for j, n in enumerate(names):
        means, err = _err([idx.get((n, s, metric)) for s in slices])
        xs = [i - 0.4 + width * (j + 0.5) for i in range(len(slices))]
        st = styles[n]
        ax.bar(
            xs,
            means,
            width,
            label=n,
            color=st["color"],
            hatch=st["hatch"],
            edgecolor=st["edgecolor"],
            linewidth=0.6,
            yerr=err,
            capsize=2,
            error_kw={"linewidth": 0.8},
        )
        tops += [m + e for m, e in zip(means, err[1])]
    sizes = (report.get("eval") or {}).get("slices") or {}
    ax.set_xticks(range(len(slices)))
    ax.set_xticklabels([f"{s}\n(n={sizes[s]})" if s in sizes else s for s in slices], fontsize=9)
    ax.set_ylabel(metric)
    _pad_top(ax, tops)
    ax.set_title(f"{metric} per slice, {_ci_label(report)}")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncol=min(len(names), 4), loc="upper center", bbox_to_anchor=(0.5, -0.15))
    return fig


def heatmap_data(report: dict, metric: str | None = None, against: str | None = None):
    """(rows, slices, deltas, marks) of each system's per-slice delta vs ``against``.

    Deltas come from ``comparisons`` (a - b, b == against; a reversed pair is negated), falling back
    to the difference of summary means (no significance mark) when no comparison is stored."""
    metric, against = metric or primary(report), against or baseline_name(report)
    idx, alpha = summary_index(report), _alpha(report)
    comps = {
        (c["a"], c["b"], c["slice"]): c for c in report.get("comparisons") or [] if c["metric"] == metric
    }
    rows = [n for n in system_names(report) if n != against]
    slices = [s for s in slice_names(report) if (against, s, metric) in idx or any(k[2] == s for k in comps)]
    deltas, marks = [], []
    for n in rows:
        drow, mrow = [], []
        for s in slices:
            d, mark = _delta(comps, idx, n, against, s, metric, alpha)
            drow.append(d)
            mrow.append(mark)
        deltas.append(drow)
        marks.append(mrow)
    keep = [i for i, d in enumerate(deltas) if any(v is not None for v in d)]
    return [rows[i] for i in keep], slices, [deltas[i] for i in keep], [marks[i] for i in keep]


def _delta(comps, idx, a, b, s, metric, alpha) -> tuple[float | None, str]:
    c = comps.get((a, b, s))
    if c is not None and _num(c.get("diff")) is not None:
        return float(c["diff"]), significance_mark(c.get("p_holm"), alpha)
    c = comps.get((b, a, s))
    if c is not None and _num(c.get("diff")) is not None:
        return -float(c["diff"]), significance_mark(c.get("p_holm"), alpha)
    ra, rb = idx.get((a, s, metric)), idx.get((b, s, metric))
    ma, mb = (_num(ra.get("mean")) if ra else None), (_num(rb.get("mean")) if rb else None)
    return (ma - mb if ma is not None and mb is not None else None), ""


@figure("Per-slice difference from the baseline", lambda r: bool(heatmap_data(r)[0]))
def delta_heatmap(report: dict, metric: str | None = None, against: str | None = None):
    """Per-slice delta vs the baseline (rows systems, columns slices), diverging colours centred at 0."""
    import numpy as np
    from matplotlib.colors import Normalize

    metric, against = metric or primary(report), against or baseline_name(report)
    rows, slices, deltas, marks = heatmap_data(report, metric, against)
    if not rows or not slices:
        return _empty(f"Δ {metric} vs {against}", "no system to compare")
    arr = np.array([[math.nan if v is None else v for v in r] for r in deltas], dtype=float)
    lim = float(np.nanmax(np.abs(arr))) if np.isfinite(arr).any() else 0.0
    lim = lim if lim > 0 else 1e-3
    fig = _figure(max(5.0, 1.2 * len(slices) + 3.0), max(2.5, 0.5 * len(rows) + 1.6))
    ax = fig.add_subplot()
    im = ax.imshow(np.ma.masked_invalid(arr), cmap="RdBu", norm=Normalize(-lim, lim), aspect="auto")
    for i in range(len(rows)):
        for j in range(len(slices)):
            v = arr[i, j]
            text = "–" if math.isnan(v) else f"{v:+.3f}{marks[i][j]}"
            dark = not math.isnan(v) and abs(v) > 0.6 * lim
            ax.text(j, i, text, ha="center", va="center", fontsize=9, color="white" if dark else "black")
    ax.set_xticks(range(len(slices)))
    ax.set_xticklabels(slices)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(rows, fontsize=9)
    fig.colorbar(im, ax=ax, label=f"Δ {metric}")
    alpha = _alpha(report)
    ax.set_title(f"Δ {metric} vs {against}  (Holm p: * <{alpha:g}, ** <0.01, *** <0.001)", fontsize=10)
    return fig


def cost_points(report: dict, metric: str | None = None, cost: str = "train_wall_s") -> list[tuple]:
    """[(system, cost, mean, ci_low, ci_high)] on slice ``all`` for systems with that cost."""
    metric, idx = metric or primary(report), summary_index(report)
    out = []
    for row in report.get("cost") or []:
        x, q = _num(row.get(cost)), idx.get((row["system"], "all", metric))
        if x is None or q is None or _num(q.get("mean")) is None:
            continue
        out.append((row["system"], x, float(q["mean"]), _num(q.get("ci_low")), _num(q.get("ci_high"))))
    return out


def pareto_front(points: list[tuple]) -> list[tuple]:
    """Points not dominated by one at most as costly and strictly better (cost ascending)."""
    front, best = [], -math.inf
    for p in sorted(points, key=lambda p: (p[1], -p[2])):
        if p[2] > best:
            front.append(p)
            best = p[2]
    return front


@figure("Quality against training cost, with the Pareto front", lambda r: bool(cost_points(r)))
def quality_vs_cost(report: dict, metric: str | None = None, cost: str = "train_wall_s"):
    """Quality (slice all) vs a cost column, log x when the spread exceeds 10x, Pareto front drawn."""
    metric = metric or primary(report)
    pts, styles = cost_points(report, metric, cost), _styles(report)
    xlabel = COST_LABELS.get(cost, cost)
    if not pts:
        return _empty(f"{metric} vs {xlabel}", f"no system has a {cost} value")
    fig = _figure(6.5, 4.5)
    ax = fig.add_subplot()
    for name, x, m, lo, hi in pts:
        err = [[m - lo if lo is not None else 0.0], [hi - m if hi is not None else 0.0]]
        ax.errorbar(
            [x],
            [m],
            yerr=err,
            fmt="o",
            color=styles.get(name, {}).get("color", "C0"),
            markeredgecolor="black",
            markersize=8,
            capsize=3,
            linewidth=1,
        )
        ax.annotate(name, (x, m), xytext=(6, 4), textcoords="offset points", fontsize=8)
    front = pareto_front(pts)
    if len(front) > 1:
        ax.step(
            [p[1] for p in front],
            [p[2] for p in front],
            where="post",
            color="#444444",
            linestyle="--",
            linewidth=1,
            label="Pareto front",
        )
    else:
        ax.plot(
            [p[1] for p in front],
            [p[2] for p in front],
            "s",
            mfc="none",
            color="#444444",
            markersize=14,
            label="Pareto front",
        )
    xs = [p[1] for p in pts]
    if min(xs) > 0 and max(xs) / min(xs) > 10:
        ax.set_xscale("log")
    ax.margins(x=0.15, y=0.15)
    ax.set_xlabel(xlabel + (" (log scale)" if ax.get_xscale() == "log" else ""))
    ax.set_ylabel(f"{metric} (all)")
    ax.set_title(f"{metric} vs {xlabel}")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    return fig


def paired_counts(a: list[float], b: list[float], tol: float = 1e-12) -> tuple[int, int, int]:
    """(wins, losses, ties) of ``a`` over ``b`` per query."""
    wins = sum(1 for x, y in zip(a, b) if x - y > tol)
    losses = sum(1 for x, y in zip(a, b) if y - x > tol)
    return wins, losses, len(a) - wins - losses


def _paired_values(report: dict) -> tuple[str, str, str, list[float], list[float]] | None:
    spec = report.get("paired_scatter")
    if not spec:
        return None
    per_query = report.get("per_query") or {}
    a, b, metric = spec["a"], spec["b"], spec.get("metric") or primary(report)
    va, vb = (per_query.get(a) or {}).get(metric), (per_query.get(b) or {}).get(metric)
    if not va or not vb:
        return None
    pairs = [(x, y) for x, y in zip(va, vb) if _num(x) is not None and _num(y) is not None]
    return a, b, metric, [p[0] for p in pairs], [p[1] for p in pairs]


@figure("Per-query scores of the two leading configurations", lambda r: _paired_values(r) is not None)
def paired_scatter(report: dict):
    """Per-query scores of ``paired_scatter.a`` (x) vs ``.b`` (y) with the diagonal; None if absent."""
    data = _paired_values(report)
    if data is None:
        return None
    a, b, metric, va, vb = data
    wins, losses, ties = paired_counts(va, vb)
    fig = _figure(5.2, 5.0)
    ax = fig.add_subplot()
    ax.scatter(va, vb, s=14, alpha=0.5, color="#1f77b4", edgecolors="none")
    top = max([1.0, *va, *vb])
    ax.plot([0, top], [0, top], color="#888888", linestyle="--", linewidth=1)
    ax.set_xlim(-0.02 * top, top * 1.02)
    ax.set_ylim(-0.02 * top, top * 1.02)
    ax.set_aspect("equal")
    ax.set_xlabel(f"{a}  ({metric} per query)")
    ax.set_ylabel(f"{b}  ({metric} per query)")
    ax.set_title(
        f"{a} vs {b}, {len(va)} queries\n{a} better: {wins}, {b} better: {losses}, ties: {ties}", fontsize=10
    )
    ax.grid(alpha=0.3)
    return fig


def dev_series(report: dict) -> dict[str, dict[str, list[dict]]]:
    """System -> seed -> dev points (sorted by step), without the ``monitor`` key or empty seeds."""
    hist = report.get("dev_history") or {}
    out = {}
    for name, seeds in hist.items():
        if name == "monitor" or not isinstance(seeds, dict):
            continue
        kept = {str(s): sorted(pts, key=lambda p: p.get("step", 0)) for s, pts in seeds.items() if pts}
        if kept:
            out[name] = kept
    return out


@figure("Dev metric during training, one line per seed", lambda r: bool(dev_series(r)))
def dev_curves(report: dict):
    """Dev metric vs step, one colour per system, one line per seed."""
    series = dev_series(report)
    monitor = str((report.get("dev_history") or {}).get("monitor") or "dev metric")
    if not series:
        return _empty(f"{monitor} during training", "no dev history")
    styles = _styles(report)
    fig = _figure(7.0, 4.3)
    ax = fig.add_subplot()
    for k, (name, seeds) in enumerate(series.items()):
        color = styles.get(name, {}).get("color") or FINETUNED_COLORS[k % len(FINETUNED_COLORS)]
        for j, pts in enumerate(seeds.values()):
            style = SEED_LINESTYLES[j % len(SEED_LINESTYLES)]
            xs, ys = [p.get("step", p.get("epoch")) for p in pts], [p["value"] for p in pts]
            ax.plot(
                xs,
                ys,
                marker="o",
                markersize=3,
                color=color,
                linestyle=style,
                alpha=0.85,
                linewidth=1.2,
                label=f"{name} ({len(seeds)} seed{'s' if len(seeds) > 1 else ''})" if j == 0 else None,
            )
    ax.set_xlabel("step")
    ax.set_ylabel(monitor)
    ax.set_title(f"{monitor} per evaluation (one line per seed, seeds by line style)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2 if len(series) > 4 else 1)
    return fig


# ---------------------------------------------------------------------------- saving

FIGURES = tuple(REGISTRY)  # every figure's name, in report order


def available(report: dict) -> list[str]:
    """Names of the figures that have something to show for this report."""
    return [name for name, spec in REGISTRY.items() if spec.shows(report)]


def save_figures(report: dict, out_dir: str | Path) -> dict[str, str]:
    """Write ``fig_<name>.png`` for each available figure; returns {name: file name}."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in available(report):
        fig = REGISTRY[name].draw(report)
        if fig is None:
            continue
        filename = f"fig_{name}.png"
        with atomic_path(out_dir / filename) as tmp:
            fig.savefig(tmp, dpi=DPI, format="png")
        fig.clear()
        written[name] = filename
    return written
