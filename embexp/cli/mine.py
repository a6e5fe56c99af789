"""``embexp-mine``: mine hard negatives for the training queries with a model (base,
checkpoint or adapter) and write them, with provenance, to the run directory.

    embexp-mine data=beir data.path=../shared/datasets/scifact model=minilm-l6 hydra.run.dir=OUT
    embexp-mine ... model=checkpoint model.name_or_path=RUN/model negatives.window=[1,30]

Writes ``negatives.jsonl``, ``negatives.provenance.json``, ``mining_rounds.jsonl`` and
``config.yaml``; train on them with ``negatives=static negatives.file=OUT/negatives.jsonl``.
"""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig, OmegaConf

from embexp.cli.common import CONF_DIR, clean_errors, entry_point, run_dir, setup_env
from embexp.train.preflight import check_config
from embexp.utils.provenance import code_version

log = logging.getLogger("embexp.mine")


def mine_cmd(cfg: DictConfig) -> dict:
    from embexp.data.prepare import prepare_data
    from embexp.mining.curriculum import (
        MiningInputs,
        describe_round,
        load_veto,
        mine_with_encoder,
        provenance_record,
        validate_negatives,
    )
    from embexp.mining.files import NEGATIVES_FILE, write_negatives, write_rounds
    from embexp.mining.sources import MiningRequest, load_source, plugin_round
    from embexp.model.encoder import build_encoder
    from embexp.tracking.wandb import wandb_run

    rc = check_config(cfg, task="mine")  # refuses negatives=in_batch
    out = run_dir()
    params = validate_negatives(rc.negatives)
    neg, ev = rc.negatives, rc.eval
    veto_pairs, veto = load_veto(neg)
    data = prepare_data(rc.data)
    for note in data.notes:
        log.info(note)
    encoder = build_encoder(rc.model)
    inputs, cache_dir = MiningInputs.from_data(data), cfg.paths.cache_dir if ev.cache else None
    plugin = load_source(neg)  # negatives.source: a source of yours makes the round
    if plugin is not None:
        request = MiningRequest(data, inputs, encoder, None, 0, None, None, "none", cache_dir)
        result = plugin_round(plugin, neg.source, request)
    else:
        result = mine_with_encoder(
            encoder,
            data,
            params,
            inputs=inputs,
            batch_size=ev.batch_size,
            dtype=ev.dtype,
            cache_dir=cache_dir,
            veto_pairs=veto_pairs,
            veto=veto,
            show_progress=ev.show_progress,
        )
    fp = encoder.fingerprint()
    veto_cfg = {"file": neg.veto_file, "hook": neg.veto_hook}
    prov = provenance_record(
        neg.kind,
        0,
        None,
        encoder,
        fp,
        data,
        params,
        veto_cfg,
        result.stats,
        code_version(),
        {"model": OmegaConf.to_container(cfg.model, resolve=True)}
        | ({"negatives_source": neg.source} if plugin is not None else {}),
    )
    write_negatives(out / NEGATIVES_FILE, result.rows(), prov)
    source = "mined" if plugin is None else str(neg.source)
    rec = {"round": 0, "epoch": None, "source": source, "encoder_fingerprint": fp, **result.stats}
    write_rounds(out, [rec])
    OmegaConf.save(cfg, out / "config.yaml", resolve=True)
    log.info(describe_round(rec))
    log.info("wrote %s", out / NEGATIVES_FILE)
    with wandb_run(
        cfg.get("logger"), run_dir=out, name=str(cfg.run_id), config=OmegaConf.to_container(cfg, resolve=True)
    ) as run:
        if run is not None:
            run.log(
                {
                    f"mining/{k}": v
                    for k, v in rec.items()
                    if isinstance(v, (int, float)) and not isinstance(v, bool)
                }
            )
    return rec


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="mine")
@clean_errors
def _main(cfg: DictConfig) -> None:
    setup_env()
    mine_cmd(cfg)


main = entry_point(_main)

if __name__ == "__main__":
    main()
