"""GradCache in Lightning's automatic optimisation: with gradient accumulation and clipping the
weights after training equal the plain loss's; bf16-mixed trains; and ``embexp-train
loss=cached_infonce`` runs end to end."""

import functools
import json

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader

from embexp.losses import InfoNCELoss
from embexp.losses.cached import CachedInfoNCELoss
from embexp.model.encoder import BiEncoder
from embexp.train.module import BiEncoderModule

from conftest import QUERIES, TINY, encoder_spec, run_cli

TEXTS = [text for _, text in QUERIES]
B = 3


def batches(encoder, n: int = 4) -> list[dict]:
    out = []
    for i in range(n):
        qs = [TEXTS[(i + j) % len(TEXTS)] for j in range(B)]
        ps = [f"{t} answer {'in detail ' * j}" for j, t in enumerate(qs)] + [f"other {t}" for t in qs]
        mask = torch.zeros(B, 2 * B, dtype=torch.bool)  # (batch, batch * (1 + n_neg))
        mask[0, B + 1] = True
        out.append(
            {
                "query": dict(encoder.tokenize(qs, "query")),
                "passage": dict(encoder.tokenize(ps, "passage")),
                "n_neg": 1,
                "mask": mask,
            }
        )
    return out


def fit(model_dir, loss, precision: str = "32-true", clip: float | None = None) -> dict[str, torch.Tensor]:
    encoder = BiEncoder.from_spec(encoder_spec(str(model_dir), query_max_length=32, passage_max_length=64))
    for m in encoder.modules():  # dropout off: the one-pass plain step is the reference
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    module = BiEncoderModule(encoder, loss, optimizer=functools.partial(torch.optim.SGD, lr=0.5))
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=2,
        accumulate_grad_batches=2,
        gradient_clip_val=clip,
        precision=precision,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, train_dataloaders=DataLoader(batches(encoder), batch_size=None))
    return {n: p.detach().clone() for n, p in encoder.named_parameters()}


@pytest.mark.parametrize("clip", [None, 0.05])  # 0.05: clipping is active (and would hide a scale error)
def test_lightning_accumulation_and_clipping_give_the_plain_weights(tiny_model_dir, clip):
    base = BiEncoder.from_spec(encoder_spec(str(tiny_model_dir)))
    start = {n: p.detach().clone() for n, p in base.named_parameters()}
    plain = fit(tiny_model_dir, InfoNCELoss(), clip=clip)
    cached = fit(tiny_model_dir, CachedInfoNCELoss(chunk_size=2), clip=clip)
    assert any(not torch.equal(plain[n], start[n]) for n in plain)  # it trained
    for name in plain:
        torch.testing.assert_close(cached[name], plain[name], atol=1e-5, rtol=1e-5, msg=name)


def test_lightning_bf16_mixed_trains(tiny_model_dir):
    base = BiEncoder.from_spec(encoder_spec(str(tiny_model_dir)))
    start = {n: p.detach().clone() for n, p in base.named_parameters()}
    cached = fit(tiny_model_dir, CachedInfoNCELoss(chunk_size=2), precision="bf16-mixed", clip=1.0)
    assert all(torch.isfinite(p).all() for p in cached.values())
    assert any(not torch.equal(cached[n], start[n]) for n in cached)


def test_embexp_train_with_cached_infonce(tiny_beir, tmp_path):
    p = run_cli(
        "embexp.cli.train",
        "data=beir",
        f"data.path={tiny_beir}",
        *TINY,
        "loss=cached_infonce",
        "loss.chunk_size=1",
        "debug=fast_dev_run",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert p.returncode == 0, p.stderr[-3000:]
    rec = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert rec["status"] == "finished" and "final/test/ndcg@10" in rec["metrics"]
    prov = json.loads((tmp_path / "run" / "provenance.json").read_text())
    assert prov["config"]["loss"]["_target_"].endswith("CachedInfoNCELoss")
    assert prov["config"]["loss"]["chunk_size"] == 1
