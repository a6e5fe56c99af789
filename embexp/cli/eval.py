"""``embexp-eval``: evaluate a base model, checkpoint or adapter (dense, bm25 or hybrid).

embexp-eval data=beir data.path=../shared/datasets/scifact data.split=test model=minilm-l6
"""

from __future__ import annotations

import logging
import time

import hydra
from omegaconf import DictConfig, OmegaConf

from embexp.cli.common import CONF_DIR, clean_errors, entry_point, run_dir, setup_env
from embexp.data.prepare import prepare_data
from embexp.eval.build import build_evaluator
from embexp.model.encoder import build_encoder
from embexp.report.table import metrics_table, print_table
from embexp.tracking.wandb import log_eval, wandb_run
from embexp.train.preflight import check_config
from embexp.utils.io import atomic_write_json, atomic_write_jsonl
from embexp.utils.provenance import code_version

log = logging.getLogger("embexp.eval")


def evaluate(cfg: DictConfig) -> dict[str, float]:
    rc = check_config(cfg, task="eval")
    out = run_dir()
    data = prepare_data(rc.data, need_train=False)
    for note in data.notes:
        log.info(note)
    split = rc.data.split
    evaluator = build_evaluator(rc.eval, data, split=split, cache_dir=cfg.paths.cache_dir)
    encoder = build_encoder(rc.model) if rc.eval.retriever != "bm25" else None
    t = time.perf_counter()
    result = evaluator(encoder)
    wall = time.perf_counter() - t
    metrics = dict(result.metrics)
    record = {
        "metrics": metrics,
        "primary_metric": result.primary_metric,
        "retriever": rc.eval.retriever,
        "model": OmegaConf.to_container(cfg.model, resolve=True),
        "encoder_spec": vars(encoder.spec) if encoder is not None else None,
        "encoder_fingerprint": encoder.fingerprint() if encoder is not None else None,
        "data": data.summary(),
        "timings": {**result.timings, "wall_s": wall},
        "code": code_version(),
        "seed": cfg.seed,
    }
    atomic_write_jsonl(out / "per_query.jsonl", result.per_query_rows(top=rc.eval.per_query_top))
    atomic_write_json(out / "metrics.json", record)
    OmegaConf.save(cfg, out / "config.yaml", resolve=True)
    print_table(
        metrics_table(
            {rc.eval.retriever: metrics},
            split,
            title=f"{data.dataset.name} / {split} ({len(evaluator.query_ids)} queries)",
        )
    )
    log.info(
        "wrote %s (%s = %.4f, %.1f s)", out / "metrics.json", result.primary_metric, result.primary, wall
    )
    with wandb_run(
        cfg.get("logger"), run_dir=out, name=str(cfg.run_id), config=OmegaConf.to_container(cfg, resolve=True)
    ) as run:
        log_eval(run, result)
    return metrics


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="eval")
@clean_errors
def _main(cfg: DictConfig) -> float:
    setup_env()
    metrics = evaluate(cfg)
    return metrics[f"{cfg.data.split}/{cfg.eval.primary}"]


main = entry_point(_main)

if __name__ == "__main__":
    main()
