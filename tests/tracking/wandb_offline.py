"""Reading an offline W&B run back, for the tracking tests.

An offline run is read back from its ``.wandb`` transaction log. wandb >= 0.2x writes no
``files/wandb-summary.json`` offline and 0.31 no longer ships the Python ``DataStore``, so
the log is read with wandb's own reader, ``wandb leet inspect --json`` (every record) and
``--summary --json`` (final state, exit code, summary, config). ``read_records_raw`` is a
pure-Python fallback (leveldb log framing + wandb's protobuf ``Record``) that the tests
check against it, should the CLI's output change.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

OFFLINE_ENV = {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DISABLE_GIT": "true"}


# ---- reading an offline run back ----------------------------------------------------------
def offline_run_dir(root: Path) -> Path:
    runs = sorted((Path(root) / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, f"expected one offline run under {root}/wandb, found {runs}"
    return runs[0]


def _leet(run_dir: Path, *flags: str) -> str:
    wandb_cli = Path(sys.executable).with_name("wandb")
    cmd = [str(wandb_cli)] if wandb_cli.exists() else [sys.executable, "-m", "wandb"]
    p = subprocess.run(
        [*cmd, "leet", "inspect", str(run_dir), *flags, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **OFFLINE_ENV},
    )
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout


def read_summary(run_dir: Path) -> dict:
    """``{state, exit_code, summary, config, ...}`` of an offline run, by wandb's own reader."""
    return json.loads(_leet(run_dir, "--summary"))


def read_records(run_dir: Path) -> list[dict]:
    """Every record of the transaction log as JSON (``{"num", "type", <type>: {...}}``)."""
    return [json.loads(line) for line in _leet(run_dir).splitlines() if line.strip()]


def history(records: list[dict]) -> list[dict]:
    return [r["history"]["item"] for r in records if r["type"] == "history"]


def read_records_raw(run_dir: Path) -> list:
    """Fallback reader: the ``.wandb`` file is a 7-byte header (``:W&B``, magic 0xBEE1,
    version) and then a leveldb log (32 KiB blocks; chunks of crc32 u32, length u16, type u8:
    1 full, 2 first, 3 middle, 4 last) of serialised ``wandb_internal_pb2.Record``."""
    from wandb.proto import wandb_internal_pb2

    (path,) = Path(run_dir).glob("*.wandb")
    data = path.read_bytes()
    assert data[:4] == b":W&B" and struct.unpack_from("<HB", data, 4) == (0xBEE1, 0), data[:7]
    block, pos, parts, out = 32768, 7, [], []
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # block trailer: zero padding
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack_from("<IHB", data, pos)
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 2):
            parts = [chunk]
        elif kind in (3, 4):
            parts.append(chunk)
        else:
            continue  # zero padding of a preallocated tail
        if kind in (1, 4):
            rec = wandb_internal_pb2.Record()
            rec.ParseFromString(b"".join(parts))
            out.append(rec)
    return out


def raw_summary(records) -> dict:
    summary: dict = {}
    for rec in records:
        if rec.WhichOneof("record_type") == "summary":
            for item in rec.summary.update:
                key = "/".join(item.nested_key) if item.nested_key else item.key
                summary[key] = json.loads(item.value_json)
            for item in rec.summary.remove:
                summary.pop("/".join(item.nested_key) if item.nested_key else item.key, None)
    return summary
