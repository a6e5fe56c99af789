"""Synthetic help-centre knowledge base for the quickstart, written in BEIR format.

A small, deterministic stand-in for a support team's RAG index: the help centre of
"Lumio", a made-up payments company that also sells point-of-sale hardware. Articles
cover six product lines (payments/ACH and wires, cards, hardware with SKU codes,
billing/subscriptions, accounts & security, shipping & returns). The corpus is full of
near-miss pairs (ACH reversal window vs ACH return codes, card dispute vs card declined,
refund policy vs return shipping label, TX-4410-A vs TX-4410-B), and the queries are
written the way customers write: lowercase, typos, slang, unrelated context, indirect
descriptions ("the receipt printer, the bluetooth one"), SKU codes typed loosely.

What makes it hard for an off-the-shelf model, on purpose: articles use formal wording
and the long form ("returned item fee", "two-step verification"), while customers and
staff use acronyms and in-house codenames ("nsf", "2fa", "atlas card", plan code "gr2");
devices are titled by marketing name ("Lumio Counter Bluetooth") while customers type
the model code from the label ("tx4410b"); help-centre boilerplate and "Related articles"
links blur neighbouring articles. What keeps it learnable: every test query is about an
article that train queries also ask about, in other words; each jargon term and device
code appears in train queries too (for the same article or its siblings).

Zero-shot and fine-tuned scores on it: README (quickstart table) and BENCHMARKS.md.

Everything comes from ``random.Random`` seeded with ``seed``: the same seed gives
byte-identical files, a different seed gives different wording, numbers, splits and ids.
Pure standard library, no network, no model.

Layout written by :func:`generate`::

    OUT/corpus.jsonl      {"_id": "kb-0001", "title", "text", "metadata": {"product_line"}}
    OUT/queries.jsonl     {"_id": "q-00001", "text", "frequency", "slices": ["jargon"] | []}
    OUT/qrels/{train,dev,test}.tsv   query-id <TAB> corpus-id <TAB> score (header line)
    OUT/README.md

``frequency`` is how often customers ask the query (Zipf-like: a few head queries asked
thousands of times, a long tail asked once or twice). ``slices`` tags the jargon /
acronym confusion set: queries whose wording hinges on an acronym, SKU-like code or
in-house jargon ("ach reversal window", "tx4410b wont pair", "rma", "nsf fee").

Qrels: score 2 for the article a query was written for; a query that names a device
family but no variant ("my tx-4410 wont pair") is answered by every variant's article,
each with score 1. With ``graded=False`` every score is 1. Queries are split by query:
no query, and no normalised query text, is in two splits. Test and dev queries use a
phrasing (a "core") that no train query of the same article uses; train queries ask about
the same articles in other words.

CLI: ``python -m embexp.data.quickstart OUT [--seed N]``.

Content (articles, phrasing templates, product catalogue, device families, boilerplate,
customer noise) is package data: the JSON files in ``embexp/data/quickstart_content/``,
read by :func:`load_content` into the schema dataclasses of
:mod:`embexp.data.quickstart_schema` and validated on load (:class:`ContentError` names the
file and the field; both are re-exported here). Template syntax: "{a|b|c}" picks
one alternative at random; "{name}" is a named slot filled from the article's context.
Cores (customer phrasings) starting with "!" hinge on an acronym / code / in-house jargon
and are tagged with the "jargon" slice. List and object order in the files matters: it
fixes the order of random draws, so reordering changes the generated data.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

# relative import: this module imports only the standard library and its own schema module
from .quickstart_schema import (
    PRODUCT_LINES,
    Content,
    ContentError,
    ErrorCode,
    Family,
    Noise,
    Variant,
    load_content,
)

__all__ = ["PRODUCT_LINES", "Content", "ContentError", "generate", "load_content", "main", "normalize_query"]


@functools.cache
def _default_content() -> Content:
    return load_content()


def normalize_query(text: str) -> str:
    """Lowercase, strip punctuation, collapse whitespace: two queries that normalise equal
    count as the same question."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


# ---------------------------------------------------------------------------------------
# Articles
# ---------------------------------------------------------------------------------------

_ALT = re.compile(r"\{([^{}]*\|[^{}]*)\}")
_SLOT = re.compile(r"\{(\w+)\}")


