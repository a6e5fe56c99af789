"""The LightningModule's own choices (the training loop is tested end to end elsewhere)."""

from __future__ import annotations

import functools
from types import SimpleNamespace

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from embexp.config.store import CONF_DIR
from embexp.train.module import fused_default


def _factory(**overrides):
    node = OmegaConf.merge(OmegaConf.load(f"{CONF_DIR}/optimizer/adamw.yaml"), overrides)
    return instantiate(node)


CUDA = [SimpleNamespace(is_cuda=True), SimpleNamespace(is_cuda=True)]


def test_adamw_is_fused_on_cuda_only_unless_the_config_chose():
    factory = _factory()
    assert isinstance(factory, functools.partial) and factory.func is torch.optim.AdamW
    assert fused_default(factory, CUDA) == {"fused": True}
    assert fused_default(factory, [torch.nn.Parameter(torch.zeros(2))]) == {}  # CPU: foreach stays
    assert fused_default(factory, [*CUDA, SimpleNamespace(is_cuda=False)]) == {}  # mixed devices
    assert fused_default(_factory(fused=False), CUDA) == {}  # the config's choice wins
    assert fused_default(_factory(foreach=True), CUDA) == {}
    assert fused_default(_factory(foreach=False), CUDA) == {}
    for fp16 in ("16-mixed", "16-true"):  # Lightning's fp16 scaler refuses to clip a fused optimizer
        assert fused_default(factory, CUDA, fp16) == {}
    assert fused_default(factory, CUDA, "bf16-mixed") == {"fused": True}
    assert fused_default(functools.partial(torch.optim.SGD, lr=0.1), CUDA) == {}  # not an Adam


def test_the_cpu_optimizer_is_the_configured_one():
    p = torch.nn.Parameter(torch.zeros(2))
    opt = _factory()(params=[p], **fused_default(_factory(), [p]))
    assert isinstance(opt, torch.optim.AdamW) and not opt.defaults.get("fused")


class _Recorder(torch.nn.Module):
    """A loss that records the keyword arguments the training step gave it."""

    def __init__(self, takes_keys: bool):
        super().__init__()
        self.takes_keys, self.seen = takes_keys, None

    def forward(self, q, p, negatives=None, mask=None, **kwargs):
        self.seen = kwargs
        return (q * p).sum()


def test_a_loss_gets_the_keys_only_when_it_declares_it_takes_them(tiny_encoder):
    from embexp.train.module import BiEncoderModule

    tok = tiny_encoder.tokenize(["a query", "another"], "query")
    batch = {"query": tok, "passage": tok, "n_neg": 0, "mask": torch.zeros(2, 2, dtype=torch.bool)}
    batch["keys"] = {"pos": torch.tensor([1, 2])}
    for declared in (True, False):
        loss = _Recorder(declared)
        module = BiEncoderModule(tiny_encoder, loss, _factory())
        module.log = lambda *a, **k: None  # no trainer attached
        module.training_step(batch, 0)
        assert ("keys" in loss.seen) is declared  # a **kwargs signature is not a declaration


def test_a_subclass_without_keys_in_its_forward_gets_no_keys(tiny_encoder):
    from embexp.losses import InfoNCELoss
    from embexp.train.module import takes_keys

    class Sigmoid(InfoNCELoss):  # inherits takes_keys = True, forward takes no keys
        def forward(self, q, p, negatives=None, mask=None):
            return (q * p).sum()

    assert takes_keys(InfoNCELoss()) and not takes_keys(Sigmoid()) and not takes_keys(_Recorder(False))
