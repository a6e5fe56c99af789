"""Figures and markdown / HTML rendering of the comparison report (from the report dict alone)."""

from __future__ import annotations

import copy
import html as _html
import re

import pytest
from matplotlib.figure import Figure

from embexp.report import figures as F
from embexp.report import render

from sample_report import sample_report

FIGURE_FUNCS = [F.metric_bars, F.slice_bars, F.delta_heatmap, F.quality_vs_cost, F.dev_curves]


def _p(v: float) -> str:
    return "<1e-4" if v < 1e-4 else f"{v:.4f}"


def _no_cost(r: dict) -> dict:
    r["cost"] = [{k: (None if k != "system" else v) for k, v in row.items()} for row in r["cost"]]
    return r


def _no_dev(r: dict) -> dict:
    r.pop("dev_history")
    return r


def _empty_lists(r: dict) -> dict:
    r.update(regressions=[], recovery=[], cost=[], warnings=[], caveats=[], paired_scatter=None)
    return r


VARIANTS = {
    "one system": lambda: sample_report(n_systems=1),
    "two systems": lambda: sample_report(n_systems=2, n_seeds=1),
    "single seed": lambda: sample_report(n_seeds=1),
    "no cost": lambda: _no_cost(sample_report()),
    "no dev history": lambda: _no_dev(sample_report()),
    "empty lists": lambda: _empty_lists(sample_report()),
    "many systems": lambda: sample_report(n_systems=11, n_seeds=2, n_queries=40),
}
DRAWN = {"one system", "many systems"}  # the sample itself is drawn by write_report


@pytest.fixture(scope="module")
def report() -> dict:
    return sample_report()


@pytest.fixture(scope="module")
def written(report, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return out, render.write_report(report, out)


# ---------------------------------------------------------------------------- figures


def test_every_figure_for_the_sample(report):
    for fn in [*FIGURE_FUNCS, F.paired_scatter]:
        fig = fn(report)
        assert isinstance(fig, Figure), fn.__name__
    assert F.available(report) == list(F.FIGURES)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_figures_cope_with_degenerate_reports(variant):
    r = VARIANTS[variant]()
    for fn in FIGURE_FUNCS:
        fig = fn(r)
        assert isinstance(fig, Figure), fn.__name__
        if variant in DRAWN:
            fig.set_dpi(30)
            fig.canvas.draw()  # layout and text problems only show when drawn
    scatter = F.paired_scatter(r)
    assert (scatter is None) == (r.get("paired_scatter") is None)


def test_paired_scatter_counts_and_none(report):
    spec = report["paired_scatter"]
    a, b = report["per_query"][spec["a"]][spec["metric"]], report["per_query"][spec["b"]][spec["metric"]]
    wins, losses, ties = F.paired_counts(a, b)
    assert wins + losses + ties == len(report["query_ids"])
    title = F.paired_scatter(report).axes[0].get_title()
    assert f"better: {wins}" in title and f"better: {losses}" in title and f"ties: {ties}" in title
    assert F.paired_scatter({**report, "paired_scatter": None}) is None


def test_delta_heatmap_marks_follow_holm_p(report):
    rows, slices, deltas, marks = F.heatmap_data(report)
    base = report["settings"]["baseline"]
    assert base not in rows and rows
    comps = {
        (c["a"], c["slice"]): c for c in report["comparisons"] if c["b"] == base and c["metric"] == "ndcg@10"
    }
    for i, name in enumerate(rows):
        for j, s in enumerate(slices):
            c = comps[(name, s)]
            assert deltas[i][j] == pytest.approx(c["diff"])
            assert marks[i][j] == F.significance_mark(c["p_holm"], 0.05)
    assert [F.significance_mark(p) for p in (0.2, 0.04, 0.005, 0.0001, None)] == ["", "*", "**", "***", ""]


def test_pareto_front_and_log_axis(report):
    pts = [("a", 10.0, 0.5, None, None), ("b", 20.0, 0.4, None, None), ("c", 500.0, 0.6, None, None)]
    assert [p[0] for p in F.pareto_front(pts)] == ["a", "c"]
    ax = F.quality_vs_cost(report).axes[0]  # 45 s .. 1850 s: more than 10x
    assert ax.get_xscale() == "log"
    assert "Pareto front" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_save_figures_skips_what_is_missing(tmp_path):
    r = _no_dev(_empty_lists(sample_report(n_systems=1)))
    saved = F.save_figures(r, tmp_path)
    assert set(saved) == {"metric_bars", "slice_bars"}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(saved.values())


# ---------------------------------------------------------------------------- files


def test_write_report_writes_the_four_kinds_of_file(written):
    out, paths = written
    for key in ("json", "md", "html"):
        assert (out / f"report.{key}").is_file() and paths[key] == str(out / f"report.{key}")
    assert set(paths["figures"]) == set(F.FIGURES)
    for name, filename in paths["figures"].items():
        assert filename == f"fig_{name}.png"
        assert (out / filename).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob(".*tmp*"))  # atomic writes leave no temp files