def _fill(rng: random.Random, template: str, ctx: dict[str, str] | None = None) -> str:
    """Fill named slots from ``ctx`` (their values may hold alternations), then alternations."""
    if ctx:
        template = _SLOT.sub(lambda m: ctx[m.group(1)] if m.group(1) in ctx else m.group(0), template)
    return _ALT.sub(lambda m: rng.choice(m.group(1).split("|")), template)


@dataclass
class _Article:
    key: str
    line: str
    title: str
    text: str
    cores: list[str]
    head: bool = False
    ctx: dict[str, str] = field(default_factory=dict)
    # hardware: family code + issue key, so a family-only query is answered by all variants
    family: str | None = None
    group: str | None = None


def _body(rng: random.Random, c: Content, line: str, body: str, ctx: dict[str, str] | None = None) -> str:
    """Fill ``body`` and pad it with the product line's boilerplate to 52+ words."""
    text = _fill(rng, body, ctx)
    extra = list(c.boilerplate[line])
    rng.shuffle(extra)
    for sent in extra:
        if len(text.split()) >= 52:
            break
        text += " " + sent
    return text


def _alt(values: tuple[str, ...] | list[str]) -> str:
    """A ctx value that picks one of ``values`` each time it is filled."""
    return "{" + "|".join(values) + "}" if len(values) > 1 else values[0]


def _build_articles(rng: random.Random, c: Content, n_products: int) -> list[_Article]:
    arts: list[_Article] = []
    for line, topics in c.lines.items():
        for t in topics.articles + topics.near_miss:
            arts.append(_Article(t.key, line, t.title, _body(rng, c, line, t.body), list(t.cores), t.head))
    for a in c.ach.codes:
        body = (
            f"Return code {a.code} means {a.what} {a.action} These returns usually arrive within "
            "two banking days of settlement and are listed under Activity > Returns."
        )
        code = _alt([a.code.lower(), a.code, f"{a.code[0]}-{a.code[1:]}".lower()])
        arts.append(
            _Article(
                f"ach-{a.code.lower()}",
                "payments",
                f"Returned bank debit: {a.short}",
                _body(rng, c, "payments", body),
                list(a.customer) + list(c.ach.cores),
                False,
                {"code": code},
            )
        )
    arts += _catalog_articles(rng, c)
    for fam in c.hardware.families[:n_products]:
        arts += _family_articles(rng, c, fam)
    return arts


def _catalog_articles(rng: random.Random, c: Content) -> list[_Article]:
    """One article per catalogue entity and topic: (line, key prefix, entities, topics);
    an entity is (name, query ctx, facts for the title and body)."""
    cat = c.catalog
    groups = [
        (
            "cards",
            "card",
            [
                (
                    p.product.split()[-1],
                    {"slang": _alt(p.words), "inhouse": p.inhouse},
                    {"product": p.product, "Kind": p.kind.capitalize(), "kind": p.kind, **p.facts},
                )
                for p in cat.card_products
            ],
            cat.card_topics,
        ),
        (
            "billing",
            "plan",
            [
                (
                    p.name,
                    {"desc": _alt(p.desc), "pcode": p.pcode.lower()},
                    {"plan": p.name, "pcode": p.pcode, **p.facts},
                )
                for p in cat.plans
            ],
            cat.plan_topics,
        ),
        (
            "payments",
            "method",
            [
                (m.name, {"words": _alt(m.words), "jkey": m.jargon}, {"method": m.name, **m.facts})
                for m in cat.payment_methods
            ],
            cat.method_topics,
        ),
        (
            "shipping",
            "region",
            [
                (r.name.split()[-1], {"words": _alt(r.words)}, {"region": r.name, **r.facts})
                for r in cat.regions
            ],
            cat.region_topics,
        ),
    ]
    arts = []
    for line, prefix, entities, topics in groups:
        for name, qctx, facts in entities:
            for t in topics:
                arts.append(
                    _Article(
                        f"{prefix}-{name}-{t.key}".lower().replace(" ", "-"),
                        line,
                        _fill(rng, t.title, facts),
                        _body(rng, c, line, t.body, facts),
                        list(t.cores),
                        False,
                        qctx,
                    )
                )
    return arts


def _family_articles(rng: random.Random, c: Content, fam: Family) -> list[_Article]:
    """Issue and spec articles per variant, error-code articles, release notes."""
    arts = []
    for var in fam.variants:
        arts += _variant_articles(rng, c, fam, var)
    for err in fam.error_codes:
        arts.append(_error_article(rng, c, fam, err))
    arts.append(_release_notes_article(rng, c, fam))
    return arts


