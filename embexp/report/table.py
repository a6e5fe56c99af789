"""Rich tables of the evaluator's flat metric keys."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from embexp.eval.keys import ALL, parse_metric_key

DEFAULT_METRICS = ("ndcg@10", "recall@10", "mrr@10", "recall@100")


def _rows(metrics: dict[str, float], split: str) -> dict[str, dict[str, float]]:
    """slice (``all`` overall) -> metric -> value, for the keys of ``split``."""
    rows: dict[str, dict[str, float]] = {}
    for k, v in metrics.items():
        key = parse_metric_key(k)
        if key is not None and key.split == split:
            rows.setdefault(key.slice, {})[key.metric] = v
    return rows


def metrics_table(
    columns: dict[str, dict[str, float]], split: str, metrics=DEFAULT_METRICS, title: str | None = None
) -> Table:
    """One row per (slice, metric); one column per named result (e.g. baseline, final), plus deltas."""
    names = list(columns)
    table = Table(title=title)
    table.add_column("slice")
    table.add_column("n", justify="right")
    table.add_column("metric")
    for n in names:
        table.add_column(n, justify="right")
    if len(names) == 2:
        table.add_column("Δ", justify="right")
    per = {n: _rows(columns[n], split) for n in names}
    slices = [ALL] + sorted({s for p in per.values() for s in p if s != ALL})
    for s in slices:
        nq = next((p[s].get("n_queries") for p in per.values() if s in p), None)
        for i, m in enumerate(metrics):
            vals = [per[n].get(s, {}).get(m) for n in names]
            cells = [f"{v:.4f}" if v is not None else "-" for v in vals]
            if len(names) == 2:
                a, b = vals
                cells.append(f"{b - a:+.4f}" if a is not None and b is not None else "-")
            table.add_row(s if i == 0 else "", f"{int(nq)}" if (i == 0 and nq is not None) else "", m, *cells)
    return table


def print_table(table: Table) -> None:
    Console(width=max(100, Console().width)).print(table)
