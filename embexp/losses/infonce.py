r"""InfoNCE / multiple-negatives ranking loss with in-batch and hard negatives.

For a batch of ``B`` (query, positive) pairs with ``N`` hard negatives per query
(``N`` may be 0), the candidates are every in-batch positive followed by every
row's hard negatives::

    c = [p_1, ..., p_B, n_11, ..., n_1N, n_21, ..., n_BN]        (B + B*N candidates)

and the loss is the cross-entropy of picking the own positive (column ``i``)::

    s_ij = q_i . c_j / tau                       (cosine: embeddings are L2-normalised)
    L_fwd = -1/B sum_i [ s_ii - log sum_{j not masked(i)} exp(s_ij) ]

With ``symmetric=True`` a passage-to-query term over the in-batch queries is added::

    t_ij = p_i . q_j / tau
    L_bwd = -1/B sum_i [ t_ii - log sum_{j not masked^T(i)} exp(t_ij) ]
    L = (L_fwd + L_bwd) / 2

Temperature convention: logits are divided by ``tau`` (``temperature``); in
sentence-transformers terms ``scale = 1 / tau``, so ``temperature=0.05`` equals
``MultipleNegativesRankingLoss(scale=20)``.

False negatives: ``mask`` (from :func:`embexp.losses.masking.false_negative_mask`)
is a bool tensor of shape ``(B, B + B*N)``; masked logits are replaced by the
dtype's most negative finite value before the softmax, so they contribute exactly
nothing to the denominator and receive zero gradient. The own positive (the
diagonal) is never masked. The backward (symmetric) term uses ``mask[:, :B].T``:
query ``j`` is a false negative for passage ``i`` iff passage ``i`` is a positive of
query ``j``.

Several processes (DDP, ``gather_across_ranks=True``): every rank all-gathers the positives
and hard negatives (and, for the symmetric term, the queries) *with gradient*, so each local
query ``i`` (global row ``offset + i``) is scored against all ``W`` ranks' candidates
``[p_1..p_G, n_11..n_GN]`` with target column ``offset + i``; the false-negative mask is rebuilt
on the global batch from key hashes (``keys``). Each rank returns ``W / G * sum`` of its rows'
terms, so that DDP's gradient averaging yields exactly the gradient of the loss above on the
concatenated global batch of ``G`` rows (:mod:`embexp.losses.distributed`).

References:
    * sentence-transformers ``MultipleNegativesRankingLoss`` (and
      ``MultipleNegativesSymmetricRankingLoss``), https://sbert.net
    * A. van den Oord, Y. Li, O. Vinyals. Representation Learning with Contrastive
      Predictive Coding (InfoNCE). arXiv:1807.03748, 2018.
    * M. Henderson et al. Efficient Natural Language Response Suggestion for Smart
      Reply. arXiv:1705.00652, 2017.
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from embexp.config.schema import InfoNCELossConfig
from embexp.errors import ConfigError
from embexp.losses.distributed import gather_batch, world

__all__ = ["InfoNCELoss", "compute_loss_from_embeddings", "infonce_logits"]


def _check_temperature(temperature: float) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real):
        raise ConfigError("loss.temperature", f"must be a number > 0, got {temperature!r}")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ConfigError("loss.temperature", f"must be > 0 and finite, got {temperature!r}")
    return float(temperature)


def _check_inputs(q: Tensor, p: Tensor, negatives: Tensor | None) -> int:
    """Validate shapes; return N (hard negatives per query, 0 if none)."""
    if q.dim() != 2 or p.shape != q.shape:
        raise ValueError(f"q and p must both be (batch, dim), got q {tuple(q.shape)} and p {tuple(p.shape)}")
    if negatives is None:
        return 0
    b, d = q.shape
    if negatives.dim() != 3 or negatives.shape[0] != b or negatives.shape[2] != d:
        raise ValueError(f"negatives must be (batch={b}, n_neg, dim={d}), got {tuple(negatives.shape)}")
    return negatives.shape[1]


def _check_mask(mask: Tensor, rows: int, cols: int, device: torch.device) -> Tensor:
    if mask.shape != (rows, cols):
        raise ValueError(
            f"mask must be (batch, batch * (1 + n_neg)) = ({rows}, {cols}) in the candidate layout "
            f"[positives, negatives of row 0, row 1, ...], got {tuple(mask.shape)}"
        )
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor, got {mask.dtype}")
    return mask.to(device)


def _masked_logits(logits: Tensor, mask: Tensor | None, own: Tensor | None = None) -> Tensor:
    """Replace masked entries by the most negative finite value; each row's own column (the
    diagonal, or ``own[i]``) stays."""
    if mask is None:
        return logits
    b = logits.shape[0]
    if own is None:
        keep = torch.eye(b, logits.shape[1], dtype=torch.bool, device=logits.device)  # (batch, n_candidates)
    else:
        keep = torch.zeros_like(mask, dtype=torch.bool)  # (batch, n_candidates)
        keep[torch.arange(b, device=keep.device), own.to(keep.device)] = True
    mask = mask & ~keep
    return logits.masked_fill(mask, torch.finfo(logits.dtype).min)


def infonce_logits(
    q: Tensor,
    p: Tensor,
    negatives: Tensor | None = None,
    *,
    temperature: float,
    mask: Tensor | None = None,
) -> Tensor:
    """The (masked) query-to-candidate logits the loss takes the cross-entropy of.

    Returns a float32 tensor of shape ``(B, B + B*N)``; column ``i`` of row ``i`` is
    the positive. Masked entries hold ``torch.finfo(float32).min``.
    """
    return _logits(q, p, negatives, _check_temperature(temperature), mask)


def _logits(
    q: Tensor, p: Tensor, negatives: Tensor | None, temperature: float, mask: Tensor | None
) -> Tensor:
    n_neg = _check_inputs(q, p, negatives)
    b, d = q.shape
    if n_neg:
        candidates = torch.cat([p, negatives.reshape(b * n_neg, d)], dim=0)  # (batch * (1 + n_neg), dim)
    else:
        candidates = p  # (batch, dim)
    # Similarities in the input dtype (bf16 under autocast), softmax in float32.
    logits = (q @ candidates.T).float() / temperature  # (batch, batch * (1 + n_neg))
    if mask is not None:
        mask = _check_mask(mask, b, candidates.shape[0], logits.device)  # (batch, batch * (1 + n_neg))
    return _masked_logits(logits, mask)


def compute_loss_from_embeddings(
    q: Tensor,
    p: Tensor,
    negatives: Tensor | None = None,
    *,
    temperature: float,
    symmetric: bool = False,
    mask: Tensor | None = None,
) -> Tensor:
    """InfoNCE loss from L2-normalised embeddings (see the module docstring for the formula).

    Args:
        q: ``(B, D)`` query embeddings.
        p: ``(B, D)`` positive passage embeddings, row ``i`` is query ``i``'s positive.
        negatives: optional ``(B, N, D)`` hard negatives per query (``N`` may be 0);
            every row's negatives are candidates for every query.
        temperature: ``tau > 0``; logits are ``cosine / tau`` (``scale = 1 / tau``).
        symmetric: add the passage-to-query term and average the two.
        mask: optional bool ``(B, B + B*N)``; True drops that candidate for that query.

    Returns:
        Scalar float32 loss (mean over the batch).
    """
    return _loss(q, p, negatives, _check_temperature(temperature), symmetric, mask)


def _loss(
    q: Tensor, p: Tensor, negatives: Tensor | None, temperature: float, symmetric: bool, mask: Tensor | None
) -> Tensor:
    """:func:`compute_loss_from_embeddings` with a temperature already validated."""
    logits = _logits(q, p, negatives, temperature, mask)  # (batch, batch * (1 + n_neg))
    b = q.shape[0]
    target = torch.arange(b, device=logits.device)  # (batch,)
    loss = F.cross_entropy(logits, target)
    if not symmetric:
        return loss
    back = (p @ q.T).float() / float(temperature)  # (batch, batch): passage i vs query j
    back = _masked_logits(back, None if mask is None else mask[:, :b].T.to(back.device))  # (batch, batch)
    return (loss + F.cross_entropy(back, target)) / 2


def _gathered_loss(
    q: Tensor,
    p: Tensor,
    negatives: Tensor | None,
    temperature: float,
    symmetric: bool,
    mask: Tensor | None,
    keys: dict | None,
) -> Tensor:
    """This rank's share of the loss on the global batch of every rank (module docstring)."""
    n_neg = _check_inputs(q, p, negatives)
    if mask is not None:
        mask = _check_mask(mask, q.shape[0], q.shape[0] * (1 + n_neg), q.device)
    g = gather_batch(q, p, negatives, mask=mask, keys=keys, with_queries=symmetric)
    total, d = g.total, q.shape[1]
    if n_neg:
        candidates = torch.cat([g.p, g.negatives.reshape(total * n_neg, d)])  # (G * (1 + n_neg), dim)
    else:
        candidates = g.p  # (G, dim)
    logits = (q @ candidates.T).float() / temperature  # (batch, G * (1 + n_neg))
    logits = _masked_logits(logits, g.mask, own=g.rows)
    scale = world()[1] / total  # DDP averages over ranks: sum_r L_r / W is the global mean
    loss = F.cross_entropy(logits, g.rows, reduction="sum") * scale
    if not symmetric:
        return loss
    back = (p @ g.q.T).float() / temperature  # (batch, G): local passage i vs every query
    back = _masked_logits(back, g.mask_back, own=g.rows)
    return (loss + F.cross_entropy(back, g.rows, reduction="sum") * scale) / 2


