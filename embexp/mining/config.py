"""The ``negatives`` config node: its kinds, its checks, and the veto it names.

Types, unknown keys and ranges of the node are its schema's (``embexp.config.schema``:
``InBatchNegatives``, ``MinedNegatives``); the mining values (window, sampling, depth,
margins, seed) are checked by :meth:`~embexp.mining.miner.MiningParams.validate`; what is
left here is what needs the file system: the files it names exist and the veto hook imports.
"""

from __future__ import annotations

from pathlib import Path

from embexp.config.schema import MINED, NEGATIVES_SCHEMAS, InBatchNegatives, MinedNegatives
from embexp.config.store import to_schema
from embexp.errors import ConfigError
from embexp.mining.files import import_hook, read_veto_pairs
from embexp.mining.miner import MiningParams
from embexp.utils.hooks import import_hook as _import_hook

KINDS = tuple(NEGATIVES_SCHEMAS)

__all__ = ["KINDS", "MINED", "load_veto", "negatives_config", "validate_negatives"]


def _get(node, key, default=None):
    return node.get(key, default) if hasattr(node, "get") else getattr(node, key, default)


def negatives_config(node) -> InBatchNegatives | MinedNegatives:
    """The ``negatives`` node as its schema object (errors name ``negatives.<key>``)."""
    return to_schema(node, NEGATIVES_SCHEMAS, "negatives")


def validate_negatives(node) -> MiningParams | None:
    """Check the ``negatives`` node before any model is loaded; the mining parameters
    (None for ``in_batch``). Every error names its key."""
    neg = negatives_config(node)
    if neg.kind not in MINED:
        return None
    params = MiningParams.of(neg)
    for key in ("file", "veto_file"):
        f = getattr(neg, key)
        if f not in (None, "") and not Path(str(f)).expanduser().exists():
            raise ConfigError(f"negatives.{key}", f"file not found: {f}")
    if neg.veto_hook not in (None, ""):
        import_hook(str(neg.veto_hook))
    if neg.source not in (None, ""):  # imports; built by the curriculum (embexp.mining.sources)
        _import_hook(str(neg.source), "negatives.source")
    return params


def load_veto(node) -> tuple[set[tuple[str, str]] | None, object | None]:
    vf, hook = _get(node, "veto_file"), _get(node, "veto_hook")
    pairs = read_veto_pairs(Path(str(vf)).expanduser()) if vf not in (None, "") else None
    return pairs, (import_hook(str(hook)) if hook not in (None, "") else None)
