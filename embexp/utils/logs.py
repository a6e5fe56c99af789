"""What a run's log shows: embexp's own lines and library messages a researcher acts on.

Libraries embexp uses log chatter at INFO or print it (faiss's loader lists every SIMD build it
could not import, which reads as errors; Lightning suggests a cloud logger; bm25s logs at DEBUG;
transformers draws a bar for loading a model's weights, which a log file keeps as a stale
frame). :func:`quiet_libraries` turns that down in
one place, once per process, after Hydra has configured logging; library warnings and errors
still show.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

# loggers whose INFO/DEBUG lines are chatter: raised to WARNING
CHATTY = ("faiss.loader", "faiss", "bm25s", "httpx", "urllib3", "filelock")
# (logger, text) of single INFO lines that ask nothing of the user
DROPPED = (
    ("lightning.pytorch.utilities.rank_zero", "litlogger"),  # a cloud logger's advertisement
    ("lightning.pytorch.utilities.rank_zero", "TPU available"),  # accelerators this harness never uses
    ("lightning.pytorch.utilities.rank_zero", "HPU available"),
    ("lightning.pytorch.utilities.rank_zero", "to estimate number of stepping batches"),
)
# (category, message regex) of warnings about libraries' own use of other libraries
IGNORED_WARNINGS = (
    (Warning, r".*isinstance\(treespec, LeafSpec\)"),
    # the baseline evaluation leaves the encoder in eval mode; BiEncoderModule.on_train_start puts
    # it in train mode before the first step, so Lightning's check before that hook is moot
    (Warning, r".*module\(s\) in eval mode at the start of training"),
)
LIGHTNING = ("lightning", "lightning.pytorch", "lightning.fabric")  # each may own a console handler


class _DropText(logging.Filter):
    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in str(record.msg)


class _AtLeastWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


def quiet_libraries() -> None:
    """Turn library chatter down (idempotent). Call after logging is configured (Hydra's job
    logging or ``logging.basicConfig``), and again once Lightning is imported (its package adds
    a console handler of its own on import: every line would print twice)."""
    for name in CHATTY:  # a level, and a filter too: bm25s sets its own level to DEBUG on import
        logger = logging.getLogger(name)
        logger.setLevel(logging.WARNING)
        if not any(isinstance(f, _AtLeastWarning) for f in logger.filters):
            logger.addFilter(_AtLeastWarning())
    for name, text in DROPPED:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropText) and f.text == text for f in logger.filters):
            logger.addFilter(_DropText(text))
    for category, message in IGNORED_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    if logging.getLogger().handlers:  # Lightning printed every line twice: its own handler and root's
        for name in LIGHTNING:
            logger = logging.getLogger(name)
            for h in [h for h in logger.handlers if type(h) is logging.StreamHandler]:
                logger.removeHandler(h)
            logger.propagate = True
    if not interactive():  # a log file gets no bars' last frames (transformers 5: loading weights)
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        hf_logging = sys.modules.get("transformers.utils.logging")
        if hf_logging is not None:  # imported before this call: it read the variable already
            hf_logging.disable_progress_bar()


def interactive() -> bool:
    """Whether stderr is a terminal (progress bars draw there; a log file gets lines instead)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return False
