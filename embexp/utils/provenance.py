"""Where a result came from: package, Python, torch and transformers versions, git commit."""

from __future__ import annotations

import functools
import platform
import subprocess
from pathlib import Path


@functools.lru_cache(maxsize=1)
def code_version() -> dict:
    root = Path(__file__).resolve().parents[2]
    out = {"embexp": __import__("embexp").__version__, "python": platform.python_version()}
    try:
        git = ["git", "-C", str(root)]
        run = functools.partial(subprocess.run, capture_output=True, text=True, timeout=5)
        out["git_commit"] = run([*git, "rev-parse", "HEAD"]).stdout.strip() or None
        out["git_dirty"] = bool(run([*git, "status", "--porcelain"]).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    import sys
    from importlib import metadata

    for pkg in ("torch", "transformers"):
        mod = sys.modules.get(pkg)  # the imported version (a source checkout may lack metadata)
        try:
            out[pkg] = getattr(mod, "__version__", None) or metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return dict(out)