def _variant_articles(rng: random.Random, c: Content, fam: Family, var: Variant) -> list[_Article]:
    """One article per issue the variant can have, then its spec sheet."""
    hw = c.hardware
    arts = []
    ctx = {
        "sku": f"{fam.code}-{var.suffix}",
        "name": fam.name,
        "conn": var.conn,
        "pair": var.pair,
        "power": var.power,
        "reset": fam.reset,
        "label": var.label,
        "brand": fam.brand,
        "prod": f"{fam.brand} {var.label[0].upper()}{var.label[1:]}",
    }
    qctx = {"variant": var.suffix}
    for issue in fam.issues:
        if issue == "battery" and not var.battery:
            continue
        tpl = hw.issues[issue]
        # titles use the marketing name; the body gives the model code once
        title = tpl.title.replace("{sku} {name}", "{prod}").replace("{sku}", "{prod}")
        body = tpl.body.replace("{sku}", "{prod}")
        arts.append(
            _Article(
                f"{fam.code}-{var.suffix}-{issue}".lower(),
                "hardware",
                _fill(rng, title, ctx),
                _body(rng, c, "hardware", body, ctx),
                list(tpl.cores),
                False,
                qctx,
                fam.code,
                f"{fam.code}/{issue}",
            )
        )
    ctx["extras"] = rng.choice(hw.spec_extras)
    arts.append(
        _Article(
            f"{fam.code}-{var.suffix}-specs".lower(),
            "hardware",
            _fill(rng, hw.specs.title, ctx),
            _body(rng, c, "hardware", hw.specs.body, ctx),
            list(hw.specs.cores),
            False,
            qctx,
            fam.code,
            f"{fam.code}/specs",
        )
    )
    return arts


def _error_article(rng: random.Random, c: Content, fam: Family, err: ErrorCode) -> _Article:
    """The article for one of the family's error codes."""
    hw = c.hardware
    ctx = {
        "code": fam.code,
        "name": fam.name,
        "ecode": err.code,
        "meaning": err.meaning,
        "what": err.what,
        "fix": err.fix,
        "brand": fam.brand,
    }
    num = err.code.split("-")[1]
    qctx = {
        "ec": _alt([err.code.lower(), f"e{num}", f"error {num}", f"e {num}"]),
        "desc": _alt(hw.error_words[err.code]),
    }
    return _Article(
        f"{fam.code}-{err.code}".lower(),
        "hardware",
        _fill(rng, hw.error.title, ctx),
        _body(rng, c, "hardware", hw.error.body, ctx),
        list(hw.error.cores),
        False,
        qctx,
        fam.code,
        None,
    )


def _release_notes_article(rng: random.Random, c: Content, fam: Family) -> _Article:
    """The family's firmware release notes."""
    hw = c.hardware
    ver = f"{rng.randint(2, 5)}.{rng.randint(0, 9)}.{rng.randint(0, 20)}"
    ctx = {
        "code": fam.code,
        "name": fam.name,
        "ver": ver,
        "days": str(rng.choice([7, 10, 14])),
        "brand": fam.brand,
    }
    return _Article(
        f"{fam.code}-release-notes".lower(),
        "hardware",
        _fill(rng, hw.release_notes.title, ctx),
        _body(rng, c, "hardware", hw.release_notes.body, ctx),
        [],
        False,
        {},
        fam.code,
        None,
    )


def _add_related(rng: random.Random, arts: list[_Article]) -> None:
    """End each article with two "Related articles" links, as help centres do: the most
    similar title in its product line (a near miss, more often than not) and a random one."""
    by_line: dict[str, list[_Article]] = {}
    for a in arts:
        by_line.setdefault(a.line, []).append(a)
    words = {a.key: set(normalize_query(a.title).split()) for a in arts}
    for a in arts:
        others = [o for o in by_line[a.line] if o is not a]
        sim = max(
            others,
            key=lambda o: (len(words[a.key] & words[o.key]) / len(words[a.key] | words[o.key]), rng.random()),
        )
        rand = rng.choice([o for o in others if o is not sim])
        first, second = (sim, rand) if rng.random() < 0.5 else (rand, sim)
        a.text += f" Related articles: {first.title}; {second.title}."


