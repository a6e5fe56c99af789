"""Pre-tokenised training batches: each text is tokenised once, then only padded.

The training collate sees the same queries and passages every epoch (and a passage in many
batches); tokenising them again on every step costs host time that a GPU step cannot hide with
``train.num_workers=0``. :class:`TokenCache` keeps each text's token ids (truncated to the
kind's max length, prefix included) as a compact int32 array and pads a batch of them
into the tensors ``BiEncoder.tokenize(texts, kind)`` would return, bit for bit.
"""

from __future__ import annotations

import numpy as np
import torch


class TokenCache:
    """``batch(texts, kind)`` == ``encoder.tokenize(texts, kind)`` (padded tensors), with each
    distinct text tokenised once. Memory: about 4 bytes per token per key the tokenizer returns."""

    def __init__(self, encoder):
        self.encoder = encoder
        tok = encoder.tokenizer
        self.pad_values = {
            "input_ids": int(tok.pad_token_id if tok.pad_token_id is not None else 0),
            "token_type_ids": int(getattr(tok, "pad_token_type_id", 0) or 0),
            "attention_mask": 0,
        }
        self.left = getattr(tok, "padding_side", "right") == "left"
        self._ids: dict[tuple[str, str], dict[str, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def _features(self, texts: list[str], kind: str) -> list[dict[str, np.ndarray]]:
        missing = list(dict.fromkeys(t for t in texts if (kind, t) not in self._ids))
        if missing:  # one batched tokenizer call for everything this batch sees first
            enc = self.encoder.tokenize(missing, kind, padding=False)
            for i, text in enumerate(missing):
                self._ids[(kind, text)] = {k: np.asarray(enc[k][i], dtype=np.int32) for k in enc.keys()}
        return [self._ids[(kind, t)] for t in texts]

    def batch(self, texts: list[str], kind: str) -> dict[str, torch.Tensor]:
        """Padded ``(len(texts), longest)`` int64 tensors, as the tokenizer pads them."""
        feats = self._features(list(texts), kind)
        longest = max((len(f["input_ids"]) for f in feats), default=0)
        out = {}
        for key in feats[0] if feats else ("input_ids", "attention_mask"):
            t = np.full((len(feats), longest), self.pad_values.get(key, 0), dtype=np.int64)
            for i, f in enumerate(feats):
                v = f[key]
                if self.left:
                    t[i, longest - len(v) :] = v
                else:
                    t[i, : len(v)] = v
            out[key] = torch.from_numpy(t)
        return out
