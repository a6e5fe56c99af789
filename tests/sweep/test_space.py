"""Search spaces (Hydra sweep syntax -> Optuna), conditional params, the budget rules, and
that every shipped sweep definition composes. In-process, no training: fast."""

import optuna
import pytest
from omegaconf import OmegaConf

from embexp.errors import ConfigError
from embexp.sweep.space import SearchSpace, override_value
from embexp.sweep.study import counts, pruning_metric_for

from conftest import ROOT, compose_config

optuna.logging.set_verbosity(optuna.logging.WARNING)
SEARCHES = sorted(p.stem for p in (ROOT / "conf" / "hparams_search").glob("*.yaml"))


def test_hydra_sweep_syntax_to_optuna():
    space = SearchSpace.build(
        {
            "loss.temperature": "tag(log, interval(0.01, 0.2))",
            "adapter.r": "int(interval(4, 64))",
            "adapter.alpha": "tag(log, int(interval(8, 128)))",
            "train.batch_size": "range(16, 65, 16)",
            "loss": "choice(infonce, triplet)",
            "seed": 7,
        },
        ["optimizer.lr=interval(1e-5,1e-3)", "data=beir", "seed=3"],
    )
    p = space.params
    assert (p["loss.temperature"].kind, p["loss.temperature"].log) == ("float", True)
    assert (p["adapter.r"].kind, p["adapter.r"].low, p["adapter.r"].high) == ("int", 4, 64)
    assert p["adapter.alpha"].kind == "int" and p["adapter.alpha"].log
    assert (p["train.batch_size"].low, p["train.batch_size"].high, p["train.batch_size"].step) == (
        16,
        64,
        16,
    )  # stop exclusive
    assert p["loss"].choices == ["infonce", "triplet"]
    assert p["optimizer.lr"].kind == "float" and not p["optimizer.lr"].log
    assert space.fixed == {"data": "data=beir", "seed": "seed=3"}  # the command line wins over params
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        s = space.sample(study.ask())
        assert 0.01 <= s["loss.temperature"] <= 0.2 and s["train.batch_size"] in (16, 32, 48, 64)
        assert isinstance(s["adapter.r"], int) and 4 <= s["adapter.r"] <= 64
    ov = space.overrides(s)
    assert "data=beir" in ov and f"loss={s['loss']}" in ov


