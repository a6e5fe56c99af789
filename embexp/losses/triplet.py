r"""Triplet margin loss on cosine distance, with hard or batch-hard in-batch negatives.

Distance is ``d(a, b) = 1 - cos(a, b) = 1 - a . b`` (embeddings are L2-normalised
by the encoder). For each query ``q_i`` with positive ``p_i``:

* with hard negatives ``n_i1 .. n_iN`` (``negatives`` of shape ``(B, N, D)``, N > 0),
  the loss is the mean over all unmasked (query, own hard negative) pairs::

      L = 1/|P| sum_{(i,k) in P} max(0, d(q_i, p_i) - d(q_i, n_ik) + margin)

  (only a row's *own* negatives are used here, unlike InfoNCE which shares them);

* without hard negatives (``negatives`` is None or has N = 0), batch-hard in-batch
  negatives: the hardest (closest) other in-batch positive that is not masked::

      L = 1/|Q| sum_{i in Q} max(0, d(q_i, p_i) - min_{j != i, not masked} d(q_i, p_j) + margin)

  where ``Q`` are the queries with at least one valid in-batch negative.

If no pair is valid (batch of one, everything masked) the loss is 0 (still
connected to the graph, so ``backward()`` works).

``mask`` uses the same layout as :mod:`embexp.losses.infonce`: bool
``(B, B + B*N)``, columns ``[p_1..p_B, n_11..n_1N, ..., n_BN]``; for the hard
negative variant only the own-negative columns ``B + i*N + k`` of row ``i`` are
read, for the in-batch variant only ``mask[:, :B]``.

References:
    * F. Schroff, D. Kalenichenko, J. Philbin. FaceNet: A Unified Embedding for Face
      Recognition and Clustering. CVPR 2015 (triplet margin loss).
    * A. Hermans, L. Beyer, B. Leibe. In Defense of the Triplet Loss for Person
      Re-Identification. arXiv:1703.07737, 2017 (batch-hard mining).
    * sentence-transformers ``TripletLoss`` / ``BatchHardTripletLoss``, https://sbert.net
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor, nn

from embexp.config.schema import TripletLossConfig
from embexp.errors import ConfigError
from embexp.losses.infonce import _check_inputs, _check_mask

__all__ = ["TripletMarginLoss", "compute_loss_from_embeddings"]


def _check_margin(margin: float) -> float:
    if isinstance(margin, bool) or not isinstance(margin, numbers.Real):
        raise ConfigError("loss.margin", f"must be a number >= 0, got {margin!r}")
    if not (math.isfinite(margin) and margin >= 0):
        raise ConfigError("loss.margin", f"must be >= 0 and finite, got {margin!r}")
    return float(margin)


def compute_loss_from_embeddings(
    q: Tensor,
    p: Tensor,
    negatives: Tensor | None = None,
    *,
    margin: float,
    mask: Tensor | None = None,
) -> Tensor:
    """Triplet margin loss from L2-normalised embeddings (formula in the module docstring).

    Args:
        q: ``(B, D)`` query embeddings.
        p: ``(B, D)`` positive embeddings, row ``i`` is query ``i``'s positive.
        negatives: optional ``(B, N, D)`` hard negatives of each query; None or N = 0
            selects batch-hard in-batch negatives.
        margin: ``>= 0``, in cosine-distance units.
        mask: optional bool ``(B, B + B*N)`` false-negative mask (True = not a negative).

    Returns:
        Scalar float32 loss.
    """
    margin = _check_margin(margin)
    n_neg = _check_inputs(q, p, negatives)
    b = q.shape[0]
    if mask is not None:
        mask = _check_mask(mask, b, b * (1 + n_neg), q.device)  # (batch, batch * (1 + n_neg))
    d_pos = 1.0 - (q * p).sum(dim=-1).float()  # (batch,)

    if n_neg:
        d_neg = 1.0 - torch.einsum("bd,bnd->bn", q, negatives).float()  # (batch, n_neg)
        valid = torch.ones(b, n_neg, dtype=torch.bool, device=q.device)  # (batch, n_neg)
        if mask is not None:
            rows = torch.arange(b, device=q.device)
            own_neg_masked = mask[:, b:].reshape(b, b, n_neg)[rows, rows]  # (batch, n_neg)
            valid = ~own_neg_masked
        hinge = torch.relu(d_pos[:, None] - d_neg + margin)  # (batch, n_neg)
    else:
        d_all = 1.0 - (q @ p.T).float()  # (batch, batch)
        invalid = torch.eye(b, dtype=torch.bool, device=q.device)  # (batch, batch)
        if mask is not None:
            invalid = invalid | mask[:, :b]
        d_hardest = d_all.masked_fill(invalid, math.inf).min(dim=1).values  # (batch,)
        valid = torch.isfinite(d_hardest)  # (batch,)
        hinge = torch.relu(d_pos - torch.where(valid, d_hardest, d_pos) + margin)  # (batch,)

    if not bool(valid.any()):
        return hinge.sum() * 0.0
    return hinge[valid].mean()


class TripletMarginLoss(nn.Module):
    """Triplet margin loss on cosine distance; batch-hard in-batch negatives when no hard negatives.

    Args:
        margin: ``>= 0`` (config key ``loss.margin``), cosine-distance units.
        mask_false_negatives: use the ``mask`` passed to :meth:`forward`; when False
            it is ignored.

    See the module docstring for the formula and references, and
    :func:`compute_loss_from_embeddings` for shapes.
    """

    compute_loss_from_embeddings = staticmethod(compute_loss_from_embeddings)
    takes_keys = False  # per rank under DDP: no gathered negatives, no keys needed
    runs_encoder = False

    def __init__(self, margin: float = TripletLossConfig.margin, mask_false_negatives: bool = True):
        super().__init__()
        self.margin = _check_margin(margin)
        self.mask_false_negatives = bool(mask_false_negatives)

    def forward(
        self,
        q: Tensor,
        p: Tensor,
        negatives: Tensor | None = None,
        mask: Tensor | None = None,
        keys: dict[str, Tensor] | None = None,
    ) -> Tensor:
        """``keys`` (the collate's key hashes) is accepted for the losses' common call and
        ignored: under DDP the triplet loss stays per rank (no gathered negatives)."""
        return compute_loss_from_embeddings(
            q, p, negatives, margin=self.margin, mask=mask if self.mask_false_negatives else None
        )

    def extra_repr(self) -> str:
        return f"margin={self.margin}, mask_false_negatives={self.mask_false_negatives}"
