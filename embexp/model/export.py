"""Export a trained embexp model as a plain sentence-transformers model.

The export is one self-contained folder that loads with ``SentenceTransformer(OUT)`` and
with embexp (``model.name_or_path=OUT``)::

    OUT/
      config.json, model.safetensors     the backbone; a LoRA adapter is merged into it
      tokenizer files                    as trained
      modules.json                       Transformer -> Pooling [-> Normalize]
      sentence_bert_config.json          max_seq_length (= passage_max_length), do_lower_case
      1_Pooling/config.json              mean | cls | lasttoken, as embexp pooled
      config_sentence_transformers.json  prompts {"query": query_prefix, "document": passage_prefix}
      embexp_encoder.json                embexp's own spec (prefixes, lengths, pooling)

The files are written in the classic layout (``sentence_transformers.models.*`` class
references, ``pooling_mode_*`` flags next to ``pooling_mode``), which every
sentence-transformers release from 2.x to 6.x reads.

Equivalence with embexp: passages embed identically with ``st.encode(texts)`` when
``passage_prefix`` is empty, else with ``st.encode_document(texts)`` or
``prompt_name="document"``; queries with ``st.encode_query(texts)`` or
``prompt_name="query"``. sentence-transformers has one max length for both sides, so
queries longer than ``query_max_length`` tokens (which embexp truncates) are cut at
``passage_max_length`` instead.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from embexp.errors import DataError, Problem
from embexp.model.encoder import SPEC_FILE, BiEncoder, EncoderSpec

log = logging.getLogger(__name__)

# embexp pooling -> sentence-transformers pooling mode
ST_POOLING = {"mean": "mean", "cls": "cls", "last": "lasttoken"}
_LEGACY_FLAGS = {  # pooling_mode_* flags read by sentence-transformers < 6
    "cls": "pooling_mode_cls_token",
    "mean": "pooling_mode_mean_tokens",
    "max": "pooling_mode_max_tokens",
    "mean_sqrt_len_tokens": "pooling_mode_mean_sqrt_len_tokens",
    "weightedmean": "pooling_mode_weightedmean_tokens",
    "lasttoken": "pooling_mode_lasttoken",
}


@dataclass
class ExportInfo:
    source: Path
    out: Path
    merged_adapter: bool
    pooling: str
    normalize: bool
    query_max_length: int
    max_seq_length: int  # sentence-transformers' one max length (= passage_max_length)


def _error(path: Path, message: str) -> DataError:
    return DataError(Problem(str(path), None, None, message))


def find_model_dir(path: str | Path) -> Path:
    """The embexp model folder: ``path`` itself or ``path/model`` (a run directory)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise _error(path, "does not exist (expected a run directory or an embexp model directory)")
    if not path.is_dir():
        raise _error(path, "is not a directory (expected a run directory or an embexp model directory)")
    if (path / SPEC_FILE).is_file():
        return path
    if (path / "model" / SPEC_FILE).is_file():
        _check_finished(path)
        return path / "model"
    hint = (
        " (the run has not finished: no model/ yet)"
        if (path / "checkpoints").exists() or (path / "baseline.json").exists()
        else ""
    )
    raise _error(
        path, f"no embexp model here: expected {SPEC_FILE} in it or in its model/ subdirectory{hint}"
    )


def _check_finished(run: Path) -> None:
    """A run directory exports only once it has finished (``metrics.json`` says so)."""
    mpath = run / "metrics.json"
    if not mpath.is_file():
        raise _error(
            run, "the run has not finished: metrics.json is missing (rerun the same run_id to resume it)"
        )
    try:
        status = json.loads(mpath.read_text()).get("status")
    except (OSError, ValueError) as e:
        raise _error(mpath, f"unreadable ({e})") from None
    if status != "finished":
        raise _error(mpath, f"field 'status': the run is {status!r}, not 'finished'; export a finished run")


