"""Typed schemas of the config groups: one dataclass per kind of node.

Each ``conf/<group>/*.yaml`` names its schema first in its defaults list
(``/schema/<group>/<name>``, registered with its defaults by :mod:`embexp.config.store`), so
Hydra type-checks every value and every override while composing: ``adapter.r=abc`` or
``adapter.rank=8`` fails right there. **The dataclass defaults are the one home of every
default**: a YAML sets only what differs (a model's name, an interpolation), and a component
takes its values from its typed node (``tests/config/test_default_homes.py`` fails on a YAML
or a signature that writes a default again).

A node becomes its dataclass with :func:`embexp.config.store.to_schema`, which runs
``__post_init__``: the range checks that belong to the config itself, each raising
:class:`~embexp.errors.ConfigError` naming its key. Choices that a library layer owns
(poolings, retrievers, leakage policies) and checks across keys, files or the model are each
layer's own, called by the run's pre-flight, :mod:`embexp.train.preflight`.

This module imports only the standard library, omegaconf and embexp.errors: every layer may
import it.
"""

# No "from __future__ import annotations": OmegaConf reads these annotations at run time.

import math
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, ClassVar

from omegaconf import MISSING

from embexp.errors import ConfigError

_MISSING_MESSAGE = "missing"  # field metadata: what to say when a required value is not set
# field metadata of a key that says how a run executes or is shown, not what it computes: outside
# the config hash (a run folder binds to a config regardless of it; embexp.train.record)
EXECUTION = {"execution": True}
_SET_BEIR = "set the BEIR folder, e.g. data.path=../shared/datasets/scifact"
_SET_PAIRS = "set the pairs file: data.path=FILE.jsonl"
_SET_MODEL = "set a model: model=minilm-l6, a hub id, or model.name_or_path=RUN_DIR/model"


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(key, message)


def _positive_int(value: int, key: str, minimum: int = 1) -> None:
    _check(value >= minimum, key, f"must be an integer >= {minimum}, got {value!r}")


# ---- data ---------------------------------------------------------------------------------
@dataclass
class BeirData:
    """``data=beir``: any BEIR folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/{split}.tsv``)."""

    KEY: ClassVar[str] = "data"
    kind: str = "beir"
    path: str = field(default=MISSING, metadata={_MISSING_MESSAGE: _SET_BEIR})
    name: str | None = None  # shown in run ids and tables; null: the folder name
    split: str = "test"  # the evaluation split
    train_split: str = "train"
    dev_split: str | None = "dev"  # carved from train when the folder has none
    dev_fraction: float = 0.1  # share of training queries carved into dev, in (0, 1)
    dev_max_queries: int | None = 200
    dev_seed: int = 0
    temporal: bool = False  # carve dev by timestamp (queries need a timestamp field)
    leakage: str = "drop"  # drop | fail | warn (embexp.data.leakage.POLICIES)
    skip_unknown_ids: bool = False
    min_positive_grade: int = 1  # training positives: qrels grade >= this (eval: graded nDCG, grade > 0)
    max_positives_per_query: int | None = None  # training pairs per query, a seeded sample; null: all
    sample_seed: int = 0  # seeds the max_positives_per_query sample

    def __post_init__(self) -> None:
        frac = self.dev_fraction
        _check(0 < frac < 1, "data.dev_fraction", f"must be in (0, 1), got {frac!r}")
        if self.dev_max_queries is not None:
            _positive_int(self.dev_max_queries, "data.dev_max_queries")
        _positive_int(self.min_positive_grade, "data.min_positive_grade")
        if self.max_positives_per_query is not None:
            _positive_int(self.max_positives_per_query, "data.max_positives_per_query")


@dataclass
class PairsData(BeirData):
    """``data=pairs``: your own JSONL pairs; ``test_fraction`` of the queries are held out."""

    kind: str = "pairs"
    path: str = field(default=MISSING, metadata={_MISSING_MESSAGE: _SET_PAIRS})
    name: str | None = "pairs"
    test_fraction: float = 0.2
    split_seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        frac = self.test_fraction
        _check(0 < frac < 1, "data.test_fraction", f"must be in (0, 1), got {frac!r}")


