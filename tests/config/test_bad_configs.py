"""Bad configs fail before anything is loaded, with a ConfigError naming the key.

One in-process case table: each case composes ``conf/<task>.yaml`` with its overrides
(``hydra.compose``); a failure there (a typed schema rejects a value or key, a group option
does not exist) is turned into a ConfigError by ``config_error``, otherwise
``check_config(cfg, task)`` must raise it. Two subprocess cases pin what the CLI prints for
an error Hydra raises while composing.
"""

import pytest

from embexp.config import config_error
from embexp.errors import ConfigError
from embexp.train.preflight import check_config

from conftest import ROOT, compose_config, run_cli

CONF = ROOT / "conf"
MINED = ["negatives=static"]

CASES = [
    # (id, overrides, key named in the error[, task])
    ("negative temperature", ["loss.temperature=-0.1"], "loss.temperature"),
    ("temperature not a number", ["loss.temperature=abc"], "loss.temperature"),
    ("triplet margin < 0", ["loss=triplet", "loss.margin=-1"], "loss.margin"),
    ("temperature on triplet", ["loss=triplet", "loss.temperature=0.1"], "loss.temperature"),
    ("loss key typo", ["loss.temprature=0.1"], "loss.temprature"),
    ("loss key typo added", ["+loss.temprature=0.1"], "loss.temprature"),
    ("loss target missing", ["loss._target_=embexp.losses.NoSuchLoss"], "loss._target_"),
    ("LoRA r=0", ["adapter.r=0"], "adapter.r"),
    ("LoRA r=abc", ["adapter.r=abc"], "adapter.r"),
    ("LoRA r=2.5", ["adapter.r=2.5"], "adapter.r"),
    ("LoRA alpha=0", ["adapter.alpha=0"], "adapter.alpha"),
    ("LoRA alpha<0", ["adapter.alpha=-8"], "adapter.alpha"),
    ("LoRA dropout=1.5", ["adapter.dropout=1.5"], "adapter.dropout"),
    ("LoRA no targets", ["adapter.target_modules=[]"], "adapter.target_modules"),
    ("LoRA key on full", ["adapter=full", "+adapter.r=8"], "adapter.r"),
    ("last_layer n_layers=0", ["adapter=last_layer", "adapter.n_layers=0"], "adapter.n_layers"),
    ("unknown adapter option", ["adapter=prefix"], "adapter"),
    ("unknown adapter kind", ["adapter.kind=prefix"], "adapter.kind"),
    ("unknown pooling", ["model.pooling=max"], "model.pooling"),
    ("max length 0", ["model.query_max_length=0"], "model.query_max_length"),
    ("train_attention", ["model.train_attention=flash"], "model.train_attention"),
    ("pad_to_multiple_of 0", ["model.pad_to_multiple_of=0"], "model.pad_to_multiple_of"),
    ("unpad_kernel", ["model.unpad_kernel=flash"], "model.unpad_kernel"),
    ("unpad not a bool", ["model.unpad=sometimes"], "model.unpad"),
    ("window reversed", [*MINED, "negatives.window=[5,2]"], "negatives.window"),
    ("window 0-based", [*MINED, "negatives.window=[0,5]"], "negatives.window"),
    ("window not ints", [*MINED, "negatives.window=[a,5]"], "negatives.window[0]"),
    ("depth < window end", [*MINED, "negatives.depth=10"], "negatives.depth"),
    ("unknown sampling", [*MINED, "negatives.sampling=hardest"], "negatives.sampling"),
    ("mined n_negatives=0", [*MINED, "negatives.n_negatives=0"], "negatives.n_negatives"),
    ("negative n_negatives", ["negatives.n_negatives=-1"], "negatives.n_negatives"),
    ("refresh_every=0", ["negatives=iterative", "negatives.refresh_every=0"], "negatives.refresh_every"),
    ("warmup < 0", [*MINED, "negatives.warmup_epochs=-1"], "negatives.warmup_epochs"),
    ("negatives file", [*MINED, "negatives.file=/nonexistent/n.jsonl"], "negatives.file"),
    ("veto hook", [*MINED, "negatives.veto_hook=nonexistent_module:veto"], "negatives.veto_hook"),
    ("unknown negatives kind", ["negatives.kind=hard"], "negatives.kind"),
    ("lr=0", ["optimizer.lr=0"], "optimizer.lr"),
    ("lr<0", ["optimizer.lr=-1e-3"], "optimizer.lr"),
    ("optimizer key typo", ["+optimizer.lrr=0.1"], "optimizer.lrr"),
    ("scheduler key typo", ["+scheduler.warmup_ratios=0.1"], "scheduler.warmup_ratios"),
    ("max_epochs=abc", ["trainer.max_epochs=abc"], "trainer.max_epochs"),
    ("max_epochs=0", ["trainer.max_epochs=0"], "trainer.max_epochs"),
    ("Lightning's max_steps", ["+trainer.max_steps=50"], "trainer.max_steps"),
    ("max_epoch typo", ["+trainer.max_epoch=3"], "trainer.max_epoch"),
    ("max_epoch typo, no +", ["trainer.max_epoch=3"], "trainer.max_epoch"),
    ("precision", ["trainer.precision=half"], "trainer.precision"),
    ("gradient clip", ["trainer.gradient_clip_val=big"], "trainer.gradient_clip_val"),
    ("callback key typo", ["+callbacks.early_stopping.patiense=3"], "callbacks.early_stopping.patiense"),
    ("top-level typo", ["+los.temperature=0.1"], "los"),
    ("dev_fraction quickstart", ["data.dev_fraction=1.5"], "data.dev_fraction"),
    ("dev_fraction beir", ["data=beir", "data.path=/tmp", "data.dev_fraction=0"], "data.dev_fraction"),
    ("dev_fraction abc", ["data.dev_fraction=abc"], "data.dev_fraction"),
    ("test_fraction", ["data=pairs", "data.path=x.jsonl", "data.test_fraction=1"], "data.test_fraction"),
    ("beir without path", ["data=beir"], "data.path"),
    ("leakage policy", ["data.leakage=maybe"], "data.leakage"),
    ("unknown data kind", ["data.kind=csv"], "data.kind"),
    ("batch_size=1", ["train.batch_size=1"], "train.batch_size"),
    ("batch_size=abc", ["train.batch_size=abc"], "train.batch_size"),
    ("train key typo", ["+train.batch=8"], "train.batch"),
    ("group_by_length=0", ["train.group_by_length=0"], "train.group_by_length"),
    ("retriever", ["eval.retriever=sparse"], "eval.retriever"),
    ("eval dtype", ["eval.dtype=fp8"], "eval.dtype"),
    ("k_values", ["eval.k_values=[0,10]"], "eval.k_values"),
    ("model path", ["model.name_or_path=/nonexistent/model"], "model.name_or_path"),
    ("model path, relative", ["model.name_or_path=./no/such/model"], "model.name_or_path"),
    ("model folder w/o config", [f"model.name_or_path={CONF}"], "model.name_or_path"),
    ("hub id offline", ["model.name_or_path=nobody-xyz/no-such-model"], "model.name_or_path"),
    ("checkpoint w/o path", ["model=checkpoint"], "model.name_or_path"),
    ("eval: dev_fraction", ["data.dev_fraction=2"], "data.dev_fraction", "eval"),
    ("eval: model path", ["model.name_or_path=/nonexistent"], "model.name_or_path", "eval"),
    ("eval: top-level typo", ["+evl.retriever=bm25"], "evl", "eval"),
    ("mine: in_batch", ["negatives=in_batch"], "negatives.kind", "mine"),
    ("mine: window", ["negatives.window=[5,2]"], "negatives.window", "mine"),
]


