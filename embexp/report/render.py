"""Markdown and self-contained HTML renderings of a comparison report (from the report dict).

Both renderers walk the same list of blocks (headings, paragraphs, lists, tables, figures) built by
:func:`blocks`, so ``report.md`` and ``report.html`` always carry the same content.
"""

from __future__ import annotations

import base64
import html as _html
import json
import math
import re
from pathlib import Path
from typing import Any

from embexp.report import figures as F
from embexp.utils.io import atomic_write_text, read_json

REPORT_MODE = 0o644  # reports are for everyone to read
DASH = "–"
SUPERSCRIPTS = "⁰¹²³⁴⁵⁶⁷⁸⁹"


def _alt(name: str) -> str:
    spec = F.REGISTRY.get(name)
    return spec.alt if spec is not None else name


# ---------------------------------------------------------------------------- number formatting


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def fmt_metric(v: Any) -> str:
    return DASH if _missing(v) else f"{v:.4f}"


def fmt_diff(v: Any) -> str:
    return DASH if _missing(v) else f"{v:+.4f}"


def fmt_p(v: Any) -> str:
    if _missing(v):
        return DASH
    return "<1e-4" if v < 1e-4 else f"{v:.4f}"


def fmt_pct(v: Any) -> str:
    return DASH if _missing(v) else f"{v * 100:.1f}%"


def fmt_int(v: Any) -> str:
    return DASH if _missing(v) else f"{int(v):,}"


def fmt_float(v: Any, digits: int = 1) -> str:
    return DASH if _missing(v) else f"{v:,.{digits}f}"


def fmt_seconds(v: Any) -> str:
    """``0.42 s``, ``12.3 s``, ``4m 05s``, ``2h 03m``."""
    if _missing(v):
        return DASH
    if v < 10:
        return f"{v:.2f} s"
    if v < 60:
        return f"{v:.1f} s"
    if v < 3600:
        return f"{int(v // 60)}m {int(round(v % 60)):02d}s"
    return f"{int(v // 3600)}h {int(round(v % 3600 / 60)):02d}m"


def fmt_interval(fmt, low: Any, high: Any) -> str:
    return f"[{fmt(low)}, {fmt(high)}]"


def _sup(n: int) -> str:
    return "".join(SUPERSCRIPTS[int(c)] for c in str(n))


# ---------------------------------------------------------------------------- content blocks
# ("h", level, text) | ("p", md text) | ("ul", [md text]) | ("table", headers, rows, aligns, notes)
# | ("fig", name, filename)


def _table(headers: list[str], rows: list[list[str]], aligns: str, notes: list[str] | None = None) -> tuple:
    return ("table", headers, rows, aligns, notes or [])


def _fig(name: str, figures: dict[str, str]) -> list[tuple]:
    return [("fig", name, figures[name])] if name in figures else []


def _setup_line(report: dict) -> str:
    ev, code = report.get("eval") or {}, report.get("code") or {}
    commit = code.get("git_commit")
    version = f"embexp {code.get('embexp', DASH)}" + (f" (`{commit[:10]}`)" if commit else "")
    return (
        f"**Eval:** {ev.get('dataset', DASH)} / {ev.get('split', DASH)}, "
        f"{fmt_int(ev.get('n_queries'))} queries, "
        f"base model `{ev.get('base_model', DASH)}` · **Machine:** {report.get('machine') or DASH} · "
        f"{version} · created {report.get('created') or DASH}"
    )


def _intro(report: dict) -> list[tuple]:
    out = [("h", 1, report.get("title") or "Fine-tuning comparison"), ("p", _setup_line(report))]
    out += [("h", 2, "Verdict"), ("p", report.get("verdict") or "No verdict.")]
    if report.get("caveats"):
        out += [("p", "**Caveats**"), ("ul", list(report["caveats"]))]
    return out


def _config_text(cfg: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in (cfg or {}).items()) or DASH


def _systems(report: dict) -> list[tuple]:
    rows = [
        [
            s["name"],
            s.get("kind", DASH),
            s.get("label") or DASH,
            str(s.get("n_seeds", DASH)),
            _config_text(s.get("config")),
        ]
        for s in report.get("systems") or []
    ]
    if not rows:
        return []
    return [("h", 2, "Systems"), _table(["system", "kind", "label", "seeds", "config"], rows, "lllrl")]


def _metrics(report: dict) -> list[str]:
    settings = report.get("settings") or {}
    metrics = list(settings.get("metrics") or [])
    for row in report.get("summary") or []:
        if row["metric"] not in metrics:
            metrics.append(row["metric"])
    return metrics