@dataclass
class QuickstartData(BeirData):
    """``data=quickstart``: the synthetic help-centre set, generated into ``path`` from ``seed``."""

    kind: str = "quickstart"
    path: str = field(default=MISSING, metadata={_MISSING_MESSAGE: "set the folder to generate into"})
    name: str | None = "quickstart"
    seed: int = 0
    # the recipe's step budget: train.max_steps defaults to it (train.yaml), so `embexp-train` stays
    # within 5 minutes on a 2-core CPU without AMX (BENCHMARKS.md §4); train.max_steps=null: full epochs
    max_steps: int | None = 50


HF_FORMATS = ("auto", "pairs", "beir")


@dataclass
class HfColumns:
    """``data.columns`` of ``data=hf`` pairs: which column holds what. null: found by name as in
    sentence-transformers' training sets (query | anchor; positive | positives; negative |
    negatives | negative_1..n, each optional)."""

    KEY: ClassVar[str] = "data.columns"
    query: str | None = None
    positive: str | None = None  # texts, or lists of texts (several positives)
    negative: Any = None  # a column (texts or lists of texts), a list of columns, [] for none

    def __post_init__(self) -> None:
        for key in ("query", "positive"):
            v = getattr(self, key)
            _check(v is None or bool(v.strip()), f"data.columns.{key}", f"must be a column name, got {v!r}")
        neg = self.negative
        cols = [neg] if isinstance(neg, str) else neg
        ok = neg is None or (isinstance(cols, list) and all(isinstance(c, str) and c.strip() for c in cols))
        msg = f"must be a column name, a list of column names or null, got {neg!r}"
        _check(ok, "data.columns.negative", msg)


@dataclass
class HfData(BeirData):
    """``data=hf``: Hugging Face ``datasets``: pairs/triplets or BEIR-style corpus/queries/qrels
    from a hub id, a local dataset folder or a data file (``embexp/data/hf.py``)."""

    kind: str = "hf"
    path: str = field(
        default=MISSING,
        metadata={_MISSING_MESSAGE: "set a hub id, a dataset folder or a file: data.path=FILE.parquet"},
    )
    format: str = "auto"  # HF_FORMATS; auto: beir when the source has corpus and queries parts
    config_name: str | None = None  # pairs: the dataset's config (hub), e.g. 'triplet'
    revision: str | None = None  # a hub branch, tag or commit
    hf_split: str = "train"  # pairs: the split read (a data file is one); test_fraction of it held out
    columns: HfColumns = field(default_factory=HfColumns)
    test_fraction: float = 0.2
    split_seed: int = 0
    corpus: str = "corpus"  # beir: the config (hub) or file name (folder: corpus.parquet, .jsonl, ...)
    queries: str = "queries"
    qrels: str = "qrels"  # beir: config, or qrels.* with a 'split' column, or qrels/<split>.*
    qrels_path: str | None = None  # beir: a separate qrels dataset (BeIR/scifact-qrels); null: found

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.format in HF_FORMATS, "data.format", f"must be one of {HF_FORMATS}, got {self.format!r}")
        frac = self.test_fraction
        _check(0 < frac < 1, "data.test_fraction", f"must be in (0, 1), got {frac!r}")


DATA_SCHEMAS: dict[str, type] = {
    "beir": BeirData,
    "pairs": PairsData,
    "quickstart": QuickstartData,
    "hf": HfData,
}


