"""Shared fixtures: a tiny random encoder, a tiny BEIR folder, paths to real data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared" / "datasets" / "scifact"

# the overrides of a tiny, quiet CLI run (random 2-layer model, no tracking, no progress bars)
TINY = [
    "model=tiny",
    "logger=none",
    "train.batch_size=2",
    "eval.show_progress=false",
    "callbacks.progress_bar=null",
]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory):
    """Tests never touch the user's cache."""
    d = tmp_path_factory.mktemp("embexp-cache")
    old = os.environ.get("EMBEXP_CACHE")
    os.environ["EMBEXP_CACHE"] = str(d)
    yield d
    if old is None:
        os.environ.pop("EMBEXP_CACHE", None)
    else:
        os.environ["EMBEXP_CACHE"] = old


@pytest.fixture(scope="session")
def tiny_model_dir(_cache_dir):
    from embexp.model.registry import build_tiny_model

    return build_tiny_model(_cache_dir / "tiny-random-bert")


@pytest.fixture()
def tiny_encoder(tiny_model_dir):
    from embexp.model.encoder import BiEncoder

    return BiEncoder.from_spec(encoder_spec(str(tiny_model_dir), query_max_length=32, passage_max_length=64))


DOCS = [
    ("d1", "Refund policy", "Refunds are issued to the original card within 5 business days."),
    ("d2", "Return shipping label", "Print a prepaid return label from your orders page."),
    ("d3", "ACH reversal window", "An ACH reversal can be requested within 5 banking days."),
    ("d4", "ACH return codes", "R01 means insufficient funds; R02 means the account is closed."),
    ("d5", "Pairing the TX-4410-B", "Hold the pair button for 5 seconds until the light blinks."),
    ("d6", "Card declined", "A card can be declined for insufficient funds or a wrong PIN."),
]
QUERIES = [
    ("q1", "how do i get my money back"),
    ("q2", "print a label to send it back"),
    ("q3", "ACH reversal deadline"),
    ("q4", "what does R01 mean"),
    ("q5", "TX-4410-B wont pair"),
    ("q6", "why was my card declined"),
    ("q7", "refund to card how long"),
    ("q8", "return label printing"),
]
QRELS = {
    "train": [("q1", "d1", 1), ("q2", "d2", 1), ("q4", "d4", 1), ("q6", "d6", 1)],
    "test": [("q3", "d3", 1), ("q5", "d5", 2), ("q7", "d1", 1), ("q8", "d2", 1), ("q8", "d1", 0)],
}


def write_beir(folder: Path, docs=DOCS, queries=QUERIES, qrels=QRELS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": d, "title": t, "text": x}) + "\n" for d, t, x in docs)
    )
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": x}) + "\n" for q, x in queries)
    )
    (folder / "qrels").mkdir(exist_ok=True)
    for split, rows in qrels.items():
        (folder / "qrels" / f"{split}.tsv").write_text(
            "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in rows)
        )
    return folder


@pytest.fixture()
def tiny_beir(tmp_path) -> Path:
    return write_beir(tmp_path / "tiny-beir")


def compose_config(overrides=(), config_name: str = "train", *, hydra: bool = False):
    """The config an entry point composes from ``conf/`` with ``overrides`` (fresh Hydra state;
    ``hydra=True`` keeps the ``hydra`` node, for sweeper and launcher configs). Composition
    errors propagate as Hydra raises them (``embexp.config.config_error`` names their key)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            return compose(config_name=config_name, overrides=list(overrides), return_hydra_config=hydra)
    finally:
        GlobalHydra.instance().clear()


def run_cli(*args: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run an entry point as a user would (fresh Hydra state), return the completed process."""
    e = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, env=e, capture_output=True, text=True, timeout=timeout
    )


