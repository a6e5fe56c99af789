"""``embexp-export``: a trained model as a sentence-transformers model (LoRA merged).

    embexp-export outputs/train/2024-05-01/12-00-00 exported/scifact-lora
    python -m embexp.cli.export RUN_DIR OUT --overwrite

RUN_DIR is a run directory (with ``model/``) or an embexp model directory. OUT loads with
``SentenceTransformer(OUT)`` and with embexp (``model.name_or_path=OUT``). OUT must be new or
empty; ``--overwrite`` replaces only a previous export (recognised by its ``embexp_export.json``),
never the working folder, the run folder, a parent of either or a folder inside the run.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings

from embexp.cli.common import clean_errors, setup_env


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="embexp-export",
        description=(
            "Export a trained embexp model (run directory or model directory) as a sentence-transformers "
            "model; LoRA adapters are merged into the base weights."
        ),
    )
    p.add_argument(
        "run_dir", metavar="RUN_DIR", help="run directory containing model/, or the model directory itself"
    )
    p.add_argument("out", metavar="OUT", help="folder to write the sentence-transformers model to")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace OUT if it holds a previous export (its embexp_export.json lists every file in it); "
        "any other non-empty OUT is refused",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    return p.parse_args(argv)


@clean_errors
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_env()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    warnings.filterwarnings("ignore", category=FutureWarning)  # deprecations inside peft/transformers
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    from embexp.model.export import export

    info = export(args.run_dir, args.out, overwrite=args.overwrite)
    if not args.quiet:
        what = "LoRA merged" if info.merged_adapter else "full weights"
        print(
            f"exported {info.source} -> {info.out} "
            f"({what}, {info.pooling} pooling{', normalised' if info.normalize else ''})"
        )
        if info.query_max_length != info.max_seq_length:
            print(
                f"note: sentence-transformers truncates queries at {info.max_seq_length} tokens "
                f"(embexp: {info.query_max_length}); embeddings of queries within both limits are identical"
            )
        print(
            f"load with: SentenceTransformer({str(info.out)!r}); "
            "queries: encode_query(texts), passages: encode_document(texts)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
