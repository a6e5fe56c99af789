"""``embexp-train``: fine-tune a bi-encoder; returns the optimized metric (for sweeps).

    embexp-train                                   # quickstart: shipped data, MiniLM, LoRA
    embexp-train experiment=scifact_lora data.path=../shared/datasets/scifact
    embexp-train -m loss.temperature=0.02,0.05 adapter=lora,full
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from embexp.cli.common import CONF_DIR, clean_errors, run_dir, setup_env


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
@clean_errors
def main(cfg: DictConfig) -> float | None:
    setup_env()
    from embexp.train.run import train

    record = train(cfg, run_dir())
    key = cfg.get("optimized_metric")
    if key:
        return record["metrics"].get(key)
    return record["metrics"].get(record["primary_metric"])


if __name__ == "__main__":
    main()
