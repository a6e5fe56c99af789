#!/usr/bin/env bash
# The LoRA-vs-full decision at the recipes' own budget (BENCHMARKS §11): 3 seeds x
# {scifact_lora, scifact_full, scifact_last_layer} for 3 epochs, then the third seed of the best
# recipe (scifact_lora negatives=iterative), then the report.
#
#   OMP_NUM_THREADS=1 bash benchmarks/decision_grid.sh [OUT] [-- extra overrides]
#
# Rerun the same command to resume: the sweep and run folders are fixed (not time-stamped), so a
# finished run is read back and an interrupted or killed one resumes from its last checkpoint.
# Both numeric paths give the same numbers on any CPU only in fp32, so the grid forces it
# (`trainer.precision=32-true eval.dtype=fp32`): a run started on an AMX machine can resume on one
# without. The grid trains unpadded (`model.unpad=true`, BENCHMARKS §10: same quality, 1.3x
# faster); the iterative seed keeps the padded forward of its seeds 1 and 2 (§10, "Model selection").
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/decision}
shift || true
[ "${1:-}" = "--" ] && shift
DATA=${SCIFACT:-$PWD/../shared/datasets/scifact}
COMMON=(trainer.precision=32-true eval.dtype=fp32 logger=none "data.path=$DATA")

embexp-train -m seed=1,2,3 experiment=scifact_lora,scifact_full,scifact_last_layer \
  model.unpad=true "${COMMON[@]}" "hydra.sweep.dir=$OUT/grid" "$@"
embexp-train experiment=scifact_lora negatives=iterative seed=3 \
  "${COMMON[@]}" "hydra.run.dir=$OUT/scifact_lora_iterative_s3" "$@"