def _slice_header(report: dict, s: str) -> str:
    n = ((report.get("eval") or {}).get("slices") or {}).get(s)
    return f"{s} (n={n})" if n is not None else s


def _mean_ci(r: dict) -> str:
    return f"{fmt_metric(r.get('mean'))} {fmt_interval(fmt_metric, r.get('ci_low'), r.get('ci_high'))}"


def _results_table(report: dict, metric: str, flags: dict[str, int]) -> tuple:
    idx, slices = F.summary_index(report), F.slice_names(report)
    slices = [s for s in slices if any((n, s, metric) in idx for n in F.system_names(report))]
    rows, used = [], set()
    for name in F.system_names(report):
        if not any((name, s, metric) in idx for s in slices):
            continue
        cells = [name]
        for s in slices:
            r = idx.get((name, s, metric))
            cell = DASH if r is None else _mean_ci(r)
            if r is not None and r.get("flag"):
                k = flags.setdefault(r["flag"], len(flags) + 1)
                used.add(k)
                cell += _sup(k)
            cells.append(cell)
        rows.append(cells)
    notes = [f"{_sup(k)} {flag}" for flag, k in flags.items() if k in used]
    return _table(
        ["system"] + [_slice_header(report, s) for s in slices], rows, "l" + "r" * len(slices), notes
    )


def _results(report: dict, figures: dict[str, str]) -> list[tuple]:
    settings = report.get("settings") or {}
    conf = settings.get("confidence") or 0.95
    methods = sorted({r.get("ci_method") for r in report.get("summary") or [] if r.get("ci_method")})
    out = [("h", 2, "Results")]
    out.append(
        (
            "p",
            f"Mean over seeds with its {conf * 100:.0f}% confidence interval `mean [low, high]`"
            + (f" (CI: {', '.join(methods)})" if methods else "")
            + ".",
        )
    )
    if not report.get("summary"):
        return out + [("p", "No results.")]
    flags: dict[str, int] = {}
    for metric in _metrics(report):
        out += [("h", 3, metric), _results_table(report, metric, flags)]
    return out + _fig("metric_bars", figures) + _fig("slice_bars", figures)


def _comparison_rows(comps: list[dict]) -> list[list[str]]:
    return [
        [
            c["a"],
            c["b"],
            c["slice"],
            c["metric"],
            fmt_metric(c.get("mean_a")),
            fmt_metric(c.get("mean_b")),
            f"{fmt_diff(c.get('diff'))} {fmt_interval(fmt_diff, c.get('ci_low'), c.get('ci_high'))}",
            fmt_p(c.get("p")),
            fmt_p(c.get("p_holm")),
            "✓" if c.get("significant") else "",
        ]
        for c in comps
    ]


COMPARISON_HEADERS = [
    "a",
    "b",
    "slice",
    "metric",
    "mean a",
    "mean b",
    "diff a − b [CI]",
    "p",
    "Holm p",
    "sig.",
]


def _comparisons(report: dict, figures: dict[str, str]) -> list[tuple]:
    comps, base = report.get("comparisons") or [], F.baseline_name(report)
    alpha = (report.get("settings") or {}).get("alpha") or 0.05
    out = [("h", 2, "Comparisons")]
    out.append(
        (
            "p",
            "Paired on the same queries (per-query values averaged over seeds); diff = a − b; p from a "
            "sign-flip randomization test, CI from a paired bootstrap. Holm's correction runs within each "
            "family: the configurations (against the base model and each other) and the references (BM25, "
            f"hybrids); ✓ = significant at α = {alpha:g}.",
        )
    )
    if not comps:
        return out + [("p", "No comparisons.")]
    refs = [c for c in comps if c.get("family") == "references"]
    own = [c for c in comps if c.get("family") != "references"]
    groups = [
        (f"vs {base}", [c for c in own if c["b"] == base]),
        ("Between configurations", [c for c in own if c["b"] != base]),
        ("Against what to try first: BM25 and hybrid (RRF) references", refs),
    ]
    for title, rows in groups:
        if rows:
            out += [("h", 3, title), _table(COMPARISON_HEADERS, _comparison_rows(rows), "llllrrrrrc")]
    return out + _fig("delta_heatmap", figures) + _fig("paired_scatter", figures)