# ---- model --------------------------------------------------------------------------------
@dataclass
class ModelConfig:
    """The encoder: a short name (``embexp.model.registry``), hub id or local folder, and how it
    embeds. ``null`` pooling/prefixes take a checkpoint's own values."""

    KEY: ClassVar[str] = "model"
    name_or_path: str = field(default=MISSING, metadata={_MISSING_MESSAGE: _SET_MODEL})
    pooling: str | None = "mean"  # embexp.model.encoder.POOLINGS
    normalize: bool = True
    query_prefix: str | None = ""
    passage_prefix: str | None = ""
    query_max_length: int = 64
    passage_max_length: int = 256
    train_attention: str = "auto"  # auto | sdpa | eager | keep (embexp.model.encoder.TRAIN_ATTENTION)
    compile: bool = field(default=False, metadata=EXECUTION)  # torch.compile the backbone
    compile_backend: str = field(default="inductor", metadata=EXECUTION)
    # bucketed sequence lengths (e.g. 8 or 32)
    pad_to_multiple_of: int | None = field(default=None, metadata=EXECUTION)
    # encoding on a CPU: at most this many padded tokens a batch (cache-sized batches run faster
    # there; BENCHMARKS.md §1); null: eval.batch_size rows whatever their length; GPUs: no cap
    cpu_batch_tokens: int | None = field(default=4096, metadata=EXECUTION)
    unpad: bool = field(default=False, metadata=EXECUTION)  # dense layers on real tokens only
    # auto | varlen (CUDA) | split (CPU) | padded (embexp.model.unpadded.KERNELS)
    unpad_kernel: str = field(default="auto", metadata=EXECUTION)

    def __post_init__(self) -> None:
        m = self.pad_to_multiple_of
        _check(
            m is None or m >= 1, "model.pad_to_multiple_of", f"must be null or a positive integer, got {m!r}"
        )
        t = self.cpu_batch_tokens
        ok = t is None or t >= 1
        _check(ok, "model.cpu_batch_tokens", f"must be null or a positive integer, got {t!r}")


# ---- adapter ------------------------------------------------------------------------------
@dataclass
class FullAdapter:
    """``adapter=full``: every weight is trained."""

    KEY: ClassVar[str] = "adapter"
    kind: str = "full"


@dataclass
class LoraAdapter:
    """``adapter=lora``: PEFT LoRA. Our keys are peft's under their short names
    (``alpha`` = ``lora_alpha``, ``dropout`` = ``lora_dropout``); :meth:`to_peft` is the one
    place that maps them. peft's ``LoraConfig`` checks none of these values when it is built
    (r only once layers are created, i.e. after the model is loaded), so the checks that must
    fail before any model is loaded are here."""

    KEY: ClassVar[str] = "adapter"
    kind: str = "lora"
    r: int = 16  # rank
    alpha: float = 32.0  # scaling = alpha / r
    dropout: float = 0.1
    target_modules: list[str] = field(default_factory=lambda: ["query", "value"])  # backbone module names

    def __post_init__(self) -> None:
        _check(self.r >= 1, "adapter.r", f"LoRA rank must be a positive integer, got {self.r!r}")
        _check(self.alpha > 0, "adapter.alpha", f"must be a positive number, got {self.alpha!r}")
        _check(0 <= self.dropout < 1, "adapter.dropout", f"must be in [0, 1), got {self.dropout!r}")
        tm = self.target_modules
        _check(bool(tm), "adapter.target_modules", f"must be a non-empty list of module names, got {tm!r}")

    def to_peft(self):
        """The ``peft.LoraConfig`` this node describes."""
        from peft import LoraConfig, TaskType

        return LoraConfig(
            task_type=TaskType.FEATURE_EXTRACTION,
            r=int(self.r),
            lora_alpha=float(self.alpha),
            lora_dropout=float(self.dropout),
            target_modules=list(self.target_modules),
            bias="none",
        )


@dataclass
class LastLayerAdapter:
    """``adapter=last_layer``: the top ``n_layers`` transformer layers (and the pooler when
    pooling is ``cls`` and ``train_pooler``)."""

    KEY: ClassVar[str] = "adapter"
    kind: str = "last_layer"
    n_layers: int = 1
    train_pooler: bool = True

    def __post_init__(self) -> None:
        _positive_int(self.n_layers, "adapter.n_layers")


ADAPTER_SCHEMAS: dict[str, type] = {"full": FullAdapter, "lora": LoraAdapter, "last_layer": LastLayerAdapter}