def test_html_is_self_contained_and_complete(written, report):
    out, paths = written
    doc = (out / "report.html").read_text(encoding="utf-8")
    assert doc.startswith("<!DOCTYPE html>") and "<style>" in doc
    assert 'src="fig_' not in doc and not re.search(r"""(src|href)=["']?https?:""", doc)
    assert "<link" not in doc and "<script" not in doc
    assert doc.count('src="data:image/png;base64,') == len(paths["figures"])
    for system in report["systems"]:
        assert _html.escape(system["name"]) in doc
    for row in report["summary"]:
        assert f"{row['mean']:.4f}" in doc
    assert "<strong>lora</strong>" in doc and "<code>ndcg@10</code>" in doc
    assert "&lt;5%" in doc and "&lt;b&gt;rough&lt;/b&gt;" in doc  # the rest is escaped


def test_markdown_has_every_number(written, report):
    out, paths = written
    md = (out / "report.md").read_text(encoding="utf-8")
    assert md.startswith(f"# {report['title']}")
    for row in report["summary"]:
        for key in ("mean", "ci_low", "ci_high"):
            assert f"{row[key]:.4f}" in md, (row, key)
    for c in report["comparisons"]:
        assert _p(c["p_holm"]) in md
    assert "<1e-4" in md
    for filename in paths["figures"].values():
        assert f"]({filename})" in md
    for section in ("## Results", "## Comparisons", "## Recovery", "## Per-slice regressions", "## Cost"):
        assert section in md
    assert "## Warnings" in md and report["warnings"][0] in md
    assert "22,713,216" in md  # params with thousands separators


def test_markdown_tables_are_pipe_tables(report):
    md = render.markdown(report, {})
    tables = [block for block in md.split("\n\n") if block.startswith("| ")]
    assert tables
    for t in tables:
        lines = [ln for ln in t.splitlines() if ln.startswith("|")]
        widths = {len(re.findall(r"(?<!\\)\|", ln)) for ln in lines}
        assert len(widths) == 1, t  # every row has as many cells as the header
        assert re.fullmatch(r"\|( :?---:? \|)+", lines[1])
    assert "![" not in md  # no figures given, none referenced


def test_flags_and_missing_values():
    r = sample_report(n_seeds=1)
    r["summary"][0]["ci_low"] = None
    r["comparisons"][0]["p_holm"] = None
    md = render.markdown(r, {})
    assert "1 seed: query-bootstrap CI" in md and "¹" in md
    assert "[–, " in md
    assert "| None" not in md and "None |" not in md and "nan" not in md


def test_no_regressions_says_so(report):
    r = copy.deepcopy(report)
    r["regressions"] = []
    assert "None significant after Holm correction." in render.markdown(r, {})
    assert r is not report and report["regressions"], "the sample has a tail regression"


def test_degenerate_report_writes_and_stale_figures_go(written, tmp_path):
    out, paths = written
    r = _no_dev(_empty_lists(sample_report(n_systems=1)))
    tmp = tmp_path / "rep"
    tmp.mkdir()
    (tmp / "fig_dev_curves.png").write_bytes((out / "fig_dev_curves.png").read_bytes())  # an earlier report's
    res = render.write_report(r, tmp)
    assert set(res["figures"]) == {"metric_bars", "slice_bars"}
    assert sorted(p.name for p in tmp.glob("fig_*.png")) == sorted(res["figures"].values())
    doc = (tmp / "report.html").read_text(encoding="utf-8")
    assert doc.count("data:image/png;base64,") == 2


def test_load_report_round_trips(written, report):
    out, paths = written
    assert render.load_report(out) == report
    assert render.load_report(paths["json"]) == report


def test_number_formats():
    assert render.fmt_metric(0.123456) == "0.1235"
    assert render.fmt_diff(0.0123) == "+0.0123" and render.fmt_diff(-0.5) == "-0.5000"
    assert render.fmt_p(0.00123) == "0.0012" and render.fmt_p(3e-6) == "<1e-4"
    assert render.fmt_pct(0.873) == "87.3%"
    assert render.fmt_int(1234567) == "1,234,567"
    assert render.fmt_seconds(3.5) == "3.50 s" and render.fmt_seconds(125) == "2m 05s"
    assert render.fmt_seconds(7380) == "2h 03m"
    assert {render.fmt_metric(None), render.fmt_p(float("nan")), render.fmt_int(None)} == {"–"}
    assert render.inline_md("a **b** `<c>` <d>") == "a <strong>b</strong> <code>&lt;c&gt;</code> &lt;d&gt;"