def _recovery(report: dict) -> list[tuple]:
    rec = report.get("recovery") or []
    if not rec:
        return []
    rows = [
        [
            r["cheaper"],
            r["full"],
            r["slice"],
            r["metric"],
            fmt_diff(r.get("gain_cheaper")),
            fmt_diff(r.get("gain_full")),
            f"{fmt_pct(r.get('ratio'))} {fmt_interval(fmt_pct, r.get('ci_low'), r.get('ci_high'))}",
            "yes" if r.get("stable") else "no",
        ]
        for r in rec
    ]
    headers = ["cheaper", "full", "slice", "metric", "gain cheaper", "gain full", "recovered [CI]", "stable"]
    intro = (
        "Share of the full fine-tune's gain recovered: (cheaper − baseline) / (full − baseline). "
        "Unstable when the full fine-tune's gain is too small for the ratio to mean much."
    )
    return [("h", 2, "Recovery"), ("p", intro), _table(headers, rows, "llllrrrl")]


def _regressions(report: dict) -> list[tuple]:
    regs = report.get("regressions") or []
    out = [("h", 2, "Per-slice regressions")]
    if not regs:
        return out + [("p", "None significant after Holm correction.")]
    rows = [
        [
            r["system"],
            r.get("against", DASH),
            r["slice"],
            r["metric"],
            f"{fmt_diff(r.get('diff'))} {fmt_interval(fmt_diff, r.get('ci_low'), r.get('ci_high'))}",
            fmt_p(r.get("p_holm")),
        ]
        for r in regs
    ]
    headers = ["system", "worse than", "slice", "metric", "diff [CI]", "Holm p"]
    return out + [_table(headers, rows, "llllrr")]


def _memory(row: dict) -> str:
    v = fmt_float(row.get("peak_memory_mb"))
    return f"{v} ({row['memory_kind']})" if v != DASH and row.get("memory_kind") else v


def _cost(report: dict, figures: dict[str, str]) -> list[tuple]:
    cost = report.get("cost") or []
    out = [("h", 2, "Cost"), ("p", f"Measured on {report.get('machine') or 'an unrecorded machine'}.")]
    if not cost:
        return out + [("p", "No cost numbers.")] + _fig("quality_vs_cost", figures)
    rows = [
        [
            r["system"],
            fmt_int(r.get("trainable_params")),
            fmt_float(r.get("model_size_mb")),
            _memory(r),
            fmt_seconds(r.get("train_wall_s")),
            fmt_float(r.get("pairs_per_s")),
            fmt_int(r.get("train_steps")),
            fmt_seconds(r.get("reembed_corpus_s")),
            fmt_float(r.get("latency_p50_ms"), 2),
            fmt_float(r.get("latency_p95_ms"), 2),
        ]
        for r in cost
    ]
    headers = [
        "system",
        "trainable params",
        "model size (MB)",
        "peak memory (MB)",
        "train wall time",
        "pairs/s",
        "train steps",
        "re-embed corpus",
        "latency p50 (ms)",
        "latency p95 (ms)",
    ]
    return out + [_table(headers, rows, "l" + "r" * 9)] + _fig("quality_vs_cost", figures)


def _training(figures: dict[str, str]) -> list[tuple]:
    fig = _fig("dev_curves", figures)
    return [("h", 2, "Training curves")] + fig if fig else []


def _warnings(report: dict) -> list[tuple]:
    warns = report.get("warnings") or []
    return [("h", 2, "Warnings"), ("ul", list(warns)) if warns else ("p", "None.")]


def blocks(report: dict, figures: dict[str, str]) -> list[tuple]:
    """The report's content as renderer-neutral blocks."""
    figures = figures or {}
    return (
        _intro(report)
        + _systems(report)
        + _results(report, figures)
        + _comparisons(report, figures)
        + _recovery(report)
        + _regressions(report)
        + _cost(report, figures)
        + _training(figures)
        + _warnings(report)
    )


