"""The training step: eager on the CPU, graph-captured on CUDA (tested where CUDA exists)."""

from __future__ import annotations

import pytest
import torch

from napari_zssr.core.network import ZSSRNet
from napari_zssr.core.train_step import GRAPH_WARMUP, TrainStep


def _net(device: str = "cpu") -> ZSSRNet:
    return ZSSRNet(1, 8, 3, generator=torch.Generator().manual_seed(0)).to(device)


def _batch(device: str = "cpu", seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    target = torch.rand(1, 1, 16, 16, generator=gen)
    return (target + 0.1 * torch.rand(1, 1, 16, 16, generator=gen)).to(device), target.to(device)


def test_eager_step_is_adam_on_l1(one_torch_thread):
    net, ref = _net(), _net()
    step = TrainStep(net, 1e-3)
    opt = torch.optim.Adam(ref.parameters(), lr=1e-3)
    for seed in range(3):
        inp, target = _batch(seed=seed)
        loss = step(inp, target)
        ref_loss = (ref(inp) - target).abs().mean()
        opt.zero_grad()
        ref_loss.backward()
        opt.step()
        assert torch.equal(loss, ref_loss.detach())
    for a, b in zip(net.parameters(), ref.parameters()):
        assert torch.equal(a, b)
    assert not step.graphed  # never on the CPU


def test_set_lr_zero_freezes_the_weights(one_torch_thread):
    net = _net()
    step = TrainStep(net, 1e-3)
    step(*_batch())
    step.set_lr(0.0)
    before = [p.detach().clone() for p in net.parameters()]
    step(*_batch(seed=2))
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_graph_matches_eager_and_follows_lr():
    net_g, net_e = _net("cuda"), _net("cuda")
    graphed = TrainStep(net_g, 1e-3, cuda_graph=True)
    eager = TrainStep(net_e, 1e-3, cuda_graph=False)
    for seed in range(GRAPH_WARMUP + 5):
        batch = _batch("cuda", seed)
        lg, le = float(graphed(*batch)), float(eager(*batch))
        assert lg == pytest.approx(le, rel=1e-3, abs=1e-5)
    assert graphed.graphed
    for a, b in zip(net_g.parameters(), net_e.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5)
    graphed.set_lr(0.0)
    before = [p.detach().clone() for p in net_g.parameters()]
    graphed(*_batch("cuda", 99))
    torch.cuda.synchronize()
    assert all(torch.equal(a, b) for a, b in zip(before, net_g.parameters()))
    graphed.set_lr(1e-3)
    graphed(*_batch("cuda", 100))
    torch.cuda.synchronize()
    assert not all(torch.equal(a, b) for a, b in zip(before, net_g.parameters()))
