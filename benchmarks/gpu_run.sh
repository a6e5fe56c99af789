#!/usr/bin/env bash
# The one GPU run that fills BENCHMARKS.md §10's GPU rows (issue 13): embexp vs sentence-transformers'
# trainer vs a plain loop, MiniLM-L6 and BERT-base shapes, bf16, batch 128, on SciFact pairs; then
# corpus encoding; then the compiled unpadded variant. Every row is written to $OUT as it is measured.
#
# Here, where SciFact and pip are (once):
#   python benchmarks/throughput.py prepare --scifact ../shared/datasets/scifact --out .bench
#   bash benchmarks/gpu_run.sh download     # wheels the GPU image lacks (its Python is 3.12) -> .whl/
# On the GPU machine (carry .bench and .whl; at most ~8 minutes: two phases of 300 s and 150 s):
#   bash benchmarks/gpu_run.sh run [extra throughput.py run options, e.g. --steps 10]
#
# The image is expected to hold torch, transformers, sentence-transformers, lightning, peft and
# scipy (the device image of this workplace does); what embexp needs beyond them is installed from
# .whl/ into /tmp/site, and only when it is not importable there already.
set -uo pipefail
cd "$(dirname "$0")/.."

# module:wheel-file-prefix of what embexp's training path and the trainer of sentence-transformers import
NEEDS="hydra:hydra_core omegaconf:omegaconf antlr4:antlr4_python3_runtime faiss:faiss_cpu datasets:datasets dill:dill multiprocess:multiprocess"
PINS="hydra-core==1.3.8 omegaconf==2.3.1 faiss-cpu==1.15.1 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19"
PLATFORMS="--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64"

case "${1:-run}" in
download)
    mkdir -p .whl && rm -f .whl/*.whl  # one version of each: two would stop the install there
    # shellcheck disable=SC2086
    python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        $PLATFORMS -d .whl $PINS || exit 1
    python -m pip wheel -q --no-deps -w .whl antlr4-python3-runtime==4.9.3 || exit 1  # pure Python, sdist only
    # the device gets the working tree without .git: name the commit the run measures
    { git log -1 --format='embexp %h %s'; git status --short | sed 's/^/  uncommitted: /'; } > .whl/COMMIT
    ls -l .whl
    ;;
run)
    shift || true
    OUT=${OUT:-runs/gpu}
    mkdir -p "$OUT"
    PY=${PYTHON:-python3}
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
    missing=()
    for pair in $NEEDS; do
        $PY -c "import ${pair%%:*}" 2>/dev/null || missing+=(.whl/"${pair#*:}"-*.whl)
    done
    if ((${#missing[@]})); then
        echo "installing ${missing[*]}"
        $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
            "${missing[@]}" || exit 1
        export PYTHONPATH="/tmp/site:$PYTHONPATH"
    fi
    { nvidia-smi 2>&1 | head -15
      $PY -c "import importlib.metadata as m
for n in ('torch','transformers','sentence-transformers','lightning','peft','datasets','pyarrow','fsspec','huggingface-hub'):
    try: print(n, m.version(n))
    except Exception as e: print(n, 'missing', e)"
      git log -1 --format='embexp %h %s' 2>/dev/null || cat .whl/COMMIT; } | tee "$OUT/environment.txt"
    # 1) every contender, both shapes, no compile (the acceptance rows); 2) the compiled unpadded
    # variant alone (compilation takes minutes: it must not keep phase 1 from finishing)
    timeout -k 20 "${PHASE1_S:-300}" $PY benchmarks/throughput.py run --data .bench --shapes minilm bert-base \
        --batch 128 --steps 30 --embexp-variants padded unpadded --out "$OUT/throughput.json" "$@" \
        2>&1 | tee "$OUT/throughput.log"
    timeout -k 20 "${PHASE2_S:-150}" $PY benchmarks/throughput.py run --data .bench --shapes bert-base minilm \
        --batch 128 --steps 30 --embexp-variants unpadded+compile --skip plain st encode \
        --out "$OUT/throughput-compile.json" "$@" 2>&1 | tee "$OUT/throughput-compile.log"
    ;;
*)
    echo "usage: $0 download | run [throughput.py run options]" >&2
    exit 2
    ;;
esac
