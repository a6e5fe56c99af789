"""Contrastive losses for bi-encoder fine-tuning, one file per loss.

All losses take already L2-normalised embeddings and share one call shape::

    loss(q, p, negatives=None, mask=None)
    # q, p: (B, D); negatives: (B, N, D) or None; mask: bool (B, B + B*N) or None

``mask`` marks false negatives in the shared candidate layout
``[p_1..p_B, n_11..n_1N, ..., n_B1..n_BN]``; build it with
:func:`false_negative_mask` (and :func:`candidate_ids`). The config group ``loss``
names a class here as its ``_target_`` (``embexp.losses.InfoNCELoss``,
``embexp.losses.TripletMarginLoss``).

A loss declares what the training step must give it, as class attributes (absent: False):

``takes_keys``
    ``loss(..., keys=batch["keys"])``: the collate's key hashes, to rebuild the false-negative
    mask on a batch gathered across DDP ranks (InfoNCE).
``runs_encoder``
    The loss runs the encoder itself (GradCache: :func:`embexp.losses.cached.cached_loss` with
    the encoder and the tokenised batch) instead of receiving embeddings.
"""

from embexp.losses.infonce import InfoNCELoss, infonce_logits
from embexp.losses.masking import as_key_set, candidate_ids, false_negative_mask, text_key
from embexp.losses.triplet import TripletMarginLoss

__all__ = [
    "InfoNCELoss",
    "TripletMarginLoss",
    "as_key_set",
    "candidate_ids",
    "false_negative_mask",
    "infonce_logits",
    "text_key",
]
