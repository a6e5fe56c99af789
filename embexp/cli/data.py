"""``embexp-data``: look at a dataset before training on it.

    embexp-data inspect data=beir data.path=../shared/datasets/scifact model=minilm-l6
    embexp-data inspect data=beir data.path=DIR model=e5-base out=card.json sample=null

``inspect`` prints the data card (``embexp.data.card``: queries and pairs per split, positives
per query, grades, duplicates, leakage, token lengths against ``model.*_max_length``) and
writes it as JSON to ``out`` (default ``<run dir>/data_card.json``). Only the model's tokenizer
is loaded. Everything after the subcommand is a Hydra override of ``conf/data_inspect.yaml``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from embexp.cli.common import CONF_DIR, clean_errors, entry_point, run_dir, setup_env

log = logging.getLogger("embexp.data")

SUBCOMMANDS = {"inspect": "print and save the data card of data=... (token lengths with model=...)"}
USAGE = "usage: embexp-data inspect [HYDRA OVERRIDES]   e.g. embexp-data inspect data=beir data.path=DIR"


def inspect(cfg: DictConfig) -> dict:
    """The data card of ``cfg.data``, token lengths with ``cfg.model``'s tokenizer; printed and
    written to ``cfg.out`` (or the run directory)."""
    from embexp.data.card import data_card, format_card
    from embexp.data.prepare import prepare_data
    from embexp.model.encoder import token_counter, tokenizer_spec
    from embexp.train.preflight import check_config
    from embexp.utils.io import atomic_write_json

    rc = check_config(cfg, task="data_inspect")
    data = prepare_data(rc.data, need_train=False)
    spec = tokenizer_spec(cfg.model)
    card = data_card(
        data,
        min_positive_grade=rc.data.min_positive_grade,
        count_tokens=token_counter(cfg.model),
        max_lengths={"query": spec.query_max_length, "passage": spec.passage_max_length},
        sample=None if cfg.get("sample") is None else int(cfg.sample),
        seed=int(cfg.seed),
    )
    card["model"] = {
        "name_or_path": spec.name_or_path,
        "query_prefix": spec.query_prefix,
        "passage_prefix": spec.passage_prefix,
    }
    out = Path(cfg.out) if cfg.get("out") else run_dir() / "data_card.json"
    atomic_write_json(out, card)
    print(format_card(card))
    log.info("wrote %s", out)
    return card


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="data_inspect")
@clean_errors
def _inspect_main(cfg: DictConfig) -> None:
    setup_env()
    inspect(cfg)


def _usage(problem: str | None = None) -> int:
    lines = [USAGE, "subcommands:", *(f"  {k:<10}{v}" for k, v in SUBCOMMANDS.items())]
    if problem:
        print(f"error: {problem}", file=sys.stderr)
    print("\n".join(lines), file=sys.stderr if problem else sys.stdout)
    return 2 if problem else 0


def main(argv: list[str] | None = None) -> None:
    """``embexp-data SUBCOMMAND [overrides]``: the first word picks the subcommand, the rest
    go to Hydra (``--help`` after the subcommand shows the composed config's help)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        sys.exit(_usage(None if args else "missing subcommand"))
    if args[0] not in SUBCOMMANDS:
        sys.exit(_usage(f"unknown subcommand {args[0]!r}; choose one of: {', '.join(SUBCOMMANDS)}"))
    sys.argv = [sys.argv[0], *args[1:]]  # Hydra reads the overrides from sys.argv
    entry_point(_inspect_main)()


if __name__ == "__main__":
    main()