# ---- negatives ----------------------------------------------------------------------------
@dataclass
class InBatchNegatives:
    """``negatives=in_batch``: every other row of the batch is a negative."""

    KEY: ClassVar[str] = "negatives"
    kind: str = "in_batch"
    n_negatives: int = 0

    def __post_init__(self) -> None:
        _positive_int(self.n_negatives, "negatives.n_negatives", 0)


@dataclass
class MinedNegatives:
    """``negatives=static`` (mined once from the base model) and ``negatives=iterative``
    (re-mined every ``refresh_every`` epochs). The mining values (window ... seed) are
    checked by ``embexp.mining.miner.MiningParams``, their semantics are in its module."""

    KEY: ClassVar[str] = "negatives"
    kind: str = "static"
    n_negatives: int = 1  # hard negatives per training example in each batch (>= 1)
    pool_size: int | None = (
        None  # mined per query; null = n_negatives; larger: each epoch draws a seeded sample
    )
    window: list[int] = field(default_factory=lambda: [2, 20])  # inclusive 1-based ranks, positives removed
    sampling: str = "top"  # top: best-ranked survivors of the window | random: seeded uniform sample
    depth: int = 100  # ranks retrieved per query (after removing positives); >= window end
    margin_abs: float | None = None  # drop a candidate if score > positive_score - margin_abs (null: off)
    margin_rel: float | None = 0.05  # drop a candidate if score > positive_score * (1 - margin_rel)
    margin_reference: str = "best"  # best | lowest training positive (embexp.mining.miner)
    min_coverage: float = 0.9  # warn when fewer training examples get a mined negative
    fill_below_window: bool = True  # too few survivors in the window: take the best ones below it
    text_filter: bool = True  # drop candidates whose normalised text equals a positive's
    veto_file: str | None = None  # TSV 'query-id<TAB>corpus-id' or JSONL {query_id, doc_id}: never negatives
    veto_hook: str | None = None  # 'package.module:function', veto(query_id, doc_ids) -> vetoed ids
    warmup_epochs: int = 0  # epochs of in-batch negatives only before the mined pool is used
    file: str | None = None  # reuse a negatives.jsonl (e.g. from embexp-mine) instead of mining
    seed: int = 0
    refresh_every: int = 1  # iterative: epochs between mining rounds (static never re-mines)
    # 'package.module:Class': a negatives source of yours, built with this node, makes each round
    # (embexp.mining.sources.NegativeSource); null: the built-in dense miner (window ... seed)
    source: str | None = None

    def __post_init__(self) -> None:
        _positive_int(self.n_negatives, "negatives.n_negatives", 0)
        _positive_int(self.warmup_epochs, "negatives.warmup_epochs", 0)
        _positive_int(self.refresh_every, "negatives.refresh_every", 1)
        cov = self.min_coverage
        _check(0 <= cov <= 1, "negatives.min_coverage", f"must be in [0, 1], got {cov!r}")


NEGATIVES_SCHEMAS: dict[str, type] = {
    "in_batch": InBatchNegatives,
    "static": MinedNegatives,
    "iterative": MinedNegatives,
}
MINED = ("static", "iterative")


# ---- loss (dispatched on _target_) ---------------------------------------------------------
@dataclass
class _InfoNCEKeys:
    """The keys ``loss=infonce`` and ``loss=cached_infonce`` share."""

    KEY: ClassVar[str] = "loss"
    _target_: str = "embexp.losses.InfoNCELoss"
    temperature: float = 0.05  # tau > 0; scale = 1 / tau
    symmetric: bool = False
    mask_false_negatives: bool = True

    def __post_init__(self) -> None:
        t = self.temperature
        _check(math.isfinite(t) and t > 0, "loss.temperature", f"must be > 0 and finite, got {t!r}")


@dataclass
class InfoNCELossConfig(_InfoNCEKeys):
    """``loss=infonce``; formula and conventions in ``embexp/losses/infonce.py``."""

    gather_across_ranks: bool = True  # DDP: score against every rank's candidates (docs/multi-gpu.md)


