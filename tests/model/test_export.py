"""embexp-export: a saved model (LoRA, full or last_layer fine-tune) loads in
sentence-transformers and embeds exactly like embexp; bad input fails in one line."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from embexp.errors import DataError
from embexp.model.adapters import apply_adapter
from embexp.model.encoder import BiEncoder
from embexp.model.export import export

from conftest import encoder_spec, run_cli

SentenceTransformer = pytest.importorskip("sentence_transformers").SentenceTransformer

ATOL = 1e-5
# short enough to fit every max length (embexp truncates queries at query_max_length,
# sentence-transformers at passage_max_length: they agree below both)
TEXTS = [
    "a",
    "how do i get my money back",
    "Refunds are issued to the original card within 5 business days.",
    "R01 means insufficient funds; R02 means the account is closed.",
    "Hold the pair button for 5 seconds until the light blinks.",
]
LORA = {"kind": "lora", "r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["query", "value"]}


def perturb(
    encoder: BiEncoder, select=lambda name: True, scale: float = 0.5, additive: bool = False, seed: int = 1
) -> int:
    """Overwrite (or shift) the trainable parameters that ``select`` picks with random values."""
    g = torch.Generator().manual_seed(seed)
    n = 0
    with torch.no_grad():
        for name, p in encoder.backbone.named_parameters():
            if p.requires_grad and select(name):
                noise = torch.randn(p.shape, generator=g) * scale
                p.add_(noise) if additive else p.copy_(noise)
                n += 1
    assert n > 0, "nothing perturbed"
    return n


def load_st(out):
    return SentenceTransformer(str(out), device="cpu")


def max_diff(a, b) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(np.asarray(a) - np.asarray(b)).max())


def finished(run):
    (run / "metrics.json").write_text('{"status": "finished"}')


@pytest.mark.parametrize("state", [None, "failed", "pruned"])
def test_export_refuses_an_unfinished_run(state, tiny_encoder, tiny_model_dir, tmp_path):
    tiny_encoder.save(tmp_path / "run" / "model", base_model=str(tiny_model_dir))
    if state is not None:
        (tmp_path / "run" / "metrics.json").write_text(json.dumps({"status": state}))
    with pytest.raises(
        DataError, match="metrics.json is missing" if state is None else f"the run is '{state}'"
    ):
        export(tmp_path / "run", tmp_path / "st")
    assert not (tmp_path / "st").exists()


def test_lora_export_matches_embexp(tiny_encoder, tiny_model_dir, tmp_path):
    base = tiny_encoder.encode(TEXTS, "passage", dtype="fp32")
    tiny_encoder.spec.query_prefix = "query: "
    info = apply_adapter(tiny_encoder, LORA)
    perturb(tiny_encoder, lambda n: "lora_B" in n)  # LoRA B starts at zero: make the adapter do something
    tiny_encoder.save(tmp_path / "run" / "model", base_model=str(tiny_model_dir))
    finished(tmp_path / "run")
    assert (tmp_path / "run" / "model" / "adapter_config.json").exists()

    out = tmp_path / "st"
    res = export(tmp_path / "run", out)  # a run directory: the model is found in model/
    assert res.merged_adapter and res.pooling == "mean"
    assert not (out / "adapter_config.json").exists() and (out / "model.safetensors").exists()

    ours_p = tiny_encoder.encode(TEXTS, "passage", dtype="fp32")
    ours_q = tiny_encoder.encode(TEXTS, "query", dtype="fp32")
    assert max_diff(ours_p, base) > 1e-3, "the perturbed adapter should change the embeddings"
    st = load_st(out)
    assert max_diff(st.encode(TEXTS), ours_p) < ATOL
    assert max_diff(st.encode(TEXTS, prompt_name="query"), ours_q) < ATOL
    assert max_diff(st.encode_query(TEXTS), ours_q) < ATOL
    assert max_diff(st.encode_document(TEXTS), ours_p) < ATOL
    assert max_diff(st.encode(TEXTS), ours_q) > 1e-3  # the query prompt matters
    assert st.max_seq_length == 64 and st.default_prompt_name is None
    assert st.prompts["query"] == "query: " and st.prompts["document"] == ""

    # the export is an embexp model too (plain weights now, same spec)
    again = BiEncoder.load(out)
    assert not hasattr(again.backbone, "merge_and_unload")
    assert again.spec.query_prefix == "query: " and again.spec.query_max_length == 32
    assert max_diff(again.encode(TEXTS, "query", dtype="fp32"), ours_q) < ATOL
    assert info.trainable_params < info.total_params


def test_export_files_follow_the_sentence_transformers_layout(tiny_encoder, tiny_model_dir, tmp_path):
    tiny_encoder.spec.query_prefix = "query: "
    tiny_encoder.spec.passage_prefix = "passage: "
    tiny_encoder.save(tmp_path / "m", base_model=str(tiny_model_dir))
    out = export(tmp_path / "m", tmp_path / "st").out
    modules = json.loads((out / "modules.json").read_text())
    assert [m["type"].rsplit(".", 1)[-1] for m in modules] == ["Transformer", "Pooling", "Normalize"]
    assert [m["path"] for m in modules] == ["", "1_Pooling", "2_Normalize"]
    assert json.loads((out / "sentence_bert_config.json").read_text()) == {
        "max_seq_length": 64,
        "do_lower_case": False,
    }
    pooling = json.loads((out / "1_Pooling" / "config.json").read_text())
    assert (
        pooling["pooling_mode"] == "mean"
        and pooling["pooling_mode_mean_tokens"]
        and not pooling["pooling_mode_cls_token"]
    )
    assert pooling["word_embedding_dimension"] == tiny_encoder.dim and pooling["include_prompt"] is True
    cfg = json.loads((out / "config_sentence_transformers.json").read_text())
    assert (
        cfg["prompts"] == {"query": "query: ", "document": "passage: "} and cfg["default_prompt_name"] is None
    )
    spec = json.loads((out / "embexp_encoder.json").read_text())
    assert spec["name_or_path"] == str(out) and spec["base_model"] == str(tiny_model_dir)
    assert spec["passage_prefix"] == "passage: " and spec["merged_adapter"] is False
    assert not list(tmp_path.glob(".st.tmp*")), "temporary folder left behind"


def test_full_finetune_export_via_cli(tiny_encoder, tiny_model_dir, tmp_path):
    tiny_encoder.spec.query_prefix = "query: "
    tiny_encoder.spec.passage_prefix = "passage: "
    apply_adapter(tiny_encoder, {"kind": "full"})
    perturb(tiny_encoder, scale=0.05, additive=True)
    tiny_encoder.save(tmp_path / "run" / "model", base_model=str(tiny_model_dir))
    finished(tmp_path / "run")
    p = run_cli("embexp.cli.export", str(tmp_path / "run"), str(tmp_path / "st"))
    assert p.returncode == 0, p.stderr[-3000:]
    assert "full weights" in p.stdout

    st = load_st(tmp_path / "st")
    ours_p = tiny_encoder.encode(TEXTS, "passage", dtype="fp32")
    ours_q = tiny_encoder.encode(TEXTS, "query", dtype="fp32")
    # a non-empty passage prefix is the "document" prompt
    assert max_diff(st.encode(TEXTS, prompt_name="document"), ours_p) < ATOL
    assert max_diff(st.encode_document(TEXTS), ours_p) < ATOL
    assert max_diff(st.encode(TEXTS, prompt_name="query"), ours_q) < ATOL
    # the weights were saved as trained (not the base model's)
    base = BiEncoder.from_spec(
        encoder_spec(str(tiny_model_dir), query_prefix="query: ", passage_prefix="passage: ")
    )
    assert max_diff(base.encode(TEXTS, "passage", dtype="fp32"), ours_p) > 1e-3
    # existing OUT: refused without --overwrite, replaced with it
    p2 = run_cli("embexp.cli.export", str(tmp_path / "run"), str(tmp_path / "st"))
    assert p2.returncode == 2 and "--overwrite" in p2.stderr and "Traceback" not in p2.stderr


@pytest.mark.parametrize("pooling, normalize, st_mode", [("cls", True, "cls"), ("last", False, "lasttoken")])
def test_cls_and_last_pooling_export(pooling, normalize, st_mode, tiny_model_dir, tmp_path):
    enc = BiEncoder.from_spec(
        encoder_spec(
            str(tiny_model_dir),
            pooling=pooling,
            normalize=normalize,
            query_prefix="q: ",
            query_max_length=32,
            passage_max_length=64,
        )
    )
    apply_adapter(enc, {"kind": "last_layer", "n_layers": 1})
    perturb(enc, scale=0.05, additive=True)
    enc.save(tmp_path / "m", base_model=str(tiny_model_dir))
    out = export(tmp_path / "m", tmp_path / "st").out
    assert json.loads((out / "1_Pooling" / "config.json").read_text())["pooling_mode"] == st_mode
    types = [m["type"].rsplit(".", 1)[-1] for m in json.loads((out / "modules.json").read_text())]
    assert types == (["Transformer", "Pooling", "Normalize"] if normalize else ["Transformer", "Pooling"])
    st = load_st(out)
    assert max_diff(st.encode(TEXTS), enc.encode(TEXTS, "passage", dtype="fp32")) < ATOL
    assert max_diff(st.encode(TEXTS, prompt_name="query"), enc.encode(TEXTS, "query", dtype="fp32")) < ATOL


def test_export_refuses_unsafe_targets(tiny_encoder, tiny_model_dir, tmp_path):
    tiny_encoder.save(tmp_path / "run" / "model", base_model=str(tiny_model_dir))
    finished(tmp_path / "run")
    for bad in (tmp_path / "run" / "model", tmp_path / "run" / "model" / "sub", tmp_path):
        with pytest.raises(DataError, match="refusing to export here: .* (model|run) folder"):
            export(tmp_path / "run", bad, overwrite=True)
    assert (tmp_path / "run" / "model" / "embexp_encoder.json").exists()


@pytest.mark.parametrize("case", ["missing", "empty", "file"])
def test_bad_run_dir_is_a_one_line_error(case, tmp_path):
    target = {"missing": tmp_path / "nope", "empty": tmp_path / "empty", "file": tmp_path / "f.txt"}[case]
    if case == "empty":
        (target / "checkpoints").mkdir(parents=True)
    if case == "file":
        target.write_text("x")
    p = run_cli("embexp.cli.export", str(target), str(tmp_path / "out"))
    assert p.returncode == 2, p.stderr[-2000:]
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(target) in lines[0], p.stderr
    assert "Traceback" not in p.stderr
    assert not (tmp_path / "out").exists()


# ---- --overwrite replaces only a previous export; the export is swapped in atomically -------------
def _run(tiny_encoder, tiny_model_dir, root):
    run = root / "run"
    tiny_encoder.save(run / "model", base_model=str(tiny_model_dir))
    finished(run)
    return run


def _user_folder(path):
    path.mkdir(parents=True, exist_ok=True)
    (path / "notes.txt").write_text("mine")
    (path / "data").mkdir(exist_ok=True)
    (path / "data" / "x.csv").write_text("1,2")
    return path


def _untouched(path):
    return (path / "notes.txt").read_text() == "mine" and (path / "data" / "x.csv").read_text() == "1,2"


def test_overwrite_refuses_the_working_folder_and_its_parents(
    tiny_encoder, tiny_model_dir, tmp_path, monkeypatch
):
    run = _run(tiny_encoder, tiny_model_dir, tmp_path)
    work = _user_folder(tmp_path / "work" / "here")
    monkeypatch.chdir(work)
    with pytest.raises(DataError, match="is the current working folder"):
        export(run, ".", overwrite=True)
    with pytest.raises(DataError, match="is a parent of the current working folder"):
        export(run, "..", overwrite=True)
    assert _untouched(work) and sorted(p.name for p in work.iterdir()) == ["data", "notes.txt"]


@pytest.mark.parametrize(
    "where, message",
    [
        ("run", "is the run folder"),
        ("run/checkpoints", "lies inside the run folder"),
        ("run/model", "is the model folder"),
        ("run/model/sub", "lies inside the model folder"),
        (".", "is a parent of the run folder"),
    ],
)
def test_overwrite_never_touches_the_run(where, message, tiny_encoder, tiny_model_dir, tmp_path):
    run = _run(tiny_encoder, tiny_model_dir, tmp_path)
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.ckpt").write_text("ckpt")
    with pytest.raises(DataError, match=message):
        export(run, tmp_path / where, overwrite=True)
    assert (run / "metrics.json").exists() and (run / "checkpoints" / "last.ckpt").read_text() == "ckpt"
    assert (run / "model" / "embexp_encoder.json").exists()


def test_overwrite_refuses_a_folder_that_is_not_an_export(tiny_encoder, tiny_model_dir, tmp_path):
    run = _run(tiny_encoder, tiny_model_dir, tmp_path)
    out = _user_folder(tmp_path / "out")
    with pytest.raises(DataError) as e:
        export(run, out, overwrite=True)
    msg = str(e.value)
    assert str(out) in msg and "not a previous embexp export" in msg and "data/, notes.txt" in msg
    assert "choose a new or empty folder" in msg and _untouched(out)


def test_overwrite_replaces_a_previous_export_only(tiny_encoder, tiny_model_dir, tmp_path):
    run = _run(tiny_encoder, tiny_model_dir, tmp_path)
    out = tmp_path / "st"
    export(run, out)
    manifest = json.loads((out / "embexp_export.json").read_text())
    assert manifest["format"] == "embexp-export" and manifest["run"] == str(run.resolve())
    assert manifest["source"] == str((run / "model").resolve()) and manifest["created"]
    on_disk = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert manifest["files"] == on_disk
    with pytest.raises(DataError, match="holds a previous export of .*pass --overwrite"):
        export(run, out)
    (out / "model.safetensors").write_text("stale")  # a file the new export must replace
    export(run, out, overwrite=True)
    assert (out / "model.safetensors").read_bytes() != b"stale"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".st")] == []  # no tmp / aside left
    (out / "my-eval.json").write_text("{}")  # the user's own file in an export: not ours to delete
    with pytest.raises(DataError, match="also files the export did not write: my-eval.json"):
        export(run, out, overwrite=True)
    assert (out / "my-eval.json").exists()


def test_a_failed_export_keeps_the_previous_one(tiny_encoder, tiny_model_dir, tmp_path, monkeypatch):
    import embexp.model.export as ex

    run = _run(tiny_encoder, tiny_model_dir, tmp_path)
    out = tmp_path / "st"
    export(run, out)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}

    def half_then_fail(encoder, folder, **kw):
        (Path(folder) / "config.json").write_text("half")
        raise OSError("disk full")

    monkeypatch.setattr(ex, "export_encoder", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        export(run, out, overwrite=True)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".st")] == []
    with pytest.raises(OSError, match="disk full"):
        export(run, tmp_path / "new")
    assert not (tmp_path / "new").exists()
    monkeypatch.undo()

    real_replace = os.replace

    def swap_fails(src, dst):  # the new export cannot be renamed into place
        if Path(src).name.startswith(".st.tmp"):
            raise OSError("rename failed")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", swap_fails)
    with pytest.raises(OSError, match="rename failed"):
        export(run, out, overwrite=True)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".st")] == []


def test_cli_export_to_the_working_folder_is_refused_in_one_line(tiny_encoder, tiny_model_dir, tmp_path):
    import subprocess
    import sys

    from conftest import ROOT

    run = _run(tiny_encoder, tiny_model_dir, tmp_path)
    work = _user_folder(tmp_path / "work")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    p = subprocess.run(
        [sys.executable, "-m", "embexp.cli.export", str(run), ".", "--overwrite"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 2, p.stderr[-2000:]
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "is the current working folder" in lines[0], p.stderr
    assert _untouched(work)
