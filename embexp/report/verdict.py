"""The verdict paragraph and its caveats, generated from the report's numbers (never typed)."""

from __future__ import annotations

SEED_CLAIM = (0.80, 0.95)  # the seed guide: "LoRA keeps 80-95% of the full fine-tune's recall gain"


def _row(rows, **match):
    return next((r for r in rows if all(r.get(k) == v for k, v in match.items())), None)


def _fmt_ci(r, key="mean") -> str:
    return f"{r[key]:.4f} [{r['ci_low']:.4f}, {r['ci_high']:.4f}]"


def _p(p) -> str:
    return "n/a" if p is None else ("<1e-4" if p < 1e-4 else f"{p:.4f}")


def _cmp_sentence(c, a: str, b: str) -> str:
    sign = "above" if c["diff"] > 0 else "below"
    if c["significant"]:
        ci = f"[{c['ci_low']:+.4f}, {c['ci_high']:+.4f}]"
        return f"**{a}** is {sign} {b} by {c['diff']:+.4f} {ci} (Holm p {_p(c['p_holm'])})"
    return (
        f"{a} vs {b}: {c['diff']:+.4f} [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}], not significant after "
        f"Holm correction (p {_p(c['p_holm'])})"
    )


def _find_cmp(comps, a, b, metric, sl="all"):
    c = _row(comps, a=a, b=b, metric=metric, slice=sl)
    if c is not None:
        return c, a, b
    c = _row(comps, a=b, b=a, metric=metric, slice=sl)
    if c is not None:
        flipped = {**c, "diff": -c["diff"], "ci_low": -c["ci_high"], "ci_high": -c["ci_low"]}
        return flipped, a, b
    return None, a, b


def verdict(report: dict) -> tuple[str, list[str]]:
    """(paragraph, caveats)."""
    st, summary, comps = report["settings"], report["summary"], report["comparisons"]
    m = st["primary"]
    fts = [s["name"] for s in report["systems"] if s["kind"] == "finetuned"]
    ranked = sorted((_row(summary, system=f, slice="all", metric=m) for f in fts), key=lambda r: -r["mean"])
    base = _row(summary, system="base model", slice="all", metric=m)
    ev = report["eval"]
    parts = [
        f"On {ev['dataset']} / {ev['split']} ({ev['n_queries']} queries, base model {ev['base_model']}),"
    ]
    if not ranked:
        return " ".join(parts + ["no fine-tuned configuration was found."]), []
    best = ranked[0]
    n = next(s["n_seeds"] for s in report["systems"] if s["name"] == best["system"])
    parts.append(f"the best configuration by {m} is **{best['system']}**: {_fmt_ci(best)} over {n} seed(s)")
    if base is not None:
        parts[-1] += f", against {base['mean']:.4f} for the base model."
        c, a, b = _find_cmp(comps, best["system"], "base model", m)
        if c is not None:
            parts.append(_cmp_sentence(c, a, b) + ".")
    for other in ranked[1:]:
        c, a, b = _find_cmp(comps, best["system"], other["system"], m)
        if c is not None:
            parts.append(_cmp_sentence(c, a, b) + ".")
    parts += _hybrid_sentences(report, best["system"], m)
    parts += _recovery_sentences(report)
    parts += _regression_sentences(report)
    return " ".join(parts), _caveats(report, ranked, m)


def _hybrid_sentences(report, best: str, m: str) -> list[str]:
    comps = report["comparisons"]
    c = _row(comps, a=best, b="hybrid: base model", metric=m, slice="all")
    if c is None:
        return []
    verb = "beats" if c["significant"] and c["diff"] > 0 else "does not beat"
    if c["significant"] and c["diff"] < 0:
        verb = "is significantly below"
    out = [
        f"Fine-tuning ({best}) {verb} the hybrid baseline (BM25 + base model, RRF): "
        + _cmp_sentence(c, best, "hybrid: base model")
        + "."
    ]
    h = _row(comps, a=f"hybrid: {best}", b="hybrid: base model", metric=m, slice="all")
    if h is not None and h["significant"] and h["diff"] > 0:
        out.append(f"Its encoder inside the hybrid adds {h['diff']:+.4f} over the base model's hybrid.")
    return out


def _recovery_sentence(r: dict, metric: str) -> str:
    if not r["stable"]:
        why = "did not gain" if r["gain_full"] <= 0 else "gained too little to tell from zero"
        return (
            f"The share of {r['full']}'s {metric} gain that {r['cheaper']} recovers is undefined: the full "
            f"fine-tune {why} ({r['gain_full']:+.4f} over the base model)."
        )
    lo, hi = SEED_CLAIM
    ci = (r["ci_low"], r["ci_high"])
    if ci[0] is None or ci[1] is None:
        return (
            f"{r['cheaper']} recovers {r['ratio']:.0%} of {r['full']}'s {metric} gain (interval undefined)."
        )
    fits = "consistent with" if ci[0] <= hi and ci[1] >= lo else ("below" if ci[1] < lo else "above")
    return (
        f"{r['cheaper']} recovers {r['ratio']:.0%} [{ci[0]:.0%}, {ci[1]:.0%}] of {r['full']}'s {metric} "
        f"gain ({fits} the seed guide's 80-95%)."
    )


def _recovery_sentences(report) -> list[str]:
    for metric in ("recall@10", "recall@100", report["settings"]["primary"]):
        rows = [r for r in report["recovery"] if r["slice"] == "all" and r["metric"] == metric]
        if rows:
            return [_recovery_sentence(r, metric) for r in rows]
    return []


def _regression_sentences(report) -> list[str]:
    m = report["settings"]["primary"]
    regs = [r for r in report["regressions"] if r["metric"] == m]
    if not regs:
        tested = sorted({c["slice"] for c in report["comparisons"]})
        return [
            f"On {m}, no configuration is significantly below the base model or the best configuration "
            f"on any tested slice ({', '.join(tested)})."
        ]
    shown = "; ".join(f"{r['system']} on {r['slice']} ({r['diff']:+.4f} vs {r['against']})" for r in regs[:6])
    more = f" and {len(regs) - 6} more" if len(regs) > 6 else ""
    return [f"Significant regressions after correction: {shown}{more}."]


def _caveats(report, ranked, m) -> list[str]:
    out = []
    seeds = {s["name"]: s["n_seeds"] for s in report["systems"] if s["kind"] == "finetuned"}
    few = sorted(n for n, k in seeds.items() if k < 3)
    if few:
        out.append(
            f"fewer than 3 seeds for {', '.join(few)}: their CIs are query-bootstrap "
            "(seed variance not included)"
        )
    if len(ranked) >= 2 and ranked[1]["ci_high"] >= ranked[0]["ci_low"]:
        out.append(f"the CIs of {ranked[0]['system']} and {ranked[1]['system']} on {m} overlap")
    small = [s for s, n in report["eval"]["slices"].items() if n < report["settings"]["min_slice_queries"]]
    if small:
        out.append(
            f"slices too small to test (< {report['settings']['min_slice_queries']} queries): "
            + ", ".join(small)
        )
    out += [w for w in report["warnings"] if "step budgets differ" in w or "slice membership" in w]
    out += [w for w in report["warnings"] if "kept the base model" in w]
    out += [w for w in report["warnings"] if w.startswith("no recovery ratio")]
    if any(k >= 2 for k in seeds.values()):
        out.append(
            "the paired tests compare seed-averaged per-query values: they say whether these trained "
            "models differ on these queries; seed-to-seed variation enters only the summary CIs"
        )
    return out
