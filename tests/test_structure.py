"""The structure rules the code keeps (docs/architecture.md): short functions, a one-screen
training job. Formatting, lint and the import layers are checked by ruff and import-linter."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "embexp"


def functions():
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield path.relative_to(PACKAGE.parent), node.name, node.end_lineno - node.lineno + 1


def test_no_function_over_80_lines():
    long = [f"{p}:{name} ({n} lines)" for p, name, n in functions() if n > 80]
    assert not long, long


def test_the_training_job_reads_in_one_screen():
    (n,) = [n for p, name, n in functions() if p.as_posix() == "embexp/train/run.py" and name == "train"]
    assert n <= 70