# ---------------------------------------------------------------------------------------
# Queries
# ---------------------------------------------------------------------------------------


def _noise(rng: random.Random, noise: Noise, text: str) -> str:
    """Make a clean phrasing look typed by a customer."""
    out = []
    for w in text.split(" "):
        lw = w.lower()
        if lw in noise.misspellings and rng.random() < 0.45:
            w = rng.choice(noise.misspellings[lw])
        elif len(w) >= 6 and w.isalpha() and rng.random() < 0.06:  # swap two letters
            i = rng.randrange(1, len(w) - 2)
            w = w[:i] + w[i + 1] + w[i] + w[i + 2 :]
        out.append(w)
    text = " ".join(out)
    if rng.random() < 0.6:
        text = text.replace("'", "")
    if rng.random() < 0.4:
        text = rng.choice(noise.context) + text
    else:
        text = rng.choice(noise.prefixes) + text
    text += rng.choice(noise.suffixes)
    r = rng.random()
    if r < 0.78:
        text = text.lower()
    elif r < 0.93:
        text = text[:1].upper() + text[1:]
    return text


def _sku_forms(code: str, suffix: str | None) -> list[str]:
    """Ways customers type a device code ("TX-4410-B", "tx4410b", "the 4410 b version")."""
    letters, num = code.split("-")
    lo, s = letters.lower(), (suffix or "").lower()
    bare = len(num) >= 3  # "4410" alone identifies a family; "30" does not
    if suffix is None:
        return [f"{lo}-{num}", f"{lo}{num}", f"{lo} {num}", code] + ([num] if bare else [])
    forms = [
        f"{code}-{suffix}",
        f"{lo}-{num}-{s}",
        f"{lo}{num}{s}",
        f"{lo} {num} {s}",
        f"{lo}-{num} {s}",
        f"{lo}-{num} {s} version",
        f"{lo}{num} ({s} model)",
        f"{lo}-{num}{s}",
    ]
    return forms + ([f"{num}-{s}", f"{num}{s}"] if bare else [])


_HAS_DET = re.compile(r"\b(the|my|our|a|an)\s+\{s\}")


def _device(rng: random.Random, c: Content, art: _Article) -> tuple[str, bool, bool]:
    """How the customer names the device: (words, names a code, family only)."""
    fam = next(f for f in c.hardware.families if f.code == art.family)
    suffix = art.ctx.get("variant")
    r = rng.random()
    if suffix is None:  # family-level article (error codes)
        if r < 0.35:
            return rng.choice(fam.slang), False, False
        return rng.choice(_sku_forms(fam.code, None)), True, False
    var = next(v for v in fam.variants if v.suffix == suffix)
    if r < 0.10:  # no variant given: every variant's article answers it
        return rng.choice(_sku_forms(fam.code, None)), True, True
    if r < 0.50:  # described, not named: "receipt printer (the bluetooth one)"
        slang, hint = rng.choice(fam.slang), rng.choice(var.hints)
        words = rng.choice([f"{slang}, the {hint}", f"{slang} (the {hint})", f"{slang} {hint}"])
        return words, False, False
    if r < 0.60:
        return f"{rng.choice(_sku_forms(fam.code, None))} {rng.choice(var.hints)}", True, False
    return rng.choice(_sku_forms(fam.code, suffix)), True, False


def _render(rng: random.Random, c: Content, art: _Article, core: str) -> tuple[str, bool, bool]:
    """One customer query from ``core`` for ``art``: (text, jargon, family_only)."""
    jargon = core.startswith("!")
    core = core.lstrip("!")
    ctx = dict(art.ctx)
    family_only = False
    if "{s}" in core:
        s, coded, family_only = _device(rng, c, art)
        jargon = jargon or coded  # the query hinges on a SKU-like code
        if not _HAS_DET.search(core) and rng.random() < 0.6:
            s = rng.choice(["the ", "my ", "our "]) + s
        ctx["s"] = s
    text = re.sub(r"\s+", " ", _fill(rng, core, ctx)).strip()
    return _noise(rng, c.noise, text), jargon, family_only


def _zipf_frequencies(rng: random.Random, arts: list[_Article]) -> dict[str, int]:
    """Article-level traffic: head topics first, then a random order; Zipf over ranks."""
    order = sorted(arts, key=lambda a: (not a.head, rng.random()))
    return {a.key: max(1, round(50000 / (rank + 1) ** 1.35)) for rank, a in enumerate(order)}


