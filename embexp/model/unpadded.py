"""Unpadded (varlen) forward for BERT-family encoders (``model.unpad=true``).

A padded batch of ``B`` texts of lengths ``l_1 .. l_B`` costs ``B x max(l)`` tokens in every
dense layer; only ``sum(l)`` of them are real. The unpadded forward gathers the real tokens once,
after the embeddings, into a packed ``(tokens, hidden)`` matrix and runs every projection,
feed-forward layer, LayerNorm, activation and dropout on it. Attention stays within each text::

    packed x  (T, H),  T = sum_b l_b,  offsets o_0 = 0, o_b = l_1 + ... + l_b
    attn(x)[o_{b-1} + i] = sum_{j < l_b} softmax_j(q_i . k_j / sqrt(d)) v_j    (per head, text b)

with one of three kernels (``model.unpad_kernel``):

- ``varlen``: PyTorch's jagged nested tensors with ``scaled_dot_product_attention``; on CUDA this
  dispatches to the flash / memory-efficient varlen kernels, so no pad token is ever computed;
- ``split``: one attention call per text on its slice of the packed q, k, v (no padding at all;
  a kernel launch per text, so for CPUs);
- ``padded``: q, k and v are scattered back to ``(B, heads, max(l), d)`` for the attention only
  (SDPA with a key mask). The dense layers, which dominate the FLOPs, still see real tokens only.

``auto`` (default): ``varlen`` on CUDA, ``split`` elsewhere. Training with attention dropout on a
CPU, ``split`` and ``padded`` use the eager formula (softmax, dropout, matmul), as
:class:`~embexp.model.encoder.BiEncoder` does there: PyTorch's SDPA with dropout is slow on CPU.

The forward calls the model's own submodules (``query``/``key``/``value``, ``attention.output``,
``intermediate``, ``output``), so PEFT/LoRA layers injected into them take part unchanged, and it
equals the padded forward up to float summation order (``tests/model/test_unpadded.py``). Dropout
draws one mask entry per real token instead of per padded position: same distribution, other
random numbers than a padded run with the same seed.

Supported: the BERT-layer families of :data:`MODEL_TYPES` with absolute position embeddings (BERT,
MiniLM, BGE, E5, RoBERTa, XLM-R, CamemBERT, ELECTRA, data2vec-text): :func:`unsupported_reason` says
why another model is not.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

KERNELS = ("auto", "varlen", "padded", "split")  # model.unpad_kernel: auto = varlen on CUDA, split on CPU


# model types whose layers are exactly BERT's post-LayerNorm block (BertLayer and its copies):
# a look-alike with extra norms (pre-LN variants, MegatronBERT, XLM-R XL) or sparse attention
# (BigBird, Longformer) would run, and compute something else
MODEL_TYPES = ("bert", "roberta", "xlm-roberta", "camembert", "electra", "data2vec-text")


@dataclass
class Packed:
    """The real tokens of a padded ``(batch, seq)`` input, row by row."""

    index: torch.Tensor  # (tokens,) flat positions b * seq + i of the real tokens
    rows: torch.Tensor  # (tokens,) the text b each real token belongs to
    lengths: torch.Tensor  # (batch,) real tokens per text
    offsets: torch.Tensor  # (batch + 1,) where each text starts in the packed order
    key_mask: torch.Tensor  # (batch, 1, 1, seq) bool: real keys, for the padded kernel
    sizes: list[int]  # the lengths on the host (split kernel, nested-tensor bounds)
    batch: int
    seq: int

    @classmethod
    def of(cls, attention_mask: torch.Tensor) -> Packed:
        """Two host syncs on an accelerator (the lengths, then the token positions); none per layer."""
        mask = attention_mask.bool()
        batch, seq = mask.shape
        lengths = mask.sum(1)
        sizes = lengths.tolist()
        if batch and min(sizes) == 0:
            raise ValueError(f"text {sizes.index(0)} of the batch has no tokens (an all-padding row)")
        index = mask.flatten().nonzero().squeeze(1)
        offsets = F.pad(lengths.cumsum(0), (1, 0))
        return cls(index, index // seq, lengths, offsets, mask[:, None, None, :], sizes, batch, seq)

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """``(tokens, ...)`` -> ``(batch, seq, ...)``, zeros at the padding."""
        out = x.new_zeros((self.batch * self.seq, *x.shape[1:]))
        return out.index_put((self.index,), x).view(self.batch, self.seq, *x.shape[1:])

    def unpad(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, seq, ...)`` -> ``(tokens, ...)``."""
        return x.reshape(self.batch * self.seq, *x.shape[2:]).index_select(0, self.index)


def unsupported_reason(model: nn.Module) -> str | None:
    """Why ``model`` (a Hugging Face base model, PEFT already unwrapped) cannot run unpadded, or
    ``None`` when it can."""
    cfg = getattr(model, "config", None)
    layers = getattr(getattr(model, "encoder", None), "layer", None)
    if cfg is None or not hasattr(model, "embeddings") or not isinstance(layers, nn.ModuleList):
        return f"{type(model).__name__} does not have BERT's embeddings/encoder.layer layout"
    kind = getattr(cfg, "model_type", None)
    if kind not in MODEL_TYPES:
        return f"model_type {kind!r} is not one of the BERT-layer families {MODEL_TYPES}"
    if getattr(cfg, "is_decoder", False):
        return "a decoder (causal attention) model"
    position = getattr(cfg, "position_embedding_type", "absolute")
    if position not in (None, "absolute"):
        return f"position_embedding_type={position!r} (relative positions need the padded forward)"
    for layer in layers:
        names = ("attention.self.query", "attention.self.key", "attention.self.value")
        names += ("attention.output", "intermediate", "output")
        missing = [n for n in names if _get(layer, n) is None]
        if missing:
            return f"{type(layer).__name__} has no {', '.join(missing)}"
        if getattr(layer, "add_cross_attention", False):
            return "a layer with cross-attention"
    return None