@dataclass
class CachedInfoNCELossConfig(_InfoNCEKeys):
    """``loss=cached_infonce``: InfoNCE with a gradient cache; ``embexp/losses/cached.py``."""

    _target_: str = "embexp.losses.cached.CachedInfoNCELoss"
    chunk_size: int = 32  # rows embedded with a graph at a time (memory), not the batch size

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive_int(self.chunk_size, "loss.chunk_size")


@dataclass
class TripletLossConfig:
    """``loss=triplet``; formula in ``embexp/losses/triplet.py``."""

    KEY: ClassVar[str] = "loss"
    _target_: str = "embexp.losses.TripletMarginLoss"
    margin: float = 0.2  # in cosine-distance units, >= 0
    mask_false_negatives: bool = True

    def __post_init__(self) -> None:
        m = self.margin
        _check(math.isfinite(m) and m >= 0, "loss.margin", f"must be >= 0 and finite, got {m!r}")


LOSS_SCHEMAS: dict[str, type] = {
    c._target_: c for c in (InfoNCELossConfig, CachedInfoNCELossConfig, TripletLossConfig)
}


# ---- eval ---------------------------------------------------------------------------------
@dataclass
class Bm25Config:
    KEY: ClassVar[str] = "eval.bm25"
    k1: float = 0.9
    b: float = 0.4
    method: str = "lucene"
    stemmer: str | None = "english"
    stopwords: Any = "en"  # a language code or a list of words


@dataclass
class SlicesConfig:
    KEY: ClassVar[str] = "eval.slices"
    jargon: bool = True
    rare_max_df: int = 0  # > 0: a query word in at most this many documents counts as jargon
    head_tail: bool = True
    head_quantile: float = 0.8
    tail_quantile: float = 0.5
    seen_share: float = 0.5  # no frequency field: head = share of relevant docs seen in training >= this
    file: str | None = None  # TSV 'query-id<TAB>slice[,slice]' or JSON {query_id: [slices]}
    rules: list[str] = field(default_factory=list)  # 'package.module:function' per slice of yours

    def __post_init__(self) -> None:
        for key in ("head_quantile", "tail_quantile", "seen_share"):
            q = getattr(self, key)
            _check(0 <= q <= 1, f"eval.slices.{key}", f"must be in [0, 1], got {q!r}")


@dataclass
class EvalConfig:
    """How runs are evaluated; ``retriever`` and ``dtype`` choices are the eval layer's."""

    KEY: ClassVar[str] = "eval"
    retriever: str = "dense"  # dense | bm25 | hybrid
    k_values: list[int] = field(default_factory=lambda: [1, 5, 10, 20, 100])
    primary: str = "ndcg@10"
    primary_train: str = "mrr@10"  # what validation monitors
    batch_size: int = 64
    dtype: str = "auto"  # auto (bf16 where native: CUDA, CPUs with AMX; else fp32) | fp32 | bf16 | fp16
    # corpus-embedding cache keyed by encoder weights + corpus + prefix + length
    cache: bool = field(default=True, metadata=EXECUTION)
    ignore_identical_ids: bool = True  # BEIR convention: a document with the query's id is never a hit
    rrf_k: int = 60  # hybrid: reciprocal rank fusion constant
    hybrid_depth: int = 1000  # hybrid: ranks fused from each retriever
    bm25: Bm25Config = field(default_factory=Bm25Config)
    slices: SlicesConfig = field(default_factory=SlicesConfig)
    # ranked doc ids kept per query in per_query.jsonl (the report fuses them)
    per_query_top: int = field(default=100, metadata=EXECUTION)
    show_progress: bool = field(default=True, metadata=EXECUTION)

    def __post_init__(self) -> None:
        ks = self.k_values
        _check(bool(ks) and min(ks) >= 1, "eval.k_values", f"must be integers >= 1, got {ks!r}")
        _positive_int(self.batch_size, "eval.batch_size")
        _positive_int(self.hybrid_depth, "eval.hybrid_depth")
        _positive_int(self.per_query_top, "eval.per_query_top", 0)


