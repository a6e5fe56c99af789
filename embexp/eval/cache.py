"""On-disk cache of corpus embeddings, keyed by everything that determines them.

The key hashes the encoder's weights fingerprint (so a changed encoder can never be
scored against stale vectors), the corpus fingerprint, prefix, max length, pooling and
dtype. Files are written atomically.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from embexp.utils.io import atomic_write_bytes

log = logging.getLogger(__name__)


class EmbeddingCache:
    def __init__(self, directory: str | Path):
        self.dir = Path(directory).expanduser()

    @classmethod
    def under(cls, cache_dir: str | Path | None) -> EmbeddingCache | None:
        """The cache in ``<cache_dir>/embeddings`` (``paths.cache_dir``); None without a folder."""
        return cls(Path(cache_dir) / "embeddings") if cache_dir else None

    @staticmethod
    def key(**parts) -> str:
        return hashlib.blake2b(json.dumps(parts, sort_keys=True).encode(), digest_size=16).hexdigest()

    def get_or_compute(self, parts: dict, compute: Callable[[], np.ndarray]) -> tuple[np.ndarray, bool]:
        """(embeddings, was_cached)."""
        k = self.key(**parts)
        path = self.dir / f"{k}.npy"
        if path.exists():
            try:
                arr = np.load(path)
                log.info("embedding cache hit %s", path)
                return arr, True
            except (OSError, ValueError) as e:  # a torn file from another writer: recompute
                log.warning("ignoring unreadable cache file %s (%s)", path, e)
        arr = compute()
        buf = io.BytesIO()
        np.save(buf, arr)
        atomic_write_bytes(path, buf.getvalue())
        (self.dir / f"{k}.json").write_text(json.dumps(parts, sort_keys=True, indent=1))
        return arr, False
