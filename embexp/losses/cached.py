r"""InfoNCE with a gradient cache (GradCache): the effective batch decoupled from memory.

The plain loss embeds the whole batch with a graph, so activation memory grows with
``batch * (1 + n_neg) * seq_len``. :func:`cached_loss` computes the *same* loss and the *same*
parameter gradients while holding the activations of one chunk of ``chunk_size`` rows at a time:

1. **Embed without grad.** Queries, then passages (positives and hard negatives), are embedded
   chunk by chunk under ``torch.no_grad``; before each chunk the RNG state (CPU and the
   encoder's CUDA device) is saved, and the autocast state of the step is kept.
2. **Loss on the cached embeddings.** The embeddings are concatenated into leaf tensors
   ``q`` ``(B, D)`` and ``p`` ``(B * (1 + N), D)`` that require grad; InfoNCE over the full batch
   (every in-batch and hard negative, the false-negative mask) is computed and back-propagated
   to them: the cache ``g = d L / d e`` for every row, ``(rows, D)``. No encoder graph exists.
3. **Re-embed with grad.** When the returned loss is back-propagated (Lightning's ``backward``,
   through AMP loss scaling and the ``1 / accumulate_grad_batches`` factor, which arrive as
   the incoming gradient ``s``), each chunk is embedded again with a graph, under its saved RNG
   state (the same dropout masks) and the step's autocast state, and ``e_chunk.backward(s * g_chunk)``
   adds its share to the parameter gradients; the chunk's graph is freed before the next one.

By the chain rule ``dL/dtheta = sum_r (dL/de_r) . (de_r/dtheta)`` over the rows ``r``, so the loss
and every gradient equal :class:`~embexp.losses.infonce.InfoNCELoss`'s on the same embeddings
(``tests/losses/test_cached.py``: within 1e-5 in fp32, dropout on, chunk sizes that do and do
not divide the batch). With dropout on, "the same embeddings" means the same dropout masks:
a forward pass over a chunk draws other random numbers than one over the whole batch, so a
cached step equals a plain step whose forward runs over the same chunks; with dropout off it
equals the one-pass plain step. Gradient clipping, optimizers and Lightning's hooks see
ordinary ``.grad`` values after ``backward``.

Cost: one extra forward pass (about a third more compute than forward + backward). Memory:
one chunk's activations plus the ``(rows, D)`` embeddings and their gradients. Each chunk
drops the padding columns that none of its rows uses. Not supported: ``torch.autograd.grad``
on the returned loss (step 3 accumulates into ``.grad``) and multi-process data parallelism
(the replayed backward passes would each trigger DDP's gradient reduction).

References:
    * L. Gao, Y. Zhang, J. Han, J. Callan. Scaling Deep Contrastive Learning Batch Size under
      Memory Limited Setup (GradCache). RepL4NLP 2021, arXiv:2101.06983;
      https://github.com/luyug/GradCache, Tevatron's ``GradCache`` trainer.
    * sentence-transformers ``CachedMultipleNegativesRankingLoss`` (``mini_batch_size``).
"""

from __future__ import annotations

import contextlib
import functools
import numbers

import torch
from torch import Tensor

from embexp.config.schema import CachedInfoNCELossConfig
from embexp.errors import ConfigError
from embexp.losses.infonce import InfoNCELoss

__all__ = ["CachedInfoNCELoss", "cached_loss", "split_inputs"]


def _check_chunk_size(chunk_size: int) -> int:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, numbers.Integral) or chunk_size <= 0:
        raise ConfigError("loss.chunk_size", f"must be an integer > 0, got {chunk_size!r}")
    return int(chunk_size)


class CachedInfoNCELoss(InfoNCELoss):
    """InfoNCE (:class:`~embexp.losses.infonce.InfoNCELoss`) trained with a gradient cache.

    Args:
        temperature, symmetric, mask_false_negatives: as for InfoNCE.
        chunk_size: rows embedded with a graph at a time (config key ``loss.chunk_size``,
            > 0); bounds activation memory, not the batch (``train.batch_size``).

    Called on embeddings (``loss(q, p, negatives, mask)``) it is plain InfoNCE. The training
    step calls :func:`cached_loss` with the encoder and the batch instead: embed in chunks
    without grad, InfoNCE on the cached embeddings, re-embed each chunk with grad under the
    same RNG state during ``backward`` (module docstring). Loss and gradients equal InfoNCE's.
    """

    runs_encoder = True  # the step embeds chunk by chunk inside the loss (cached_loss)

    def __init__(
        self,
        temperature: float = CachedInfoNCELossConfig.temperature,
        symmetric: bool = False,
        mask_false_negatives: bool = True,
        chunk_size: int = CachedInfoNCELossConfig.chunk_size,
    ):
        super().__init__(temperature, symmetric, mask_false_negatives)
        self.chunk_size = _check_chunk_size(chunk_size)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, chunk_size={self.chunk_size}"


def split_inputs(inputs: dict, chunk_size: int) -> list[dict]:
    """A tokenised batch as chunks of ``chunk_size`` rows, in order.

    Every tensor whose first dimension is the batch is sliced; in each chunk the trailing
    columns that no row attends to (``attention_mask`` all zero) are dropped from the tensors
    of the sequence's width, so a chunk of short texts is not embedded at the batch's width.
    """
    mask = inputs.get("attention_mask")
    n = next(v.size(0) for v in inputs.values() if isinstance(v, Tensor) and v.dim() > 0)
    width = mask.size(1) if isinstance(mask, Tensor) and mask.dim() == 2 else None
    chunks = []
    for start in range(0, n, chunk_size):
        rows = slice(start, start + chunk_size)
        keep = None
        if width is not None:
            used = mask[rows].any(dim=0).nonzero()  # (used columns, 1)
            keep = int(used.max()) + 1 if used.numel() else None
        chunk = {}
        for key, v in inputs.items():
            if isinstance(v, Tensor) and v.dim() > 0 and v.size(0) == n:
                v = v[rows]
                if keep is not None and v.dim() >= 2 and v.size(1) == width:
                    v = v[:, :keep]
            chunk[key] = v
        chunks.append(chunk)
    return chunks


