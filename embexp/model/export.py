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
      embexp_export.json                 the export's manifest: source, run, time, files written

The manifest is how ``--overwrite`` recognises a previous export: it replaces a folder only
when the folder holds a manifest and nothing but the files it lists, never the working folder,
a parent of it, the run (or model) folder, a parent of it or a folder inside it. The export is
written to a temporary sibling and renamed into place (the previous export is moved aside
first and removed only once the new one is in place), so a failed export leaves the previous
one as it was and no half-written OUT.

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
import time
from dataclasses import dataclass
from pathlib import Path

from embexp.errors import DataError, Problem
from embexp.model.encoder import SPEC_FILE, BiEncoder, EncoderSpec
from embexp.utils.io import UnreadableJSON, atomic_folder, read_json_object

log = logging.getLogger(__name__)

MANIFEST_FILE = "embexp_export.json"  # written last into every export: what --overwrite recognises
MANIFEST_FORMAT = "embexp-export"

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
        status = read_json_object(mpath).get("status")
    except UnreadableJSON as e:
        raise _error(
            mpath, f"{e.why}; rerun the run from scratch (same run_id, force=true) before exporting it"
        ) from None
    if status != "finished":
        raise _error(mpath, f"field 'status': the run is {status!r}, not 'finished'; export a finished run")


def run_folder(given: str | Path, model_dir: Path) -> Path:
    """The folder an export must never touch: the run folder when ``given`` is one or is a run's
    ``model/`` (its parent holds the run files), else the model folder itself."""
    given = Path(given).expanduser().resolve()
    model_dir = model_dir.resolve()
    if model_dir != given:
        return given  # a run folder: the model is its model/
    parent = model_dir.parent
    if model_dir.name == "model" and any((parent / f).exists() for f in ("metrics.json", "run.json")):
        return parent
    return model_dir


def _protected(o: Path, run: Path, src: Path) -> str | None:
    """Why the resolved folder ``o`` may not be an export target (None: it may)."""
    cwd = Path.cwd().resolve()
    if o == cwd:
        return "is the current working folder"
    if o in cwd.parents:
        return f"is a parent of the current working folder {cwd}"
    folders = (("model folder", src.resolve()), ("run folder", run))  # the most specific first
    for what, folder in folders:
        if o == folder:
            return f"is the {what} {folder}"
    for what, folder in folders:
        if folder in o.parents:
            return f"lies inside the {what} {folder}"
    for what, folder in reversed(folders):
        if o in folder.parents:
            return f"is a parent of the {what} {folder}"
    return None


def read_manifest(folder: Path) -> dict | None:
    """The manifest of a previous export in ``folder`` (None: not an export of embexp's)."""
    try:
        m = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(m, dict) or m.get("format") != MANIFEST_FORMAT or not isinstance(m.get("files"), list):
        return None
    return m


def _listing(folder: Path, limit: int = 5) -> str:
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
    return ", ".join(names[:limit]) + (f", ... ({len(names)} entries)" if len(names) > limit else "")


def check_target(out: Path, run: Path, src: Path, *, overwrite: bool) -> Path:
    """The resolved export folder, once it is known to be safe to write: new, an empty folder,
    or (with ``overwrite``) a previous export whose manifest lists every file in it.

    Never the working folder or a parent of it, the run or model folder, a parent of either or a
    folder inside either. Anything else that exists is refused with what it holds and the way out.
    """
    o = out.resolve()
    why = _protected(o, run, src)
    if why is not None:
        raise _error(out, f"refusing to export here: the export folder {why}; choose a new folder for OUT")
    if not out.exists():
        return o
    if not out.is_dir():
        raise _error(out, "exists and is a file, not a previous export; choose another OUT or move the file")
    if not any(out.iterdir()):
        return o
    manifest = read_manifest(out)
    if manifest is None:
        raise _error(
            out,
            f"exists and holds {_listing(out)}, but is not a previous embexp export (no {MANIFEST_FILE}); "
            "nothing was changed: choose a new or empty folder for OUT, or move its contents away"
            + (" (--overwrite only ever replaces a previous export)" if overwrite else ""),
        )
    of = f"a previous export of {manifest.get('source')} ({manifest.get('created')})"
    listed = {str(f) for f in manifest["files"]}
    extra = sorted(
        str(p.relative_to(out))
        for p in out.rglob("*")
        if p.is_file() and str(p.relative_to(out)) not in listed
    )
    if extra:
        raise _error(
            out,
            f"holds {of}, but also files the export did not write: {', '.join(extra[:5])}"
            f"{', ...' if len(extra) > 5 else ''}; nothing was changed: move them away or choose another OUT",
        )
    if not overwrite:
        raise _error(
            out, f"already exists and holds {of}; pass --overwrite to replace it, or choose another OUT"
        )
    return o


def write_manifest(folder: Path, *, source: Path, run: Path) -> dict:
    """Write the export's manifest into ``folder`` (last: it lists every file written before it)."""
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    manifest = {
        "format": MANIFEST_FORMAT,
        "version": 1,
        "source": str(source.resolve()),
        "run": str(run),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "files": sorted([*files, MANIFEST_FILE]),
    }
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


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

    ``out`` must be new, empty, or (with ``overwrite``) a previous export (:func:`check_target`).
    It is written to a temporary sibling and renamed into place (:func:`embexp.utils.io.atomic_folder`), so a
    failed export leaves nothing half-written behind and the previous export untouched.
    """
    src = find_model_dir(run_or_model_dir)
    run = run_folder(run_or_model_dir, src)
    out = Path(out).expanduser()
    target = check_target(out, run, src, overwrite=overwrite)
    meta = json.loads((src / SPEC_FILE).read_text())
    try:
        encoder = BiEncoder.load(src)
    except OSError as e:  # missing weights, or the base model of an adapter cannot be found
        raise _error(
            src, f"cannot load the model: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
        ) from e
    umask = os.umask(0)
    os.umask(umask)
    with atomic_folder(target) as tmp:  # the previous export stays until the new one is whole
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private
        export_encoder(encoder, tmp, base_model=meta.get("base_model"), source=str(src.resolve()))
        # the spec names its own folder: point it at the final location
        spec_path = tmp / SPEC_FILE
        m = json.loads(spec_path.read_text())
        m["name_or_path"] = str(out)
        spec_path.write_text(json.dumps(m, indent=2) + "\n")
        write_manifest(tmp, source=src, run=run)
        for f in tmp.rglob("*"):  # save_pretrained writes private (0600) files; an export is for sharing
            os.chmod(f, (0o777 if f.is_dir() else 0o666) & ~umask)
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
