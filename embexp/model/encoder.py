"""The bi-encoder: a Hugging Face backbone, pooling and L2 normalisation.

Queries and passages share the backbone but have their own prefix and max length
(``EncoderSpec``). The spec is saved next to every checkpoint (``embexp_encoder.json``)
and re-applied on load, so a model trained with ``query: `` prefixes is evaluated with
them too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from embexp.config.schema import EvalConfig, ModelConfig
from embexp.config.store import to_schema
from embexp.errors import ConfigError
from embexp.model import registry, unpadded

log = logging.getLogger(__name__)

Kind = Literal["query", "passage"]
POOLINGS = ("mean", "cls", "last")
TRAIN_ATTENTION = ("auto", "sdpa", "eager", "keep")  # model.train_attention (BiEncoder._sync_attention)
SPEC_FILE = "embexp_encoder.json"


@dataclass
class EncoderSpec:
    """What an encoder's embeddings are (saved next to every checkpoint, part of the embedding
    cache's key): a view of :class:`~embexp.config.schema.ModelConfig`, the one home of the
    defaults, with none of its own. Build it with :meth:`of` (or :func:`encoder_spec` from a
    config node)."""

    name_or_path: str
    pooling: str | None
    normalize: bool
    query_prefix: str | None
    passage_prefix: str | None
    query_max_length: int
    passage_max_length: int

    @classmethod
    def of(cls, model: ModelConfig) -> EncoderSpec:
        """The spec of a ``model`` schema object, checked."""
        return cls(**{f.name: getattr(model, f.name) for f in dataclasses.fields(cls)}).validate()

    def validate(self) -> EncoderSpec:
        """Check values; ``None`` prefixes/pooling mean "inherit from the checkpoint" and
        resolve to ``""`` / ``"mean"`` for a plain Hugging Face model."""
        if self.pooling is not None and self.pooling not in POOLINGS:
            raise ConfigError("model.pooling", f"unknown pooling {self.pooling!r}; choose one of {POOLINGS}")
        for key in ("query_max_length", "passage_max_length"):
            v = getattr(self, key)
            if not isinstance(v, int) or v <= 0:
                raise ConfigError(f"model.{key}", f"must be a positive integer, got {v!r}")
        for key in ("query_prefix", "passage_prefix"):
            if getattr(self, key) is not None and not isinstance(getattr(self, key), str):
                raise ConfigError(f"model.{key}", f"must be a string, got {getattr(self, key)!r}")
        return self

    def prefix(self, kind: Kind) -> str:
        return self.query_prefix if kind == "query" else self.passage_prefix

    def max_length(self, kind: Kind) -> int:
        return self.query_max_length if kind == "query" else self.passage_max_length

    @classmethod
    def from_dict(cls, d: dict) -> EncoderSpec:
        """A saved spec (``embexp_encoder.json``); keys it lacks take ModelConfig's defaults."""
        base = ModelConfig(name_or_path=str(d["name_or_path"]))
        return cls(**{f.name: d.get(f.name, getattr(base, f.name)) for f in dataclasses.fields(cls)})


@dataclass
class EncoderOutput:
    embeddings: torch.Tensor  # (batch, dim), L2-normalised when spec.normalize


@functools.cache
def _cpu_has_amx_bf16() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            return "amx_bf16" in f.read()
    except OSError:
        return False


def resolve_dtype(dtype: str | None, device: torch.device) -> str:
    """``auto``: bf16 where the hardware multiplies bf16 natively (CUDA with bf16 support,
    CPUs with AMX), else fp32. Its effect on scores and speed: see BENCHMARKS.md."""
    if dtype in (None, "auto"):
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if device.type == "cpu" and _cpu_has_amx_bf16() else "fp32"
    if dtype not in DTYPES:
        raise ConfigError("eval.dtype", f"unknown dtype {dtype!r}; use one of {('auto',) + DTYPES}")
    return dtype


DTYPES = ("fp32", "bf16", "fp16")
LIGHTNING_PRECISION = {"fp32": "32-true", "bf16": "bf16-mixed", "fp16": "16-mixed"}


def resolve_precision(precision: str | None) -> str:
    """Lightning's ``trainer.precision``; ``auto`` is :func:`resolve_dtype`'s choice for the
    training device (bf16-mixed on CUDA with bf16 and on AMX CPUs, else 32-true)."""
    if precision not in (None, "auto"):
        return str(precision)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return LIGHTNING_PRECISION[resolve_dtype("auto", device)]