def st_files(spec: EncoderSpec, dim: int) -> dict[str, dict | list]:
    """The sentence-transformers config files for ``spec`` (relative path -> JSON content)."""
    mode = ST_POOLING.get(spec.pooling or "mean")
    if mode is None:
        raise ValueError(f"pooling {spec.pooling!r} has no sentence-transformers equivalent")
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if spec.normalize:
        modules.append(
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
        )
    pooling = {"word_embedding_dimension": int(dim), "pooling_mode": mode}
    pooling.update({flag: m == mode for m, flag in _LEGACY_FLAGS.items()})
    pooling["include_prompt"] = True  # embexp pools over the prefix tokens too
    versions = {}
    for name, key in (
        ("sentence_transformers", "sentence_transformers"),
        ("transformers", "transformers"),
        ("torch", "pytorch"),
    ):
        try:
            versions[key] = __import__(name).__version__
        except ImportError:
            pass
    return {
        "modules.json": modules,
        "sentence_bert_config.json": {"max_seq_length": int(spec.passage_max_length), "do_lower_case": False},
        "1_Pooling/config.json": pooling,
        "config_sentence_transformers.json": {
            "__version__": versions,
            "model_type": "SentenceTransformer",
            "prompts": {"query": spec.query_prefix or "", "document": spec.passage_prefix or ""},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine" if spec.normalize else "dot",
        },
    }


def export_encoder(
    encoder: BiEncoder, out: str | Path, *, base_model: str | None = None, source: str | None = None
) -> Path:
    """Write ``encoder`` (LoRA merged) to ``out`` in the sentence-transformers layout."""
    from embexp.model.adapters import merged_backbone

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    backbone = merged_backbone(encoder)  # a merged copy for PEFT models, the model itself otherwise
    backbone.save_pretrained(out, safe_serialization=True)
    encoder.tokenizer.save_pretrained(out)
    spec = encoder.spec
    for rel, content in st_files(spec, encoder.dim).items():
        p = out / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(content, indent=2) + "\n")
    meta = dataclasses.asdict(spec)
    meta["name_or_path"] = str(out)
    meta["base_model"] = base_model or spec.name_or_path
    meta["exported_from"] = source
    meta["merged_adapter"] = hasattr(encoder.backbone, "merge_and_unload")
    (out / SPEC_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return out


def export(run_or_model_dir: str | Path, out: str | Path, *, overwrite: bool = False) -> ExportInfo:
    """Load the model of a run (or a model directory), merge it and write ``out``.

    ``out`` is written to a temporary sibling and renamed into place, so a failed export
    leaves nothing half-written behind.
    """
    src = find_model_dir(run_or_model_dir)
    out = Path(out).expanduser()
    o, s = out.resolve(), src.resolve()
    if o == s or s in o.parents or o in s.parents:
        raise _error(out, f"the export folder must not be, contain or lie inside the model folder {src}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not overwrite:
            raise _error(out, "already exists and is not empty (pass --overwrite to replace it)")
    meta = json.loads((src / SPEC_FILE).read_text())
    try:
        encoder = BiEncoder.load(src)
    except OSError as e:  # missing weights, or the base model of an adapter cannot be found
        raise _error(
            src, f"cannot load the model: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
        ) from e
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp"))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private
    try:
        export_encoder(encoder, tmp, base_model=meta.get("base_model"), source=str(src.resolve()))
        # the spec names its own folder: point it at the final location
        spec_path = tmp / SPEC_FILE
        m = json.loads(spec_path.read_text())
        m["name_or_path"] = str(out)
        spec_path.write_text(json.dumps(m, indent=2) + "\n")
        for f in tmp.rglob("*"):  # save_pretrained writes private (0600) files; an export is for sharing
            os.chmod(f, (0o777 if f.is_dir() else 0o666) & ~umask)
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    spec = encoder.spec
    info = ExportInfo(
        src,
        out,
        bool(m["merged_adapter"]),
        ST_POOLING[spec.pooling],
        spec.normalize,
        spec.query_max_length,
        spec.passage_max_length,
    )
    log.info(
        "exported %s -> %s (%s pooling%s%s)",
        src,
        out,
        info.pooling,
        ", normalised" if info.normalize else "",
        ", LoRA merged" if info.merged_adapter else "",
    )
    return info