class InfoNCELoss(nn.Module):
    """InfoNCE / multiple-negatives ranking loss (sentence-transformers MNRL convention).

    Args:
        temperature: ``tau > 0`` (config key ``loss.temperature``); ``scale = 1 / tau``,
            the default 0.05 equals sentence-transformers' default ``scale=20``.
        symmetric: also apply the passage-to-query cross-entropy and average
            (``MultipleNegativesSymmetricRankingLoss``).
        mask_false_negatives: use the ``mask`` (and ``keys``) passed to :meth:`forward`; when
            False they are ignored and duplicates count as negatives.
        gather_across_ranks: under ``torch.distributed`` with several processes, score every
            local query against all ranks' candidates (gathered with gradient); the loss and
            DDP-averaged gradients equal one process's on the concatenated batch. Ignored in a
            single process; False keeps each rank's loss local (in-batch negatives per rank).

    The encoder lives outside the loss: embed, L2-normalise, then call
    ``loss(q, p, negatives, mask=false_negative_mask(...))``.
    See :func:`compute_loss_from_embeddings` for shapes and the module docstring for
    the formula and references.
    """

    compute_loss_from_embeddings = staticmethod(compute_loss_from_embeddings)
    takes_keys = True  # under DDP the candidates of every rank are scored: the mask needs the keys
    runs_encoder = False

    def __init__(
        self,
        temperature: float = InfoNCELossConfig.temperature,
        symmetric: bool = False,
        mask_false_negatives: bool = True,
        gather_across_ranks: bool = True,
    ):
        super().__init__()
        self.temperature = _check_temperature(temperature)
        self.symmetric = bool(symmetric)
        self.mask_false_negatives = bool(mask_false_negatives)
        self.gather_across_ranks = bool(gather_across_ranks)

    @property
    def scale(self) -> float:
        """sentence-transformers' ``scale`` (``1 / temperature``)."""
        return 1.0 / self.temperature

    def forward(
        self,
        q: Tensor,
        p: Tensor,
        negatives: Tensor | None = None,
        mask: Tensor | None = None,
        keys: dict[str, Tensor] | None = None,
    ) -> Tensor:
        """``keys``: the collate's key hashes (``batch["keys"]``), used only across ranks to
        rebuild the false-negative mask on the global batch."""
        # the temperature was validated once, in __init__
        if not self.mask_false_negatives:
            mask = keys = None
        if self.gather_across_ranks and world()[1] > 1:
            return _gathered_loss(q, p, negatives, self.temperature, self.symmetric, mask, keys)
        return _loss(q, p, negatives, self.temperature, self.symmetric, mask)

    def extra_repr(self) -> str:
        return (
            f"temperature={self.temperature}, symmetric={self.symmetric}, "
            f"mask_false_negatives={self.mask_false_negatives}, "
            f"gather_across_ranks={self.gather_across_ranks}"
        )