# ---- train (the top-level ``train:`` node of conf/train.yaml) -------------------------------
SELECTION_RULES = ("best", "final_unless_beaten")  # train.selection (embexp.train.selection)


@dataclass
class TrainSettings:
    KEY: ClassVar[str] = "train"
    batch_size: int = 32  # >= 2: in-batch negatives need two rows
    num_workers: int = field(default=0, metadata=EXECUTION)
    no_duplicates: bool = True  # batches never hold two rows sharing a positive
    baseline: bool = True  # evaluate the untouched base model on dev and test first
    max_steps: int | None = None  # step budget; null: trainer.max_epochs full passes
    val_every_steps: int | None = None  # an "epoch" (validation, re-mining, checkpoint) in steps
    select_base: bool = True  # the base model competes in model selection (embexp.train.selection)
    selection: str = "final_unless_beaten"  # or best: the best dev epoch even when within dev noise
    selection_alpha: float = 0.05  # the best epoch replaces the final weights only if p < this
    group_by_length: int | None = None  # batches per length-sorted window (embexp.train.sampler); null: off

    def __post_init__(self) -> None:
        b = self.batch_size
        _check(b >= 2, "train.batch_size", f"in-batch negatives need a batch size >= 2, got {b!r}")
        _positive_int(self.num_workers, "train.num_workers", 0)
        for key in ("max_steps", "val_every_steps", "group_by_length"):
            if getattr(self, key) is not None:
                _positive_int(getattr(self, key), f"train.{key}")
        rules = SELECTION_RULES
        _check(self.selection in rules, "train.selection", f"must be one of {rules}, got {self.selection!r}")
        a = self.selection_alpha
        _check(0 < a < 1, "train.selection_alpha", f"must be in (0, 1), got {a!r}")


# ---- one run's typed nodes ------------------------------------------------------------------
@dataclass(frozen=True)
class RunConfig:
    """The typed nodes of one composed config, built and checked once by the run's pre-flight
    (``embexp.train.preflight.check_config``) and handed to the components: the evaluator takes
    ``eval``, the encoder ``model``, the curriculum ``negatives``. A node a task does not use is
    None (``eval`` for ``embexp-data``; ``negatives``, ``adapter``, ``loss``, ``train`` outside
    training; ``loss`` also for a loss of yours, which has no schema). ``_target_`` nodes
    (optimizer, scheduler, trainer, callbacks) stay Hydra's to instantiate."""

    data: Any  # one of DATA_SCHEMAS
    model: ModelConfig
    eval: EvalConfig | None = None
    negatives: Any = None  # InBatchNegatives | MinedNegatives
    adapter: Any = None  # one of ADAPTER_SCHEMAS
    loss: Any = None  # one of LOSS_SCHEMAS
    train: TrainSettings | None = None


# Everything registered in Hydra's ConfigStore as schema/<group>/<name> (embexp.config.store).
SCHEMAS: dict[str, dict[str, type]] = {
    "data": DATA_SCHEMAS,
    "model": {"default": ModelConfig},
    "adapter": ADAPTER_SCHEMAS,
    "negatives": {"in_batch": InBatchNegatives, "mined": MinedNegatives},
    "loss": {
        "infonce": InfoNCELossConfig,
        "cached_infonce": CachedInfoNCELossConfig,
        "triplet": TripletLossConfig,
    },
    "eval": {"default": EvalConfig},
    "train": {"default": TrainSettings},
}


def execution_keys() -> tuple[str, ...]:
    """Every schema key marked :data:`EXECUTION`, as ``group.key`` (``model.unpad``)."""
    out: list[str] = []

    def walk(cls, prefix: str) -> None:
        for f in fields(cls):
            if f.metadata.get("execution"):
                out.append(f"{prefix}.{f.name}")
            elif isinstance(f.type, type) and is_dataclass(f.type):
                walk(f.type, f"{prefix}.{f.name}")

    for group, schemas in SCHEMAS.items():
        for cls in schemas.values():
            walk(cls, group)
    return tuple(dict.fromkeys(out))