def test_conditional_params_only_when_their_condition_holds():
    space = SearchSpace.build(
        {
            "adapter": "choice(lora, full, last_layer)",
            "adapter.r": "choice(4, 8)",
            "adapter.n_layers": "choice(1, 2)",
        },
        [],
        {"adapter.r": "adapter==lora", "adapter.n_layers": "adapter in [last_layer]"},
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = set()
    for _ in range(30):
        s = space.sample(study.ask())
        seen.add(s["adapter"])
        assert ("adapter.r" in s) == (s["adapter"] == "lora")
        assert ("adapter.n_layers" in s) == (s["adapter"] == "last_layer")
    assert seen == {"lora", "full", "last_layer"}
    # a condition on a fixed override or on the composed config
    fixed = SearchSpace.build({"adapter.r": "choice(4, 8)"}, ["adapter=full"], {"adapter.r": "adapter!=full"})
    assert fixed.sample(optuna.create_study().ask()) == {}
    base = SearchSpace.build(
        {"adapter.r": "choice(4, 8)"}, [], {"adapter.r": "adapter==lora"}, base_lookup={"adapter": "lora"}.get
    )
    assert "adapter.r" in base.sample(optuna.create_study().ask())


def test_a_finite_space_lists_its_param_sets():
    """Conditions applied (the sweep caps n_trials at the count and fills in unrun sets); none
    listed for a float interval, a custom_search_space or more than the limit."""
    space = SearchSpace.build(
        {
            "adapter": "choice(lora, full, last_layer)",
            "adapter.r": "choice(4, 8)",
            "adapter.n_layers": "int(interval(1, 2))",
        },
        [],
        {"adapter.r": "adapter==lora", "adapter.n_layers": "adapter in [last_layer]"},
    )
    assert space.configs() == [
        {"adapter": "lora", "adapter.r": 4},
        {"adapter": "lora", "adapter.r": 8},
        {"adapter": "full"},
        {"adapter": "last_layer", "adapter.n_layers": 1},
        {"adapter": "last_layer", "adapter.n_layers": 2},
    ]
    assert space.configs(limit=4) is None
    assert SearchSpace.build({"x": "interval(0, 1)"}, []).configs() is None
    assert SearchSpace.build({"x": "tag(log, int(interval(1, 1000)))"}, []).configs()[-1] == {"x": 1000}
    custom = SearchSpace.build({"loss": "choice(infonce, triplet)"}, [], custom="test_space.extra_space")
    assert custom.configs() is None


def extra_space(trial, params):
    """A custom_search_space: define-by-run on top of the sampled params."""
    if params["loss"] == "triplet":
        return {"loss.margin": trial.suggest_float("margin", 0.1, 0.3)}
    return {"loss.symmetric": True}


def test_custom_search_space_adds_overrides():
    space = SearchSpace.build({"loss": "choice(infonce, triplet)"}, [], custom="test_space.extra_space")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(10):
        s = space.sample(study.ask())
        assert ("loss.margin" in s) == (s["loss"] == "triplet") and ("loss.symmetric" in s) == (
            s["loss"] == "infonce"
        )
        assert any(o.startswith("loss.") and "=" in o for o in space.overrides(s))


@pytest.mark.parametrize(
    "params, conditional, key",
    [
        ({"a": "interval(0.5, 0.1)"}, {}, "hydra.sweeper.params.a"),
        ({"a": "tag(log, interval(0, 1))"}, {}, "hydra.sweeper.params.a"),
        ({"a": "choice(1, 2)"}, {"b": "a==1"}, "hydra.sweeper.conditional.b"),
        ({"a": "choice(1, 2)"}, {"a": "a=1"}, "hydra.sweeper.conditional.a"),
        (
            {"a": "choice(1, 2)", "b": "choice(1, 2)"},
            {"a": "b==1", "b": "a==1"},
            "hydra.sweeper.conditional.a",
        ),
    ],
)
def test_bad_space_names_the_key(params, conditional, key):
    with pytest.raises(ConfigError) as e:
        SearchSpace.build(params, [], conditional)
    assert key in str(e.value)


def test_grid_and_override_text():
    space = SearchSpace.build({"loss": "infonce,triplet", "adapter.r": "range(4, 13, 4)"}, [])
    assert space.grid() == {"loss": ["infonce", "triplet"], "adapter.r": [4, 8, 12]}
    with pytest.raises(ConfigError):
        SearchSpace.build({"x": "interval(0, 1)"}, []).grid()
    assert override_value("sqlite:////tmp/a b.db") == "'sqlite:////tmp/a b.db'"
    assert (
        override_value(0.05) == "0.05"
        and override_value("lora") == "lora"
        and override_value("1e-3") == "'1e-3'"
    )
    assert override_value({"n_startup_trials": 2}) == "{n_startup_trials:2}"
    assert (
        pruning_metric_for("final/dev/ndcg@10") == "dev/ndcg@10" == pruning_metric_for("final/test/ndcg@10")
    )


def test_budget_counts_retried_and_not_run_trials_once():
    S = optuna.trial.TrialState

    def mk(n, state, sys=None, user=None):
        value = 1.0 if state == S.COMPLETE else None
        return optuna.trial.create_trial(
            state=state, value=value, system_attrs=sys or {}, user_attrs=user or {}
        )

    trials = [
        mk(0, S.COMPLETE),
        mk(1, S.FAIL),
        mk(2, S.FAIL, user={"fail_reason": "OOM"}),
        mk(3, S.COMPLETE, sys={"failed_trial": 1, "retry_history": [1]}),
        mk(4, S.FAIL, user={"not_run": "budget"}),
    ]
    for i, t in enumerate(trials):
        t.number = i
    c = counts(trials)
    assert (c["complete"], c["failed"], c["retried"], c["not_run"], c["counted"]) == (2, 1, 1, 1, 3)


@pytest.mark.parametrize("name", SEARCHES)
def test_shipped_sweeps_compose_and_parse(name):
    cfg = compose_config([f"hparams_search={name}", "data=beir", "data.path=/x"], hydra=True)
    sw = cfg.hydra.sweeper
    assert sw._target_.endswith("EmbexpOptunaSweeper") and cfg.hydra.mode.name == "MULTIRUN"
    assert cfg.optimized_metric
    assert (
        sw.study_name.startswith(f"{name}-beir-")
        and "${hydra.sweeper.study_name}" in OmegaConf.to_container(cfg.hydra.sweep)["dir"]
    )
    space = SearchSpace.build(OmegaConf.to_container(sw.params), [], OmegaConf.to_container(sw.conditional))
    assert space.params
    directions = [sw.direction] if isinstance(sw.direction, str) else list(sw.direction)
    metrics = [cfg.optimized_metric] if isinstance(cfg.optimized_metric, str) else list(cfg.optimized_metric)
    assert len(directions) == len(metrics)


def test_slurm_launcher_config_composes():
    cfg = compose_config(["hparams_search=lora_rank_alpha_lr", "hydra/launcher=slurm"], hydra=True)
    assert cfg.hydra.launcher._target_.endswith("SlurmLauncher") and cfg.hydra.launcher.gpus_per_node == 1