def _get(module: nn.Module, dotted: str):
    for part in dotted.split("."):
        module = getattr(module, part, None)
        if module is None:
            return None
    return module


def resolve_kernel(kernel: str, device: torch.device) -> str:
    if kernel not in KERNELS:
        raise ValueError(f"unknown unpadded attention kernel {kernel!r}; choose one of {KERNELS}")
    if kernel == "auto":
        return "varlen" if device.type == "cuda" else "split"
    return kernel


def forward(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    token_type_ids: torch.Tensor | None = None,
    kernel: str = "auto",
) -> tuple[torch.Tensor, Packed]:
    """The last hidden states of the real tokens, ``(tokens, hidden)``, and their :class:`Packed`
    layout. ``model`` is the base model (``BiEncoder._hf_model()``)."""
    packed = Packed.of(attention_mask)
    kernel = resolve_kernel(kernel, input_ids.device)
    # the embeddings on the padded ids (position and token-type ids exactly as the model makes them)
    x = model.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
    if hasattr(model, "embeddings_project"):  # ELECTRA: embedding size != hidden size
        x = model.embeddings_project(x)
    x = packed.unpad(x)
    for layer in model.encoder.layer:
        # the model's own gradient checkpointing flag (``gradient_checkpointing_enable()``)
        if getattr(layer, "gradient_checkpointing", False) and layer.training and torch.is_grad_enabled():
            from torch.utils.checkpoint import checkpoint

            x = checkpoint(_layer, layer, x, packed, kernel, use_reentrant=False)
        else:
            x = _layer(layer, x, packed, kernel)
    return x, packed


def _layer(layer: nn.Module, x: torch.Tensor, packed: Packed, kernel: str) -> torch.Tensor:
    """One BERT layer on packed tokens: self-attention, its output projection + residual
    LayerNorm, then the feed-forward block + residual LayerNorm (``BertLayer.forward``)."""
    sa = layer.attention.self
    heads, d = sa.num_attention_heads, sa.attention_head_size
    scale = getattr(sa, "scaling", d**-0.5)
    dropout = sa.dropout.p if sa.training else 0.0
    q, k, v = (proj(x).view(-1, heads, d) for proj in (sa.query, sa.key, sa.value))  # (tokens, heads, d)
    if kernel == "varlen":
        attn = _varlen(q, k, v, packed, dropout, scale)
    elif kernel == "split":
        attn = _split(q, k, v, packed, dropout, scale)
    else:
        attn = _padded(q, k, v, packed, dropout, scale)
    h = layer.attention.output(attn.reshape(-1, heads * d), x)
    return layer.output(layer.intermediate(h), h)


def _varlen(q, k, v, packed: Packed, dropout: float, scale: float) -> torch.Tensor:
    lo, hi = min(packed.sizes), max(packed.sizes)  # known bounds: SDPA reads no lengths off the device

    def jagged(t: torch.Tensor) -> torch.Tensor:  # (B, j, heads, d) -> (B, heads, j, d)
        nt = torch.nested.nested_tensor_from_jagged(t, packed.offsets, min_seqlen=lo, max_seqlen=hi)
        return nt.transpose(1, 2)

    out = F.scaled_dot_product_attention(jagged(q), jagged(k), jagged(v), dropout_p=dropout, scale=scale)
    return out.transpose(1, 2).values()  # (tokens, heads, d)


def _split(q, k, v, packed: Packed, dropout: float, scale: float) -> torch.Tensor:
    parts = (t.transpose(0, 1).split(packed.sizes, dim=1) for t in (q, k, v))  # (heads, l, d) per text
    outs = [_attend(qi, ki, vi, None, dropout, scale) for qi, ki, vi in zip(*parts)]
    return torch.cat(outs, dim=1).transpose(0, 1)  # (tokens, heads, d)


def _padded(q, k, v, packed: Packed, dropout: float, scale: float) -> torch.Tensor:
    qkv = packed.pad(torch.stack((q, k, v), dim=1))  # one scatter: (B, seq, 3, heads, d)
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # (B, heads, seq, d) each
    out = _attend(q, k, v, packed.key_mask, dropout, scale)
    return packed.unpad(out.transpose(1, 2))  # (tokens, heads, d)


def _attend(q, k, v, key_mask: torch.Tensor | None, dropout: float, scale: float) -> torch.Tensor:
    """SDPA, or the eager formula when training with dropout on a CPU (SDPA with dropout is slow there)."""
    if dropout > 0 and q.device.type == "cpu":
        scores = torch.matmul(q, k.transpose(-1, -2)) * scale
        if key_mask is not None:
            scores = scores.masked_fill(~key_mask, torch.finfo(scores.dtype).min)
        return torch.matmul(F.dropout(scores.softmax(-1), p=dropout), v)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask, dropout_p=dropout, scale=scale)


def pool(hidden: torch.Tensor, packed: Packed, mode: str) -> torch.Tensor:
    """``BiEncoder.pool`` on packed tokens: ``(tokens, hidden)`` -> ``(batch, hidden)``."""
    if mode == "mean":
        sums = hidden.new_zeros(packed.batch, hidden.size(1)).index_add(0, packed.rows, hidden)
        return sums / packed.lengths.clamp(min=1).unsqueeze(1).to(hidden.dtype)
    if mode == "cls":  # the first real token of each text (BiEncoder.pool: the same, either padding side)
        return hidden[packed.offsets[:-1]]
    if mode == "last":
        return hidden[packed.offsets[1:] - 1]
    raise ValueError(f"unknown pooling {mode!r}")