# A multi-positive, graded BEIR set (the shape of dense-label datasets): three topics of four
# documents; each query's topic documents are relevant, the closest one with grade 2.
MULTI_DOCS = [
    (f"{t}{i}", f"{title} {i}", f"{text} (article {i})")
    for t, title, text in [
        ("r", "Refunds", "Refunds go back to the original card within five business days"),
        ("a", "ACH transfers", "An ACH reversal can be requested within five banking days"),
        ("p", "Pairing devices", "Hold the pair button until the light blinks to pair the TX-4410-B"),
    ]
    for i in range(4)
] + [(f"n{i}", f"Note {i}", f"Unrelated release note number {i} about fonts") for i in range(4)]
MULTI_QUERIES = [
    ("tq1", "how do i get my money back"),
    ("tq2", "refund to card how long"),
    ("tq3", "ACH reversal deadline"),
    ("tq4", "undo an ACH payment"),
    ("tq5", "TX-4410-B wont pair"),
    ("tq6", "pairing light blinking"),
    ("tq7", "refund timing for card payments"),
    ("tq8", "ACH reversal window length"),
    ("eq1", "where is my refund"),
    ("eq2", "reverse an ACH transfer"),
    ("eq3", "pair my terminal"),
]
_TOPIC = {"tq1": "r", "tq2": "r", "tq7": "r", "tq3": "a", "tq4": "a", "tq8": "a", "tq5": "p", "tq6": "p"}
MULTI_QRELS = {
    "train": [
        (q, f"{t}{i}", 2 if i == n % 4 else 1) for n, (q, t) in enumerate(_TOPIC.items()) for i in range(4)
    ]
    + [("tq1", "n0", 0)],
    "test": [
        (q, f"{t}{i}", 2 if i == 3 else 1)
        for q, t in [("eq1", "r"), ("eq2", "a"), ("eq3", "p")]
        for i in range(4)
    ],
}


@pytest.fixture()
def multi_beir(tmp_path) -> Path:
    return write_beir(tmp_path / "multi-beir", MULTI_DOCS, MULTI_QUERIES, MULTI_QRELS)


def mining_params(**kw):
    """``MiningParams`` for a ``MinedNegatives`` node with these values (margin_rel off unless given)."""
    from embexp.config.schema import MinedNegatives
    from embexp.mining.miner import MiningParams

    kw = {"margin_rel": None, **kw}
    if isinstance(kw.get("window"), tuple):
        kw["window"] = list(kw["window"])
    return MiningParams.of(MinedNegatives(**kw))


def encoder_spec(name_or_path: str, **kw):
    """An ``EncoderSpec`` for a ``ModelConfig`` with these values (the schema's defaults otherwise)."""
    from embexp.config.schema import ModelConfig
    from embexp.model.encoder import EncoderSpec

    return EncoderSpec.of(ModelConfig(name_or_path, **kw))


PROCESS_NAMES = {"run_cli", "subprocess", "Popen", "spawn"}  # how a test starts another process


def _code_names(code) -> set[str]:
    """Names a code object uses, its nested ones (comprehensions, lambdas) included."""
    names = set(code.co_names)
    for const in code.co_consts:
        if hasattr(const, "co_names"):
            names |= _code_names(const)
    return names


_SEEN: dict[tuple, bool] = {}
TESTS_DIR = str(ROOT / "tests")


def _starts_a_process(fn, depth: int = 3) -> bool:
    """Whether ``fn``, or a function it calls from its module's globals (``depth`` levels down,
    imported test helpers included), names a way to start a process."""
    fn = getattr(fn, "__wrapped__", fn)  # a fixture's function
    code = getattr(fn, "__code__", None)
    if code is None or depth == 0:
        return False
    if not code.co_filename.startswith(
        TESTS_DIR
    ):  # library code (e.g. git in code_version) is no test's process
        return False
    key = (code, depth)
    if key not in _SEEN:
        _SEEN[key] = False  # a recursive helper ends here
        names = _code_names(code)
        scope = getattr(fn, "__globals__", {})
        _SEEN[key] = bool(names & PROCESS_NAMES) or any(
            _starts_a_process(scope[n], depth - 1) for n in names if n in scope and callable(scope[n])
        )
    return _SEEN[key]


def pytest_collection_modifyitems(config, items):
    """A test that starts another process (it, one of its fixtures, or a helper they call runs
    ``run_cli``, ``subprocess``, ``Popen`` or a multiprocessing ``spawn``) is marked ``cli``: the
    fast loop (``pytest -m "not slow and not cli"``) leaves them out."""
    for item in items:
        if item.get_closest_marker("cli") or item.get_closest_marker("slow"):
            continue
        fns = [getattr(item, "function", None)]
        defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {}) or {}
        names = getattr(item, "fixturenames", ())
        fns += [d.func for name in names for d in defs.get(name, ()) if name not in _BUILTIN]
        if any(f is not None and _starts_a_process(f) for f in fns):
            item.add_marker(pytest.mark.cli)


_BUILTIN = {"tmp_path", "tmp_path_factory", "monkeypatch", "capsys", "caplog", "request", "pytestconfig"}
