"""The decision write-up notebook (notebooks/lora_vs_full.ipynb) runs against a report built from
fixture runs, and stays in sync with its reviewable jupytext source (notebooks/lora_vs_full.py)."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from nbclient import NotebookClient

from embexp.report.build import ReportSettings, build_report
from embexp.report.render import write_report

from fixture_runs import decision_runs, make_beir

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
IPYNB, SOURCE = NOTEBOOKS / "lora_vs_full.ipynb", NOTEBOOKS / "lora_vs_full.py"
# jupyter_client launches "python*" argv[0] of a kernelspec as sys.executable
PYTHON_ARGV0 = {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}


def kernel_name(tmp_path: Path, monkeypatch) -> str:
    """``python3`` when it runs this interpreter (pip's ipykernel ships that kernelspec in
    ``<venv>/share/jupyter/kernels``); else a throwaway spec for sys.executable on JUPYTER_PATH
    (a user-level ``python3`` pointing at another Python shadows the venv's)."""
    try:
        argv0 = KernelSpecManager().get_kernel_spec("python3").argv[0]
        if argv0 in PYTHON_ARGV0 or Path(argv0).resolve() == Path(sys.executable).resolve():
            return "python3"
    except NoSuchKernel:
        pass
    spec = tmp_path / "jupyter" / "kernels" / "embexp-test"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "embexp", "language": "python"})
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return "embexp-test"


@pytest.fixture(scope="module", params=["3 seeds", "1 seed, no references"])
def report_dir(request, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("nb-report")
    seeds, references = ((1, 2, 3), True) if request.param == "3 seeds" else ((1,), False)
    multirun = decision_runs(root / "runs", make_beir(root / "beir"), seeds=seeds)
    settings = ReportSettings(latency=False, references=references, resamples=999)
    write_report(build_report([str(multirun)], settings), root / "report")
    return root / "report"


def outputs(nb) -> list[dict]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]


def test_the_notebook_runs_against_a_report(report_dir, tmp_path, monkeypatch):
    name = kernel_name(tmp_path, monkeypatch)
    env = {**os.environ, "EMBEXP_REPORT": str(report_dir)}
    nb = nbformat.read(IPYNB, as_version=4)
    client = NotebookClient(
        nb, timeout=300, kernel_name=name, resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute(env=env)  # raises CellExecutionError on the first failing cell

    outs = outputs(nb)
    assert not [o for o in outs if o.output_type == "error"]
    texts = [
        str(o.get("text", ""))
        + "".join(str(v) for k, v in o.get("data", {}).items() if k.startswith("text/"))
        for o in outs
    ]
    verdict = json.loads((report_dir / "report.json").read_text())["verdict"]
    assert any(verdict in t for t in texts), "the verdict is not shown"
    assert any(str(report_dir) in t for t in texts), "the notebook did not read $EMBEXP_REPORT"
    assert sum("image/png" in o.get("data", {}) for o in outs) >= 5  # the figures, not their reprs


def percent_code_cells(text: str) -> list[str]:
    """Code cells of a jupytext percent script (``# %%`` markers, YAML header, commented magics);
    used only when jupytext is not installed."""
    lines = text.splitlines()
    if lines and lines[0] == "# ---":
        lines = lines[lines.index("# ---", 1) + 1 :]
    cells: list[list[str]] = []
    code = False
    for line in lines:
        if line.startswith("# %%"):
            code = "[markdown]" not in line
            cells += [[]] if code else []
        elif code:
            cells[-1].append(re.sub(r"^# (%[a-z])", r"\1", line))
    return ["\n".join(c).strip("\n") for c in cells]


def test_the_ipynb_matches_its_py_source():
    """Regenerate with ``jupytext --sync notebooks/lora_vs_full.py`` when this fails."""
    try:
        import jupytext

        expected = [c.source for c in jupytext.read(SOURCE).cells if c.cell_type == "code"]
    except ImportError:
        expected = percent_code_cells(SOURCE.read_text())
    nb = nbformat.read(IPYNB, as_version=4)
    assert [c.source for c in nb.cells if c.cell_type == "code"] == expected
    assert nb.metadata.get("jupytext", {}).get("formats") == "ipynb,py:percent"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"


def test_the_fallback_reader_agrees_with_jupytext():
    jupytext = pytest.importorskip("jupytext")
    expected = [c.source for c in jupytext.read(SOURCE).cells if c.cell_type == "code"]
    assert percent_code_cells(SOURCE.read_text()) == expected
