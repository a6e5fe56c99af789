"""The log shows what a researcher acts on: library chatter is turned down in one place."""

from __future__ import annotations

import logging

import pytest

from embexp.utils.logs import quiet_libraries

from conftest import run_cli

# what library chatter looked like in every CLI's output before (issue 26)
CHATTER = (
    "faiss.loader",  # "Could not load library with AVX512-SPR support due to: ModuleNotFoundError"
    "litlogger",  # Lightning's tip about its cloud logger
    "LeafSpec",  # a _pytree deprecation warning from Lightning's own use of torch
    "Loading weights",  # transformers 5's bar for loading a 22M model
    "it/s",  # a rich progress bar's stale last frame in a log file
    "Building index from",  # bm25s DEBUG
    "in eval mode at the start of training",  # Lightning, before on_train_start sets train mode
    "to estimate number of stepping batches",  # Lightning INFO
)


def test_quiet_libraries_turns_chatter_down_and_keeps_warnings(caplog):
    quiet_libraries()
    quiet_libraries()  # idempotent: one filter each
    faiss = logging.getLogger("faiss.loader")
    assert faiss.getEffectiveLevel() == logging.WARNING and len(faiss.filters) == 1
    bm25 = logging.getLogger("bm25s")
    bm25.setLevel(logging.DEBUG)  # what bm25s does on import
    tip = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    with caplog.at_level(logging.DEBUG):
        bm25.debug("Building index from tokens")
        faiss.info("Could not load library with AVX2 support")
        tip.info("Tip: try installing [litlogger]")
        tip.info("Using bfloat16 Automatic Mixed Precision (AMP)")
        faiss.warning("a real problem")
    text = caplog.text
    assert "Building index" not in text and "AVX2" not in text and "litlogger" not in text
    assert "Automatic Mixed Precision" in text and "a real problem" in text


@pytest.mark.cli
def test_a_cli_run_logs_no_library_chatter(tiny_beir, tmp_path):
    """A tiny training run with the default progress bar and the hybrid retriever (bm25s), its
    output captured as a log file would (not a terminal)."""
    args = [
        "data=beir",
        f"data.path={tiny_beir}",
        "model=tiny",
        "logger=none",
        "train.batch_size=2",
        "trainer.max_epochs=1",
        "eval.retriever=hybrid",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    p = run_cli("embexp.cli.train", *args)
    assert p.returncode == 0, p.stderr[-3000:]
    out = p.stdout + p.stderr
    assert "final" in out and "baseline" in out  # the run's own table is there
    found = [c for c in CHATTER if c in out]
    assert not found, f"library chatter in the log: {found}\n{out[-4000:]}"
    doubled = [line for line in out.splitlines() if line.startswith("INFO: ")]
    assert not doubled, f"Lightning printed lines twice: {doubled}"
