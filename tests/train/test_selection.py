"""Model selection (embexp.train.selection): the final weights unless the best dev epoch beats them
significantly, the base model as a candidate, and a run that hands over what it says it did."""

from __future__ import annotations

from types import SimpleNamespace as NS

import numpy as np
import pytest

from embexp.errors import ConfigError
from embexp.train import run as run_mod
from embexp.train.module import BiEncoderModule
from embexp.train.selection import Selection

from conftest import TINY, compose_config

N = 8  # dev queries of the scripted cases: 2^8 sign patterns, so the test's p is exact


def _module(per_epoch: dict[int, list[float]], changed=False, metric="mrr@10"):
    history = [{"epoch": e, "step": e + 1, f"dev/{metric}": float(np.mean(v))} for e, v in per_epoch.items()]
    per_query = {e: {f"q{i}": {metric: x} for i, x in enumerate(v)} for e, v in per_epoch.items()}
    encoder = NS(fingerprint=lambda: "after" if changed else "last")
    return NS(dev_history=history, dev_per_query=per_query, last_eval_fingerprint="last", encoder=encoder)


def _trainer(best: float, mode="max", monitor="dev/mrr@10"):
    return NS(checkpoint_callbacks=[NS(monitor=monitor, mode=mode, best_model_score=best)])


def _selection(base: float, rule="final_unless_beaten", monitor="dev/mrr@10", keep=True):
    return Selection(monitor, base, keep, {}, rule, 0.05, seed=0)


LEAD_WITHIN_NOISE = {0: [1, 1, 1, 1, 0, 0, 0, 0], 1: [1, 1, 1, 0, 0, 0, 0, 0.5]}  # +0.0625, 2 queries differ
LEAD_BEYOND_NOISE = {0: [1.0] * N, 1: [0.5] * N}  # every query better: exact p = 2 / 2^8


def test_a_lead_within_dev_noise_keeps_the_final_weights():
    out = _selection(0.1).decide(_trainer(0.5), _module(LEAD_WITHIN_NOISE))
    f = out["final_vs_best"]
    assert out["selected"] == "final (epoch 1)" and out["best_epoch"] == 0 and f["kept"]
    assert f["diff"] == pytest.approx(0.0625) and f["n"] == N
    # two non-zero differences (+1, -0.5): of the 4 sign patterns, 2 give |mean| >= 0.0625
    assert f["p"] == pytest.approx(1.0) and "p = 1 >= 0.05" in f["reason"]


def test_a_significant_lead_keeps_the_best_epoch():
    out = _selection(0.1).decide(_trainer(1.0), _module(LEAD_BEYOND_NOISE))
    f = out["final_vs_best"]
    assert out["selected"] == "epoch 0" and not f["kept"]
    assert f["p"] == pytest.approx(2 / 2**N) and f["diff"] == pytest.approx(0.5)
    assert f["low"] == pytest.approx(0.5) == f["high"]


@pytest.mark.parametrize(
    ("why", "kwargs", "module_kw"),
    [
        ("the final epoch does not beat the base model", {"base": 0.45}, {}),
        ("the weights changed after the last validation", {"base": 0.1}, {"changed": True}),
    ],
)
def test_the_best_epoch_is_kept_when_the_final_weights_are_not_a_safe_choice(why, kwargs, module_kw):
    out = _selection(**kwargs).decide(_trainer(0.5), _module(LEAD_WITHIN_NOISE, **module_kw))
    assert out["selected"] == "epoch 0" and not out["final_vs_best"]["kept"]
    assert why in out["final_vs_best"]["reason"] and "p" not in out["final_vs_best"]


def test_rule_best_and_a_best_final_epoch_skip_the_test():
    out = _selection(0.1, rule="best").decide(_trainer(0.5), _module(LEAD_WITHIN_NOISE))
    assert out["selected"] == "epoch 0" and "final_vs_best" not in out
    rising = {0: [0.5] * N, 1: [1.0] * N}
    out = _selection(0.1).decide(_trainer(1.0), _module(rising))
    assert out["selected"] == "epoch 1" and "final_vs_best" not in out


def test_a_metric_to_minimise_is_tested_in_its_own_direction():
    # lower is better: epoch 0 (0.0) leads epoch 1 (0.5) on every query: beyond noise
    low = {0: [0.0] * N, 1: [0.5] * N}
    out = _selection(1.0, monitor="dev/loss").decide(
        _trainer(0.0, mode="min", monitor="dev/loss"), _module(low, metric="loss")
    )
    assert out["selected"] == "epoch 0" and out["final_vs_best"]["diff"] == pytest.approx(-0.5)
    assert out["final_vs_best"]["low"] <= out["final_vs_best"]["high"] < 0
    noisy = {0: [0.0, 0.0, 0.0, 0.5, 0.5, 0.5, 0.5, 0.5], 1: [0.0, 0.0, 0.0, 1.0, 0.5, 0.5, 0.5, 0.0]}
    out = _selection(1.0, monitor="dev/loss").decide(
        _trainer(0.3125, mode="min", monitor="dev/loss"), _module(noisy, metric="loss")
    )
    assert out["selected"] == "final (epoch 1)"


