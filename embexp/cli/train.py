"""``embexp-train``: fine-tune a bi-encoder; returns the optimized metric (for sweeps).

embexp-train                                   # quickstart: shipped data, MiniLM, LoRA
embexp-train experiment=scifact_lora data.path=../shared/datasets/scifact
embexp-train -m loss.temperature=0.02,0.05 adapter=lora,full
embexp-train hparams_search=temperature_x_loss # Optuna sweep (see sweeps/README.md)
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from embexp.cli.common import CONF_DIR, clean_errors, entry_point, run_dir, setup_env


def objective(record: dict, key) -> float | list | None:
    """``optimized_metric`` from a run record: one key, or a list of keys (multi-objective),
    each looked up in ``metrics`` or, as ``cost/NAME``, in ``cost``."""

    def one(k: str):
        if k in record.get("metrics", {}):
            return record["metrics"][k]
        if k.startswith("cost/"):
            return record.get("cost", {}).get(k[len("cost/") :])
        return None

    if not key:
        return record["metrics"].get(record["primary_metric"])
    if isinstance(key, str):
        return one(key)
    return [one(str(k)) for k in key]


def show(record: dict) -> None:
    """The baseline-vs-fine-tuned table of a finished run, per slice."""
    from embexp.report.table import metrics_table, print_table

    split = record["data"]["eval_split"]
    from embexp.eval.keys import BASELINE, FINAL, split_stage

    columns = {BASELINE: "baseline", FINAL: "fine-tuned"}
    by = {name: {} for name in columns.values()}
    for k, v in record["metrics"].items():
        stage, rest = split_stage(k)
        if stage is not None:
            by[columns[stage]][rest] = v
    title = f"{record['data']['name']}: baseline vs fine-tuned ({record['cost'].get('adapter')}, {split})"
    print_table(metrics_table(by, split, title=title))
    sel = record.get("model_selection") or {}
    if sel:
        print(
            f"model selection on {sel['monitor']}: base {sel['base']:.4f}, best epoch {sel['best_epoch']} "
            f"{sel['best_epoch_score']:.4f} -> kept: {sel['selected']}"
        )
        if sel.get("final_vs_best"):
            print(f"  {sel['final_vs_best']['reason']}")
    for w in record.get("warnings") or []:
        print(f"WARNING: {w}")


def _train(cfg: DictConfig):
    from embexp.train.run import train

    record = train(cfg, run_dir())
    show(record)
    return objective(record, cfg.get("optimized_metric"))


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def _main(cfg: DictConfig) -> float | list | None:
    setup_env()
    if "optuna" in cfg:  # a trial of an Optuna sweep: errors become the trial's FAIL reason, not exit(2)
        from embexp.sweep.trial import run_trial

        return run_trial(cfg, _train, run_dir())
    return clean_errors(_train)(cfg)


main = entry_point(_main)

if __name__ == "__main__":
    main()