def _error(overrides, task) -> ConfigError:
    try:
        cfg = compose_config(overrides, task)
    except Exception as e:  # noqa: BLE001 - composition failed: it must name the key
        err = config_error(e)
        assert err is not None, f"composition failed without a key: {e!r}"
        return err
    with pytest.raises(ConfigError) as e:
        check_config(cfg, task=task)
    return e.value


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_config_names_the_key(case, monkeypatch, tmp_path):
    _, overrides, key, *task = case
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("EMBEXP_ROOT", str(tmp_path))  # nothing may be written: checked below
    err = _error(overrides, task[0] if task else "train")
    assert err.key == key, str(err)
    assert str(err).startswith(f"config key '{key}': "), str(err)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "overrides, words",
    [
        (["+trainer.max_epoch=3"], ["did you mean 'max_epochs'", "lightning.pytorch.Trainer"]),
        (["+los.temperature=0.1"], ["did you mean 'loss'"]),
        (["loss.temprature=0.1"], ["did you mean 'temperature'"]),
        (["+loss.temprature=0.1"], ["did you mean 'temperature'"]),
        (["trainer.max_epochs=abc"], ["int or null", "'abc'"]),
        (["trainer.precision=half"], ["'bf16-mixed'", "or 'auto'", "'half'"]),
        (["model.name_or_path=/nonexistent/model"], ["no such folder /nonexistent/model", "model=minilm-l6"]),
        (["model.name_or_path=nobody-xyz/no-such-model"], ["HF_HUB_OFFLINE", "model=minilm-l6", "local"]),
        (["data=beir"], ["data.path=../shared/datasets/scifact"]),
        (["adapter=prefix"], ["'prefix'", "full, last_layer, lora"]),
    ],
)
def test_messages_say_what_to_do(overrides, words, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    msg = str(_error(overrides, "train"))
    for w in words:
        assert w in msg, (w, msg)


def test_eval_with_bm25_needs_no_model():
    cfg = compose_config(["eval.retriever=bm25", "model.name_or_path=/nonexistent"], "eval")
    check_config(cfg, task="eval")


def test_tiny_model_short_name_passes_without_building_it(tmp_path, monkeypatch):
    monkeypatch.setenv("EMBEXP_CACHE", str(tmp_path))
    cfg = compose_config(["model=tiny"])
    check_config(cfg, task="train")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "override, key", [("adapter.r=abc", "adapter.r"), ("adapter=prefix", "adapter/prefix")]
)
def test_cli_reports_a_composition_error_without_traceback(override, key, tmp_path):
    """Hydra composes before the entry point runs: it prints its message (naming the key) and
    exits 1; nothing is written."""
    p = run_cli(
        "embexp.cli.train", "model=tiny", "logger=none", override, f"hydra.run.dir={tmp_path / 'run'}"
    )
    assert p.returncode != 0
    assert key in p.stderr and "Traceback" not in p.stderr, p.stderr[-2000:]
    assert not (tmp_path / "run").exists()