def _query_maker(rng: random.Random, c: Content, arts: list[_Article], graded: bool):
    """``make(art, core)``: a new query row (no normalised text twice), or None."""
    groups: dict[str, list[str]] = {}
    for a in arts:
        if a.group:
            groups.setdefault(a.group, []).append(a.key)
    seen: set[str] = set()

    def make(art: _Article, core: str, tries: int = 8) -> dict | None:
        for _ in range(tries):
            text, jargon, fam_only = _render(rng, c, art, core)
            norm = normalize_query(text)
            if norm and norm not in seen:
                seen.add(norm)
                if fam_only:  # "my tx-4410 wont pair": every variant's article answers it
                    rel = {k: 1 for k in groups[art.group]}
                else:
                    rel = {art.key: 2 if graded else 1}
                return {"text": text, "jargon": jargon, "rel": rel, "art": art.key}
        return None

    return make


def _split_queries(
    rng: random.Random, make, arts: list[_Article], n_train: int, n_dev: int, n_test: int
) -> dict[str, list[dict]]:
    """Test and dev ask each sampled article in its held-out core; train in the others."""
    asked = [a for a in arts if len(a.cores) >= 2]
    held: dict[str, str] = {}
    train_cores: dict[str, list[str]] = {}
    for a in asked:
        cores = list(a.cores)
        rng.shuffle(cores)
        # Keep test learnable: a hand-written article's only jargon phrasing stays in train
        # (templated and device articles share their jargon with sibling articles).
        if not a.ctx and sum(c.startswith("!") for c in cores) == 1 and cores[0].startswith("!"):
            cores.append(cores.pop(0))
        held[a.key], train_cores[a.key] = cores[0], cores[1:]

    test_arts = rng.sample(asked, min(n_test, len(asked)))
    dev_arts = rng.sample(asked, min(n_dev, len(asked)))
    split_rows: dict[str, list[dict]] = {"test": [], "dev": [], "train": []}
    for split, chosen in (("test", test_arts), ("dev", dev_arts)):
        for a in chosen:
            q = make(a, held[a.key])
            if q:
                split_rows[split].append(q)
    # Train: round-robin over articles, one phrasing per article per round.
    train = split_rows["train"]
    pool = list(asked)
    rng.shuffle(pool)
    rnd = 0
    while len(train) < n_train and rnd < 12:
        added = 0
        for a in pool:
            if len(train) >= n_train:
                break
            cores = train_cores[a.key]
            q = make(a, cores[rnd % len(cores)])
            if q:
                train.append(q)
                added += 1
        if not added:
            break
        rnd += 1
    return split_rows


def _number_queries(
    rng: random.Random, split_rows: dict[str, list[dict]], traffic: dict[str, int]
) -> list[dict]:
    """Frequencies (queries of one article share its traffic, Zipf within) and ids."""
    per_art: dict[str, list[dict]] = {}
    for split in ("train", "dev", "test"):
        for q in split_rows[split]:
            per_art.setdefault(q["art"], []).append(q)
    for key, qs in per_art.items():
        rng.shuffle(qs)
        weights = [1 / (i + 1) ** 1.3 for i in range(len(qs))]
        total = sum(weights)
        for q, w in zip(qs, weights):
            q["frequency"] = max(1, round(traffic[key] * w / total * rng.uniform(0.7, 1.3)))
    all_rows = split_rows["train"] + split_rows["dev"] + split_rows["test"]
    rng.shuffle(all_rows)
    for i, q in enumerate(all_rows):
        q["_id"] = f"q-{i + 1:05d}"
    return all_rows


# ---------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------


