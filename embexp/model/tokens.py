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
    distinct text tokenised once. Memory: the token ids (2 bytes a token for vocabularies under
    65,536, else 4) plus ~0.5 KB of Python overhead per text; a key that is constant over a text
    (``attention_mask``: ones, ``token_type_ids``: zeros for a single sequence) is stored as that
    one value. With ``train.num_workers > 0`` each loader worker fills its own cache (workers are
    not persistent, so it is rebuilt every epoch there)."""

    def __init__(self, encoder):
        self.encoder = encoder
        tok = encoder.tokenizer
        self.exact = tok.pad_token_id is None  # no pad token: the tokenizer itself decides (or raises)
        self.pad_values = {
            "input_ids": int(tok.pad_token_id or 0),
            "token_type_ids": int(getattr(tok, "pad_token_type_id", 0) or 0),
            "attention_mask": 0,
            "special_tokens_mask": 1,
        }
        self.left = getattr(tok, "padding_side", "right") == "left"
        self.id_dtype = np.uint16 if len(tok) <= np.iinfo(np.uint16).max + 1 else np.int32
        self._ids: dict[tuple[str, str], dict[str, np.ndarray | int]] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def _compact(self, key: str, values) -> np.ndarray | int:
        v = np.asarray(values)
        if key != "input_ids" and len(v) and (v == v[0]).all():
            return int(v[0])  # constant over the text
        return v.astype(self.id_dtype if key == "input_ids" else np.int32)

    def _features(self, texts: list[str], kind: str) -> list[dict[str, np.ndarray | int]]:
        missing = list(dict.fromkeys(t for t in texts if (kind, t) not in self._ids))
        if missing:  # one batched tokenizer call for everything this batch sees first
            enc = self.encoder.tokenize(missing, kind, padding=False)
            for i, text in enumerate(missing):
                self._ids[(kind, text)] = {k: self._compact(k, enc[k][i]) for k in enc.keys()}
        return [self._ids[(kind, t)] for t in texts]

    def lengths(self, texts: list[str], kind: str, chunk: int = 8192) -> list[int]:
        """Token count of each text (after truncation), tokenising each distinct text once, a
        chunk of texts at a time (the tokenizer's Python lists of a whole corpus would not fit)."""
        texts = list(texts)
        if self.exact:  # nothing cached: count the distinct texts
            distinct = list(dict.fromkeys(texts))
            counts = {}
            for s in range(0, len(distinct), chunk):
                part = distinct[s : s + chunk]
                ids = self.encoder.tokenize(part, kind, padding=False)["input_ids"]
                counts.update(zip(part, map(len, ids)))
            return [counts[t] for t in texts]
        out: list[int] = []
        for s in range(0, len(texts), chunk):
            out += [len(f["input_ids"]) for f in self._features(texts[s : s + chunk], kind)]
        return out

    def batch(self, texts: list[str], kind: str) -> dict[str, torch.Tensor]:
        """Padded ``(len(texts), longest)`` int64 tensors, as the tokenizer pads them."""
        texts = list(texts)
        if self.exact or not texts:
            return dict(self.encoder.tokenize(texts, kind))
        feats = self._features(texts, kind)
        lengths = [len(f["input_ids"]) for f in feats]
        longest = max(lengths)
        multiple = getattr(self.encoder, "pad_to_multiple_of", None)
        if multiple and longest % multiple:  # bucketed lengths, as the tokenizer's pad_to_multiple_of
            longest += multiple - longest % multiple
        out = {}
        for key in feats[0]:
            t = np.full((len(feats), longest), self.pad_values.get(key, 0), dtype=np.int64)
            for i, (f, n) in enumerate(zip(feats, lengths)):
                cols = slice(longest - n, longest) if self.left else slice(0, n)
                t[i, cols] = f[key]  # an array, or the one value of a constant key
            out[key] = torch.from_numpy(t)
        return out