class _RngState:
    """The CPU and CUDA generator states when a chunk was first embedded. :meth:`replay` sets
    them inside a fork, so a replay draws the same dropout masks and the RNG outside is
    untouched (a run resumes bit for bit whether or not it used the cache)."""

    def __init__(self, device: torch.device):
        self.cpu = torch.get_rng_state()
        self.devices = []
        if device.type == "cuda":
            self.devices = [device.index if device.index is not None else torch.cuda.current_device()]
        self.cuda = [torch.cuda.get_rng_state(d) for d in self.devices]

    @contextlib.contextmanager
    def replay(self):
        with torch.random.fork_rng(devices=self.devices):
            torch.set_rng_state(self.cpu)
            for d, state in zip(self.devices, self.cuda):
                torch.cuda.set_rng_state(state, d)
            yield


def _autocast_state(device: torch.device) -> list[dict]:
    """The autocast settings in force (on the device and the CPU), to re-enter during backward,
    where Lightning's precision plugin no longer holds its autocast context."""
    out = []
    for kind in dict.fromkeys((device.type, "cpu")):
        if torch.amp.is_autocast_available(kind):
            out.append(
                {
                    "device_type": kind,
                    "enabled": torch.is_autocast_enabled(kind),
                    "dtype": torch.get_autocast_dtype(kind),
                    "cache_enabled": torch.is_autocast_cache_enabled(),
                }
            )
    return out


def _score(loss, q: Tensor, p: Tensor, batch: dict) -> Tensor:
    """The loss on embeddings, in the training step's layout (positives, then hard negatives)."""
    b, n = q.size(0), batch["n_neg"]
    negatives = p[b:].view(b, n, -1) if n else None  # (batch, n_neg, dim)
    mask = batch.get("mask")
    return loss(q, p[:b], negatives, mask=None if mask is None else mask.to(q.device))


def _check_not_distributed() -> None:
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        raise NotImplementedError(
            "loss=cached_infonce runs on one process: its replayed backward passes would each "
            "trigger DDP's gradient reduction; use loss=infonce with several devices"
        )


def cached_loss(encoder, batch: dict, loss, chunk_size: int | None = None) -> Tensor:
    """One GradCache training step's loss (steps 1 and 2 of the module docstring).

    Args:
        encoder: called as ``encoder(**inputs).embeddings`` -> ``(rows, D)``; its parameters
            receive the gradients.
        batch: the training batch: ``query`` and ``passage`` tokenised inputs (passages are
            the ``B`` positives, then ``n_neg`` hard negatives per query, row-major),
            ``n_neg`` and an optional false-negative ``mask`` ``(B, B * (1 + n_neg))``.
        loss: ``loss(q, p, negatives, mask=...)`` on embeddings (InfoNCE).
        chunk_size: rows per chunk; default ``loss.chunk_size``.

    Returns:
        The scalar loss, a leaf tensor whose ``backward()`` re-embeds each chunk with grad
        (step 3) and accumulates the parameter gradients. Under ``torch.no_grad`` the loss
        alone, no hook.
    """
    size = _check_chunk_size(chunk_size if chunk_size is not None else loss.chunk_size)
    _check_not_distributed()
    device = next(encoder.parameters()).device
    query_chunks = split_inputs(batch["query"], size)
    chunks, n_query_chunks = [*query_chunks, *split_inputs(batch["passage"], size)], len(query_chunks)
    states, embeddings = [], []
    with torch.no_grad():
        for inputs in chunks:  # step 1
            states.append(_RngState(device))
            embeddings.append(encoder(**inputs).embeddings.detach())  # (chunk, dim)
    q = torch.cat(embeddings[:n_query_chunks])  # (batch, dim)
    p = torch.cat(embeddings[n_query_chunks:])  # (batch * (1 + n_neg), dim)
    if not torch.is_grad_enabled():
        return _score(loss, q, p, batch)
    q.requires_grad_(True)
    p.requires_grad_(True)
    value = _score(loss, q, p, batch)
    value.backward()  # step 2: d loss / d embedding, the cache
    cache = [*_grad(q).split([len(e) for e in embeddings[:n_query_chunks]])]
    cache += [*_grad(p).split([len(e) for e in embeddings[n_query_chunks:]])]
    out = value.detach().requires_grad_(True)
    out.register_hook(
        functools.partial(
            _replay,
            encoder=encoder,
            chunks=chunks,
            cache=cache,
            states=states,
            autocast=_autocast_state(device),
        )
    )
    return out


def _grad(t: Tensor) -> Tensor:
    return t.grad if t.grad is not None else torch.zeros_like(t)


def _replay(
    grad_out: Tensor, *, encoder, chunks: list[dict], cache: list[Tensor], states: list, autocast: list[dict]
) -> None:
    """Step 3, a hook on the returned loss: ``grad_out`` is d(what backward started from) / d loss
    (AMP scale, 1 / accumulation); each chunk's embedding Jacobian meets ``grad_out * cache``."""
    with torch.enable_grad():
        for inputs, grad, state in zip(chunks, cache, states):
            with state.replay(), contextlib.ExitStack() as stack:
                for kwargs in autocast:
                    stack.enter_context(torch.autocast(**kwargs))
                emb = encoder(**inputs).embeddings  # (chunk, dim)
            emb.backward((grad * grad_out).to(emb.dtype))
