"""The structure refactor changed no result: two deterministic tiny-model runs give the metrics
recorded with the code before it (``data/before_refactor.json``, commit 0018529).

Bit for bit on the CPU family they were recorded on (fp32 forced): an "AMD EPYC" without AMX
or AVX-512 (AVX2 kernels). Other CPUs run other fp32 kernels (AVX-512/AMX), whose rounding differs
after a few hundred steps; with iterative mining that can flip a dev query's top-10 (1/150 =
0.0067 on recall@10, seen on an AVX-512 EPYC), so there the comparison allows 0.01. Both runs use
one thread, as when they were recorded."""

import json
from pathlib import Path

import pytest

from conftest import run_cli

RECORDED = json.loads((Path(__file__).parent / "data" / "before_refactor.json").read_text())
COMMON = [
    "model=tiny",
    "logger=none",
    "trainer.max_epochs=2",
    "trainer.deterministic=true",
    "train.batch_size=16",
    "seed=0",
    "callbacks.progress_bar=null",
    "eval.show_progress=false",
    "trainer.precision=32-true",
    "eval.dtype=fp32",
    # behaviour changed on purpose since the recording (issue 11); the old behaviour, pinned:
    "train.select_base=false",
    "train.max_steps=null",  # the quickstart's step budget: full epochs, as recorded
]
# recorded with one thread: fp32 reductions split over more threads round differently
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
RUNS = {
    "full-iterative": [
        "adapter=full",
        "negatives=iterative",
        "negatives.margin_reference=lowest",
        "negatives.fill_below_window=false",
    ],
    "lora-in_batch": [],
}


def _same_cpu() -> bool:
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    names = [line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")]
    flags = set(next((ln.split(":", 1)[1].split() for ln in info.splitlines() if ln.startswith("flags")), []))
    return (
        bool(names)
        and names[0] == RECORDED["cpu"]
        and ("amx_bf16" in flags) == RECORDED["amx"]
        and ("avx512f" in flags) == RECORDED["avx512f"]
    )


@pytest.mark.parametrize("name", sorted(RUNS))
def test_metrics_equal_the_recorded_ones(name, tmp_path):
    p = run_cli(
        "embexp.cli.train",
        *COMMON,
        *RUNS[name],
        f"run_id={name}",
        env={"EMBEXP_ROOT": str(tmp_path), **ONE_THREAD},
    )
    assert p.returncode == 0, p.stderr[-3000:]
    got = json.loads((tmp_path / "runs" / "train" / name / "metrics.json").read_text())["metrics"]
    want = RECORDED["runs"][name]
    assert len(want) > 100 and set(want) <= set(got)
    if _same_cpu():
        assert {k: got[k] for k in want} == want
    else:
        assert {k: got[k] for k in want} == pytest.approx(want, abs=0.01)