# ---------------------------------------------------------------------------- markdown


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(headers, rows, aligns, notes) -> str:
    sep = {"l": "---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(_md_cell(h) for h in headers) + " |"]
    lines.append("| " + " | ".join(sep[a] for a in aligns) + " |")
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    text = "\n".join(lines)
    return text + ("\n\n" + "  \n".join(notes) if notes else "")


def _md_block(block: tuple) -> str:
    kind = block[0]
    if kind == "h":
        return "#" * block[1] + " " + block[2]
    if kind == "p":
        return block[1]
    if kind == "ul":
        return "\n".join(f"- {item}" for item in block[1])
    if kind == "table":
        return _md_table(*block[1:])
    if kind == "fig":
        return f"![{_alt(block[1])}]({block[2]})"
    raise ValueError(f"unknown block {kind!r}")


def markdown(report: dict, figures: dict[str, str]) -> str:
    """GitHub-flavoured markdown (pipe tables, figures as ``![...](fig_x.png)`` beside the file)."""
    return "\n\n".join(_md_block(b) for b in blocks(report, figures)) + "\n"


# ---------------------------------------------------------------------------- html

CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;max-width:1200px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{border-bottom:2px solid #ddd;padding-bottom:.3em}h2{border-bottom:1px solid #eee;margin-top:1.8em}
table{border-collapse:collapse;margin:.8em 0;font-size:.88em}
th,td{border:1px solid #d0d7de;padding:.3em .6em;white-space:nowrap}th{background:#f3f5f7}
td.r,th.r{text-align:right;font-variant-numeric:tabular-nums}td.c,th.c{text-align:center}
tr:nth-child(even) td{background:#fafbfc}code{background:#f0f0f0;padding:0 .25em;border-radius:3px}
figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}.notes{font-size:.85em;color:#555}.scroll{overflow-x:auto}
"""


def inline_md(text: str) -> str:
    """Escape ``text`` for HTML, turning ``**bold**`` and ```code``` into tags (nothing else)."""
    parts = re.split(r"(`[^`]+`)", str(text))
    out = []
    for part in parts:
        if len(part) > 1 and part.startswith("`") and part.endswith("`"):
            out.append(f"<code>{_html.escape(part[1:-1])}</code>")
        else:
            out.append(re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", _html.escape(part)))
    return "".join(out)


def _html_table(headers, rows, aligns, notes) -> str:
    def cls(a: str) -> str:
        return f' class="{a}"' if a in "rc" else ""

    head = "".join(f"<th{cls(a)}>{_html.escape(str(h))}</th>" for h, a in zip(headers, aligns))
    body = "".join(
        "<tr>" + "".join(f"<td{cls(a)}>{_html.escape(str(c))}</td>" for c, a in zip(row, aligns)) + "</tr>"
        for row in rows
    )
    notes_html = "".join(f'<div class="notes">{_html.escape(n)}</div>' for n in notes)
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="scroll">{table}</div>{notes_html}'


def _data_uri(path: Path) -> str | None:
    try:
        return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    except OSError:
        return None


def _html_block(block: tuple, figures_dir: Path | None) -> str:
    kind = block[0]
    if kind == "h":
        return f"<h{block[1]}>{_html.escape(block[2])}</h{block[1]}>"
    if kind == "p":
        return f"<p>{inline_md(block[1])}</p>"
    if kind == "ul":
        return "<ul>" + "".join(f"<li>{inline_md(i)}</li>" for i in block[1]) + "</ul>"
    if kind == "table":
        return _html_table(*block[1:])
    if kind == "fig":
        uri = _data_uri(figures_dir / block[2]) if figures_dir is not None else None
        alt = _html.escape(_alt(block[1]))
        if uri is None:
            return ""
        return f'<figure><img src="{uri}" alt="{alt}"><figcaption>{alt}</figcaption></figure>'
    raise ValueError(f"unknown block {kind!r}")


def html(report: dict, figures_dir: str | Path | None) -> str:
    """One self-contained HTML document: inline CSS, figures inlined as base64 PNG data URIs."""
    figures_dir = Path(figures_dir) if figures_dir is not None else None
    figures = {}
    if figures_dir is not None:
        figures = {n: f"fig_{n}.png" for n in F.FIGURES if (figures_dir / f"fig_{n}.png").is_file()}
    body = "\n".join(b for b in (_html_block(x, figures_dir) for x in blocks(report, figures)) if b)
    title = _html.escape(report.get("title") or "Fine-tuning comparison")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


# ---------------------------------------------------------------------------- files


def write_report(report: dict, out_dir: str | Path) -> dict:
    """Write report.json, the figures, report.md and report.html into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "report.json", "md": out_dir / "report.md", "html": out_dir / "report.html"}
    text = json.dumps(report, indent=2, sort_keys=True, default=str, ensure_ascii=False) + "\n"
    atomic_write_text(paths["json"], text, mode=REPORT_MODE)
    figures = F.save_figures(report, out_dir)
    for name in set(F.FIGURES) - set(figures):  # a stale figure of an earlier report must not be inlined
        (out_dir / f"fig_{name}.png").unlink(missing_ok=True)
    atomic_write_text(paths["md"], markdown(report, figures), mode=REPORT_MODE)
    atomic_write_text(paths["html"], html(report, out_dir), mode=REPORT_MODE)
    return {**{k: str(v) for k, v in paths.items()}, "figures": figures}


def load_report(path: str | Path) -> dict:
    """The report dict from ``report.json`` or from the folder holding it."""
    path = Path(path)
    return read_json(path / "report.json" if path.is_dir() else path)