def generate(
    out_dir: str | Path,
    seed: int = 0,
    n_products: int | None = None,
    n_train: int = 1300,
    n_dev: int = 150,
    n_test: int = 300,
    graded: bool = True,
    content: Content | None = None,
) -> Path:
    """Write the synthetic help-centre KB as a BEIR folder under ``out_dir``; return it.

    ``n_products`` is the number of hardware device families (each with 2-3 SKU
    variants, 1 to 10; default all); it scales the corpus. ``n_train``/``n_dev``/``n_test``
    are upper bounds on the queries per split (they are reached with the defaults).
    ``content`` defaults to the packaged content (:func:`load_content`).
    """
    c = content if content is not None else _default_content()
    n_families = len(c.hardware.families)
    n_products = n_families if n_products is None else n_products
    if not 1 <= n_products <= n_families:
        raise ValueError(f"n_products must be in 1..{n_families}, got {n_products}")
    rng = random.Random(f"embexp-quickstart:{seed}")
    arts = _build_articles(rng, c, n_products)
    _add_related(rng, arts)
    rng.shuffle(arts)
    ids = {a.key: f"kb-{i + 1:04d}" for i, a in enumerate(arts)}
    traffic = _zipf_frequencies(rng, arts)
    make = _query_maker(rng, c, arts, graded)
    split_rows = _split_queries(rng, make, arts, n_train, n_dev, n_test)
    all_rows = _number_queries(rng, split_rows, traffic)

    out = Path(out_dir)
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    corpus_lines = [
        json.dumps(
            {"_id": ids[a.key], "title": a.title, "text": a.text, "metadata": {"product_line": a.line}},
            ensure_ascii=False,
        )
        for a in sorted(arts, key=lambda a: ids[a.key])
    ]
    _write(out / "corpus.jsonl", "".join(line + "\n" for line in corpus_lines))
    query_lines = [
        json.dumps(
            {
                "_id": q["_id"],
                "text": q["text"],
                "frequency": q["frequency"],
                "slices": ["jargon"] if q["jargon"] else [],
            },
            ensure_ascii=False,
        )
        for q in sorted(all_rows, key=lambda q: q["_id"])
    ]
    _write(out / "queries.jsonl", "".join(line + "\n" for line in query_lines))
    for split, rows in split_rows.items():
        lines = ["query-id\tcorpus-id\tscore"]
        for q in sorted(rows, key=lambda q: q["_id"]):
            for key, score in sorted(q["rel"].items(), key=lambda kv: ids[kv[0]]):
                lines.append(f"{q['_id']}\t{ids[key]}\t{score}")
        _write(out / "qrels" / f"{split}.tsv", "\n".join(lines) + "\n")
    _write(out / "README.md", _readme(seed, n_products, graded, arts, split_rows))
    return out


def _readme(
    seed: int, n_products: int, graded: bool, arts: list[_Article], split_rows: dict[str, list[dict]]
) -> str:
    n_queries = sum(len(rows) for rows in split_rows.values())
    n_jargon = sum(q["jargon"] for rows in split_rows.values() for q in rows)
    lines_count = {pl: sum(a.line == pl for a in arts) for pl in PRODUCT_LINES}
    readme = [
        "# Lumio help centre (synthetic quickstart data)",
        "",
        "Synthetic: a made-up company's help-centre articles and customer queries, generated by",
        f"`python -m embexp.data.quickstart OUT --seed {seed}` (embexp.data.quickstart, seed {seed},",
        f"n_products {n_products}). Not real support data; any resemblance is for realism only.",
        "",
        f"- corpus: {len(arts)} articles (" + ", ".join(f"{pl} {n}" for pl, n in lines_count.items()) + ")",
        (
            f"- queries: {n_queries} (train {len(split_rows['train'])}, dev {len(split_rows['dev'])}, "
            f"test {len(split_rows['test'])}); jargon slice: {n_jargon}"
        ),
        (
            "- qrels: score 2 = the article the query was written for, 1 = also answers it "
            "(device family without a variant)"
        )
        if graded
        else "- qrels: binary (score 1)",
        "- queries.jsonl `frequency`: how often customers ask it (Zipf-like head/tail)",
        "",
    ]
    return "\n".join(readme)


def _write(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def main(argv: list[str] | None = None) -> int:
    n_families = len(_default_content().hardware.families)
    parser = argparse.ArgumentParser(
        prog="python -m embexp.data.quickstart",
        description="Write the synthetic help-centre knowledge base (BEIR format) to OUT.",
    )
    parser.add_argument("out", metavar="OUT", help="output folder (created if missing)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--n-products",
        type=int,
        default=n_families,
        help=f"hardware device families, 1..{n_families} (default {n_families})",
    )
    args = parser.parse_args(argv)
    try:
        out = generate(args.out, seed=args.seed, n_products=args.n_products)
    except ValueError as e:
        parser.error(str(e))
    print((out / "README.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