def test_the_base_model_still_wins_when_no_epoch_beats_it():
    out = _selection(0.9).decide(_trainer(0.5), _module(LEAD_WITHIN_NOISE))
    assert out["selected"] == "base" and out["base_wins"] and "final_vs_best" not in out
    assert "NO EPOCH BEATS THE BASE MODEL" in out["warning"]


def test_per_query_dev_values_travel_in_checkpoints(tiny_encoder):
    import torch

    module = BiEncoderModule(tiny_encoder, torch.nn.Identity(), optimizer=None)
    module.dev_history, module.dev_per_query = [{"epoch": 0}], {0: {"q1": {"mrr@10": 0.5}}}
    module.last_eval_fingerprint = "validated"  # a resumed run knows which weights it validated last
    ckpt: dict = {}
    module.on_save_checkpoint(ckpt)
    resumed = BiEncoderModule(tiny_encoder, torch.nn.Identity(), optimizer=None)
    resumed._trainer = NS(state=NS(fn="fit"))  # a resumed fit
    resumed.on_load_checkpoint({**ckpt, "epoch": 0})
    assert resumed.dev_per_query == module.dev_per_query and resumed.dev_history == module.dev_history
    assert resumed.last_eval_fingerprint == "validated"


@pytest.mark.parametrize(
    "bad", ["train.selection=latest", "train.selection_alpha=0", "train.selection_alpha=1.5"]
)
def test_bad_selection_settings_name_the_key(bad, tmp_path):
    from embexp.train.preflight import check_config

    cfg = _compose([*TINY, bad, f"paths.output_dir={tmp_path}", "run_id=x"])
    with pytest.raises(ConfigError, match=bad.split("=")[0].replace(".", r"\.")):
        check_config(cfg, task="train")


# ---- end to end: a real tiny run whose dev scores are scripted --------------------------------------


_compose = compose_config


class _ScriptedDev:
    """The real dev evaluator, with the monitored metric and its per-query values replaced by a
    script (call 0: the baseline, then one per validation); records the weights of every call."""

    def __init__(self, real, script):
        self.real, self.script, self.fingerprints = real, script, []

    def __call__(self, encoder, **kw):
        result = self.real(encoder, **kw)
        i = len(self.fingerprints)
        self.fingerprints.append(encoder.fingerprint())
        if i < len(self.script):
            values = self.script[i]
            result.per_query = {f"q{j}": {"mrr@10": v} for j, v in enumerate(values)}
            result.metrics = {**result.metrics, "dev/mrr@10": float(np.mean(values))}
        return result

    def __getattr__(self, name):
        return getattr(self.real, name)


@pytest.mark.parametrize(("epochs", "kept"), [(LEAD_WITHIN_NOISE, 1), (LEAD_BEYOND_NOISE, 0)])
def test_a_run_tests_and_saves_the_weights_it_selected(epochs, kept, multi_beir, tmp_path, monkeypatch):
    scripted = {}

    def build(cfg_eval, data, split, **kw):
        real = build_evaluator(cfg_eval, data, split=split, **kw)
        if split != "dev":
            return real
        scripted["dev"] = _ScriptedDev(real, [[0.0] * N, epochs[0], epochs[1]])
        return scripted["dev"]

    build_evaluator = run_mod.build_evaluator
    monkeypatch.setattr(run_mod, "build_evaluator", build)
    out = tmp_path / "run"
    cfg = _compose(
        [*TINY, "data=beir", f"data.path={multi_beir}", "data.dev_fraction=0.2", "trainer.max_epochs=2"]
        + [f"paths.output_dir={out}", "run_id=selection"]
    )
    rec = run_mod.train(cfg, out)
    sel, fp = rec["model_selection"], scripted["dev"].fingerprints
    assert len(fp) == 4 and fp[1] != fp[2]  # baseline, epoch 0, epoch 1, the final dev evaluation
    assert sel["best_epoch"] == 0 and sel["final_vs_best"]["kept"] == (kept == 1)
    assert sel["selected"] == ("final (epoch 1)" if kept else "epoch 0") and rec["cost"]["best_epoch"] == kept
    assert fp[3] == fp[1 + kept]  # the final evaluation scored the selected weights ...
    assert rec["cost"]["selected"] == sel["selected"]
    from embexp.model.encoder import BiEncoder

    saved = BiEncoder.load(out / "model")  # ... and model/ holds them
    assert saved.fingerprint() == fp[1 + kept]