def _autocast(device: torch.device, dtype: str):
    dtype = resolve_dtype(dtype, device)
    if dtype == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16 if dtype == "bf16" else torch.float16)


_FLUSH_EVERY = 32  # batches of embeddings kept on a CUDA device before one copy to the host


def length_batches(
    lengths: list[int], batch_size: int, max_tokens: int | None = None
) -> list[tuple[int, int]]:
    """``(start, end)`` slices of ``lengths`` (sorted longest first) into batches of at most
    ``batch_size`` texts and, with ``max_tokens``, at most that many padded tokens (the batch's
    first, longest text times its rows; a text longer than ``max_tokens`` goes alone)."""
    out, start, n = [], 0, len(lengths)
    while start < n:
        rows = batch_size
        if max_tokens:
            rows = max(1, min(rows, max_tokens // max(1, lengths[start])))
        out.append((start, min(n, start + rows)))
        start += rows
    return out


class BiEncoder(nn.Module):
    """``forward`` embeds tokenised inputs; ``encode`` embeds raw texts in sorted batches."""

    def __init__(self, backbone: nn.Module, tokenizer, spec: EncoderSpec, train_attention: str = "auto"):
        super().__init__()
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.spec = spec.validate()
        if train_attention not in TRAIN_ATTENTION:
            raise ConfigError(
                "model.train_attention", f"must be auto, sdpa, eager or keep, got {train_attention!r}"
            )
        self.train_attention = train_attention
        self.pad_to_multiple_of: int | None = None  # bucketed lengths (model.pad_to_multiple_of)
        self.cpu_batch_tokens: int | None = None  # encode batches on a CPU (model.cpu_batch_tokens)
        self.unpad: bool = False  # model.unpad: the packed forward of embexp.model.unpadded
        self.unpad_kernel: str = "auto"

    def set_unpad(self, on: bool, kernel: str = "auto") -> BiEncoder:
        """Run the backbone on the real tokens only (:mod:`embexp.model.unpadded`); a
        ConfigError names ``model.unpad`` when the architecture cannot."""
        if kernel not in unpadded.KERNELS:
            raise ConfigError("model.unpad_kernel", f"must be one of {unpadded.KERNELS}, got {kernel!r}")
        if on:
            reason = unpadded.unsupported_reason(self._hf_model())
            if reason is not None:
                raise ConfigError(
                    "model.unpad",
                    f"{self.spec.name_or_path} cannot run unpadded: {reason}; set model.unpad=false",
                )
        self.unpad, self.unpad_kernel = bool(on), kernel
        return self

    def _hf_model(self):
        bb = self.backbone
        return bb.get_base_model() if hasattr(bb, "get_base_model") else bb

    def train(self, mode: bool = True):
        super().train(mode)
        self._sync_attention()
        return self

    def _sync_attention(self) -> None:
        """Use the attention kernel of the current mode. On CPU, PyTorch's SDPA with attention
        dropout falls back to a slow path (slower training steps than eager attention; see
        BENCHMARKS.md), so ``auto`` trains with eager attention there and evaluates with SDPA; the
        dropout itself is unchanged.

        Called by ``train()`` and at every ``forward``: Lightning restores the training mode after
        a validation by setting each module's ``training`` flag, not through ``train()``, so a
        switch made only in ``train()`` left every epoch after the first validation on the eval
        kernel, and a run resumed from a checkpoint on the other one (under bf16 the two kernels
        round differently: a resumed run was not bit-exact)."""
        if self.train_attention == "keep":
            return
        hf = self._hf_model()
        if not hasattr(hf, "set_attn_implementation"):
            return
        if not hasattr(self, "_eval_attention"):
            self._eval_attention = getattr(hf.config, "_attn_implementation", None) or "sdpa"
        want = self._eval_attention
        if self.training:
            if self.train_attention == "auto":
                dropout = float(getattr(hf.config, "attention_probs_dropout_prob", 0.0) or 0.0)
                on_cpu = next(self.parameters()).device.type == "cpu"
                if on_cpu and dropout > 0 and self._eval_attention == "sdpa":
                    want = "eager"
            else:
                want = self.train_attention
        if getattr(hf.config, "_attn_implementation", None) != want:
            try:
                hf.set_attn_implementation(want)
            except (ValueError, ImportError, AttributeError):  # a model without that kernel: keep its own
                self.train_attention = "keep"

    # ---- construction -------------------------------------------------------------
    @classmethod
    def from_spec(cls, spec: EncoderSpec, **model_kwargs) -> BiEncoder:
        from transformers import AutoModel, AutoTokenizer

        spec.validate()
        path = registry.resolve(spec.name_or_path)
        saved = Path(path) / SPEC_FILE
        if saved.exists():
            return cls.load(path, expect=spec)
        tokenizer = AutoTokenizer.from_pretrained(path)
        backbone = AutoModel.from_pretrained(path, **model_kwargs)
        spec = dataclasses.replace(
            spec,
            pooling=spec.pooling or "mean",
            query_prefix=spec.query_prefix or "",
            passage_prefix=spec.passage_prefix or "",
        )
        return cls(backbone, tokenizer, spec)

    @classmethod
    def load(
        cls, path: str | Path, expect: EncoderSpec | None = None, check_prefixes: bool = True
    ) -> BiEncoder:
        """Load a directory written by :meth:`save` (full weights or a PEFT adapter).

        ``expect`` is the spec from the user's config: pooling and prefixes must agree
        with what the checkpoint was trained with, or a ConfigError names the key.
        """
        from transformers import AutoModel, AutoTokenizer

        path = Path(path)
        saved = EncoderSpec.from_dict(json.loads((path / SPEC_FILE).read_text()))
        if expect is not None and check_prefixes:
            for key in ("query_prefix", "passage_prefix", "pooling"):
                want, have = getattr(expect, key), getattr(saved, key)
                if want is not None and want != have:
                    raise ConfigError(
                        f"model.{key}",
                        f"checkpoint {path} was trained with {key}={have!r} "
                        f"but the config asks for {want!r}; "
                        f"set model.{key}=null to use the checkpoint's value, or model.{key}={have!r}",
                    )
        if expect is not None:  # lengths are an inference choice: the config wins
            saved.query_max_length = expect.query_max_length or saved.query_max_length
            saved.passage_max_length = expect.passage_max_length or saved.passage_max_length
        tokenizer = AutoTokenizer.from_pretrained(path)
        if (path / "adapter_config.json").exists():
            from peft import PeftModel

            meta = json.loads((path / SPEC_FILE).read_text())
            base = AutoModel.from_pretrained(registry.resolve(meta["base_model"]))
            backbone = PeftModel.from_pretrained(base, path)
        else:
            backbone = AutoModel.from_pretrained(path)
        enc = cls(backbone, tokenizer, saved)
        return enc

    def save(
        self, path: str | Path, base_model: str | None = None, name_or_path: str | Path | None = None
    ) -> Path:
        """Write weights (safetensors) or the PEFT adapter, the tokenizer and the spec (which names
        ``name_or_path``, the folder the model will be loaded from: ``path`` unless it is written
        elsewhere first and moved there)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.backbone.save_pretrained(path, safe_serialization=True)
        self.tokenizer.save_pretrained(path)
        meta = dataclasses.asdict(self.spec)
        meta["base_model"] = base_model or self.spec.name_or_path
        meta["name_or_path"] = str(name_or_path or path)
        (path / SPEC_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        return path

    # ---- forward ------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dim(self) -> int:
        return int(self.backbone.config.hidden_size)

    def tokenize(self, texts: list[str], kind: Kind, padding: bool | str = True) -> dict:
        prefix = self.spec.prefix(kind)
        if prefix:
            texts = [prefix + t for t in texts]
        return self.tokenizer(
            texts,
            max_length=self.spec.max_length(kind),
            truncation=True,
            padding=padding,
            return_tensors="pt" if padding else None,
        )

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mode = self.spec.pooling
        if mode == "mean":
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (batch, seq, 1)
            return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (batch, dim)
        if mode == "cls":  # the first real token: position 0 unless the tokenizer pads on the left
            return hidden[torch.arange(hidden.size(0), device=hidden.device), attention_mask.argmax(1)]
        if mode == "last":  # right padding: last non-pad token
            idx = attention_mask.sum(1) - 1  # (batch,)
            return hidden[torch.arange(hidden.size(0), device=hidden.device), idx]
        raise ValueError(f"unknown pooling {mode!r}")

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **kw) -> EncoderOutput:
        self._sync_attention()
        if self.unpad and set(kw) <= {"token_type_ids"}:
            hf = self._hf_model()
            hidden, packed = unpadded.forward(
                hf, input_ids, attention_mask, kw.get("token_type_ids"), self.unpad_kernel
            )
            emb = unpadded.pool(hidden, packed, self.spec.pooling)
        else:
            out = self.backbone(input_ids=input_ids, attention_mask=attention_mask, **kw)
            emb = self.pool(out.last_hidden_state, attention_mask)
        if self.spec.normalize:
            emb = nn.functional.normalize(emb.float(), dim=-1)
        return EncoderOutput(embeddings=emb)

    @torch.inference_mode()
    def encode(
        self,
        texts: list[str],
        kind: Kind,
        *,
        batch_size: int = EvalConfig.batch_size,
        dtype: str = "auto",
        show_progress: bool = False,
        desc: str | None = None,
    ) -> np.ndarray:
        """Embed ``texts`` (float32, shape (n, dim)), in batches of similar length.

        Length-sorted batches carry little padding, so they run the padded forward even with
        ``model.unpad`` (on a 2-core CPU packing them cost more than it saved: BENCHMARKS.md §10).
        On a CPU a batch also holds at most ``cpu_batch_tokens`` padded tokens (long passages go
        in smaller batches, whose activations stay in cache: faster there, BENCHMARKS.md §1)."""
        was_training, unpad = self.training, self.unpad
        self.eval()
        self.unpad = False
        try:
            enc = self.tokenize(list(texts), kind, padding=False)
            ids = enc["input_ids"]
            order = np.argsort([-len(x) for x in ids], kind="stable")
            out = np.empty((len(ids), self.dim), dtype=np.float32)
            device = self.device
            cap = self.cpu_batch_tokens if device.type == "cpu" else None
            batches = length_batches([len(ids[i]) for i in order], batch_size, cap)
            bar = None
            if show_progress:
                from rich.progress import Progress

                bar = Progress(transient=True)
                task = bar.add_task(desc or f"encoding {len(ids)} {kind}s", total=len(ids))
                bar.start()
            cuda = device.type == "cuda"
            pending: list[tuple[np.ndarray, torch.Tensor]] = []  # (rows, embeddings still on the device)

            def flush() -> None:
                if pending:  # one device-to-host copy (and sync) for many batches
                    rows = np.concatenate([r for r, _ in pending])
                    out[rows] = torch.cat([e for _, e in pending]).cpu().numpy()
                    pending.clear()

            try:
                # one autocast region for all batches: its cache casts each weight to bf16 once,
                # where a region per batch cast the whole model again for every batch
                with _autocast(device, dtype):
                    for s, e in batches:
                        idx = order[s:e]
                        batch = self.tokenizer.pad(
                            {k: [enc[k][i] for i in idx] for k in enc.keys()},
                            return_tensors="pt",
                            pad_to_multiple_of=self.pad_to_multiple_of,
                        )
                        # CUDA: pinned, asynchronous copies; no host sync per batch, so padding the
                        # next batch on the CPU overlaps this one's compute on the GPU
                        batch = {
                            k: (v.pin_memory() if cuda else v).to(device, non_blocking=cuda)
                            for k, v in batch.items()
                        }
                        # clone: a pooled view (cls, no normalisation) must not keep the hidden states alive
                        pending.append((idx, self(**batch).embeddings.float().clone()))
                        if not cuda or len(pending) >= _FLUSH_EVERY:
                            flush()
                        if bar is not None:
                            bar.advance(task, len(idx))
                flush()
            finally:
                if bar is not None:
                    bar.stop()
            return out
        finally:
            self.train(was_training)
            self.unpad = unpad

    def compile_backbone(self, backend: str = "inductor") -> BiEncoder:
        """``torch.compile`` the backbone's forward in place (``nn.Module.compile``: parameter
        names, the state dict, PEFT adapters and saving are unchanged). Each new sequence length
        can trigger a recompilation until dynamo marks the length dynamic; bucket the lengths with
        ``model.pad_to_multiple_of`` to keep the number of shapes small.

        Unpadded (``model.unpad``), training does not call the backbone's own forward: each
        layer's attention output, intermediate and output blocks are compiled too (dynamic in the
        number of tokens), which fuses dropout, residual, LayerNorm and the activation."""
        if self.unpad:
            for layer in self._hf_model().encoder.layer:
                for block in (layer.attention.output, layer.intermediate, layer.output):
                    block.compile(backend=backend, dynamic=True)
        self.backbone.compile(backend=backend)  # the padded forward, which encode() runs
        return self

    def fingerprint(self) -> str:
        """Hash of all weights (trainable or not) and the spec: keys the embedding cache."""
        h = hashlib.blake2b(digest_size=16)
        spec = dataclasses.asdict(self.spec)
        spec.pop("name_or_path", None)
        h.update(json.dumps(spec, sort_keys=True).encode())
        for name, t in sorted(self.backbone.state_dict().items()):
            h.update(name.encode())
            t = t.detach()
            if t.dtype == torch.bfloat16:
                t = t.float()
            h.update(t.cpu().contiguous().numpy().tobytes())
        return h.hexdigest()


def model_config(model_cfg) -> ModelConfig:
    """The ``model`` node (DictConfig, dict or ModelConfig) as its schema object, checked: types,
    unknown keys and ranges (the schema's), the choices this layer owns (pooling, attention,
    unpadded kernel) and the lengths. Errors name ``model.<key>``."""
    model = model_cfg if isinstance(model_cfg, ModelConfig) else to_schema(model_cfg, ModelConfig, "model")
    for key, choices in (("train_attention", TRAIN_ATTENTION), ("unpad_kernel", unpadded.KERNELS)):
        if getattr(model, key) not in choices:
            raise ConfigError(f"model.{key}", f"must be one of {choices}, got {getattr(model, key)!r}")
    EncoderSpec.of(model)  # pooling, lengths, prefixes
    return model


def encoder_spec(model_cfg) -> EncoderSpec:
    """The ``model`` config node as a validated :class:`EncoderSpec`."""
    return EncoderSpec.of(model_config(model_cfg))


def build_encoder(model_cfg) -> BiEncoder:
    """The encoder a ``model`` node (typed or not) names (short name, folder or hub id)."""
    model = model_config(model_cfg)
    enc = BiEncoder.from_spec(EncoderSpec.of(model))
    enc.train_attention = model.train_attention
    enc.pad_to_multiple_of = model.pad_to_multiple_of
    enc.cpu_batch_tokens = model.cpu_batch_tokens
    enc.set_unpad(model.unpad, model.unpad_kernel)
    return enc


# ---- tokenizer only (data cards: token lengths without loading weights) -------------------------
TokenCounter = Callable[[list[str], str], list[int]]


def _count_tokens(tokenizer, spec: EncoderSpec, texts: list[str], kind: Kind, batch: int = 1024) -> list[int]:
    """Tokens per text as the encoder sees it (prefix and special tokens included), untruncated."""
    prefix = spec.prefix(kind) or ""
    out: list[int] = []
    for s in range(0, len(texts), batch):
        enc = tokenizer(
            [prefix + t for t in texts[s : s + batch]], truncation=False, padding=False, verbose=False
        )
        out += [len(ids) for ids in enc["input_ids"]]
    return out


def tokenizer_spec(model_cfg) -> EncoderSpec:
    """The ``model`` node's spec with a checkpoint's saved prefixes filled in where the config
    leaves them null (as :meth:`BiEncoder.load` does); lengths are the config's."""
    spec = encoder_spec(model_cfg)
    saved = Path(registry.resolve(spec.name_or_path)) / SPEC_FILE
    have = EncoderSpec.from_dict(json.loads(saved.read_text())) if saved.exists() else spec

    def pick(key: str) -> str:
        return (getattr(spec, key) if getattr(spec, key) is not None else getattr(have, key)) or ""

    return dataclasses.replace(spec, query_prefix=pick("query_prefix"), passage_prefix=pick("passage_prefix"))


def load_tokenizer(model_cfg):
    """The tokenizer of the model a ``model`` node names (short name, folder, checkpoint or hub
    id); no weights are loaded."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(registry.resolve(encoder_spec(model_cfg).name_or_path))


def token_counter(model_cfg) -> TokenCounter:
    """``count(texts, kind) -> [tokens per text]`` for the model a ``model`` node names, with its
    ``query_prefix`` / ``passage_prefix`` and special tokens, without truncation."""
    tokenizer, spec = load_tokenizer(model_cfg), tokenizer_spec(model_cfg)
    return functools.partial(_count_tokens, tokenizer, spec)


def encoder_token_counter(encoder: BiEncoder) -> TokenCounter:
    """:func:`token_counter` for a built encoder (its tokenizer and spec)."""
    return functools.partial(_count_tokens, encoder.tokenizer, encoder.spec)
