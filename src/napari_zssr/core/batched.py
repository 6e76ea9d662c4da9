"""Training many independent ZSSR networks in one set of kernels.

A ZSSR network (8 layers of 64 channels on one 128 x 128 crop) is far too small to keep a
GPU busy: each step is bound by kernel-launch latency, not arithmetic. Planes of a stack,
folders of images and gradual steps are independent trainings; here ``K`` of them share
every kernel: the weights of layer ``l`` of all networks are stacked into one
``(K, out, in, 3, 3)`` tensor and applied as one grouped convolution (``groups=K``), the L1
losses are summed (the gradient of network ``k`` is that of its own loss, as the networks
share nothing), and one Adam update with a learning rate per network changes all weights.

Each network keeps its own father sampler, random generators, learning-rate policy and
stopping point, built exactly as :func:`~napari_zssr.core.engine.fit` builds them from the
same seed. A network that stops is written back to its own :class:`ZSSRNet` and dropped
from the stack, so it costs nothing afterwards and its neighbours train on unchanged.
On the CPU the results equal separate runs up to float rounding (a grouped convolution
and this Adam round differently from one convolution and ``torch.optim.Adam``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from . import engine as _engine  # fit and predict looked up at call time
from .config import ZSSRConfig
from .device import resolve_device
from .engine import (
    GRAPH_MIN_ITERS,
    PreparedRun,
    Reporter,
    TrainedModel,
    normalise_scale,
    prepare_run,
    son_noise,
)
from .inference import degrade
from .kernels import DownscaleKernel
from .network import ZSSRNet
from .resize import imresize
from .sampling import FatherSource, trim_margin
from .train_step import TrainStep

__all__ = [
    "BatchedStep",
    "FitJob",
    "StackedAdam",
    "StackedNets",
    "fit_many",
]


class StackedNets(nn.Module):
    """``K`` :class:`ZSSRNet` of one shape, applied together through grouped convolutions.

    Parameters
    ----------
    weights : sequence of torch.Tensor
        Per layer, the ``(K, out, in, 3, 3)`` weights of all networks.
    """

    def __init__(self, weights: Sequence[torch.Tensor]) -> None:
        super().__init__()
        self.weights = nn.ParameterList(
            [nn.Parameter(w.detach().clone().contiguous()) for w in weights]
        )
        self.k = int(weights[0].shape[0])
        self.channels = int(weights[0].shape[2])

    @classmethod
    def from_nets(cls, nets: Sequence[ZSSRNet]) -> StackedNets:
        """Stack the weights of ``nets`` (same channels, width and depth)."""
        convs = [[m.weight for m in n.body if isinstance(m, nn.Conv2d)] for n in nets]
        if len({tuple(tuple(w.shape) for w in c) for c in convs}) != 1:
            raise ValueError("networks trained together must have the same shape")
        return cls([torch.stack([c[i] for c in convs]) for i in range(len(convs[0]))])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, K * C, H, W)``: network ``k`` sees channels ``k*C:(k+1)*C``."""
        y = x
        last = len(self.weights) - 1
        for i, w in enumerate(self.weights):
            y = F.conv2d(y, w.flatten(0, 1), padding=1, groups=self.k)
            if i < last:
                y = F.relu(y)
        return x + y

    def forward_one(self, k: int, x: torch.Tensor) -> torch.Tensor:
        """Network ``k`` alone on ``x`` ``(B, C, H, W)``."""
        y = x
        last = len(self.weights) - 1
        for i, w in enumerate(self.weights):
            y = F.conv2d(y, w[k], padding=1)
            if i < last:
                y = F.relu(y)
        return x + y

    def write_back(self, k: int, net: ZSSRNet) -> None:
        """Copy the weights of network ``k`` into ``net`` (keeping its memory format)."""
        convs = [m for m in net.body if isinstance(m, nn.Conv2d)]
        with torch.no_grad():
            for conv, w in zip(convs, self.weights):
                conv.weight.copy_(w[k])

    def select(self, keep: Sequence[int]) -> StackedNets:
        """A new stack of the networks ``keep`` (their current weights)."""
        idx = torch.as_tensor(list(keep), device=self.weights[0].device)
        return StackedNets([w.detach().index_select(0, idx) for w in self.weights])


class StackedAdam:
    """Adam over stacked weights with one learning rate (and step count) per network.

    The update is ``torch.optim.Adam``'s (no weight decay, no amsgrad), written with
    tensors only, so that a CUDA graph can capture it and a new learning rate is a write
    into a device tensor.

    Parameters
    ----------
    params : sequence of nn.Parameter
        ``(K, ...)`` stacked weights.
    lrs : sequence of float
        Initial learning rate of each of the ``K`` networks.
    """

    def __init__(
        self,
        params: Sequence[nn.Parameter],
        lrs: Sequence[float],
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.params = list(params)
        dev = self.params[0].device
        # the rate and its bias corrections in double where the device has it, rounded to
        # float32 once, as torch.optim.Adam does on the CPU with Python floats
        self.scalar_dtype = torch.float64 if dev.type == "cpu" else torch.float32
        self.lr = torch.tensor([float(v) for v in lrs], dtype=self.scalar_dtype, device=dev)
        self.steps = torch.zeros(len(lrs), dtype=self.scalar_dtype, device=dev)
        self.betas, self.eps = betas, eps
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients (always set to None)."""
        for p in self.params:
            p.grad = None

    def set_lrs(self, lrs: Sequence[float]) -> None:
        """New learning rates, one per network, written in place."""
        self.lr.copy_(torch.tensor([float(v) for v in lrs], dtype=self.scalar_dtype))

    @torch.no_grad()
    def step(self) -> None:
        """One Adam update of every network from its gradients."""
        b1, b2 = self.betas
        self.steps.add_(1.0)
        view = (-1,) + (1,) * (self.params[0].ndim - 1)
        dt = self.params[0].dtype
        neg_step = (-self.lr / (1 - torch.pow(b1, self.steps))).to(dt).view(view)
        bc2_sqrt = torch.sqrt(1 - torch.pow(b2, self.steps)).to(dt).view(view)
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq):
            g = p.grad
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            p.addcmul_(m / (v.sqrt() / bc2_sqrt).add_(self.eps), neg_step)

    def select(self, keep: Sequence[int], params: Sequence[nn.Parameter]) -> StackedAdam:
        """The state of the networks ``keep``, for their new stacked ``params``."""
        idx = torch.as_tensor(list(keep), device=self.lr.device)
        new = StackedAdam(params, [0.0] * len(keep), self.betas, self.eps)
        new.lr.copy_(self.lr.index_select(0, idx))
        new.steps.copy_(self.steps.index_select(0, idx))
        for dst, src in zip(new.exp_avg + new.exp_avg_sq, self.exp_avg + self.exp_avg_sq):
            dst.copy_(src.index_select(0, idx))
        return new


class BatchedStep(TrainStep):
    """The training step of a :class:`StackedNets`: one loss per network, one Adam update.

    Inputs and targets are ``(B, K * C, H, W)``; a call returns the ``(K,)`` L1 losses.
    The CUDA-graph path of :class:`TrainStep` applies unchanged (the learning rates and step
    counts live in device tensors).
    """

    net: StackedNets
    opt: StackedAdam  # type: ignore[assignment]

    def _make_optimizer(self, lr: float | Sequence[float]) -> StackedAdam:  # type: ignore[override]
        lrs = [float(lr)] * self.net.k if isinstance(lr, (int, float)) else list(lr)
        return StackedAdam(list(self.net.parameters()), lrs)

    def set_lr(self, lr: float) -> None:
        """The same learning rate for every network."""
        self.opt.set_lrs([lr] * self.net.k)

    def set_lrs(self, lrs: Sequence[float]) -> None:
        """One learning rate per network."""
        self.opt.set_lrs(lrs)

    def _loss_and_update(self, inp: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        pred = self._predict(inp)
        k = self.net.k
        err = (pred.float() - target).abs()
        losses = err.unflatten(1, (k, -1)).transpose(0, 1).flatten(1).mean(dim=1)
        losses.sum().backward()
        self.opt.step()
        return losses.detach()

    def select(self, keep: Sequence[int]) -> BatchedStep:
        """A step for the networks ``keep`` only, with their weights and Adam state."""
        new = BatchedStep(
            self.net.select(keep),
            [0.0] * len(keep),
            mixed_precision=self.amp,
            cuda_graph=self.use_graph,
        )
        new.opt = self.opt.select(keep, list(new.net.parameters()))
        return new


@dataclass
class FitJob:
    """One network's training: what :func:`~napari_zssr.core.engine.fit` takes for it.

    Attributes
    ----------
    fathers : sequence of arrays
        ``(C, H, W)`` float images in [0, 1] that its fathers are cut from.
    config : ZSSRConfig
        Its parameters; ``width``, ``depth``, ``batch_size`` and ``mixed_precision`` must
        agree across the jobs trained together, and so must the father crop shape.
    seed : int
        Seed of its random choices (as in ``fit``).
    model : TrainedModel, optional
        A model to continue (gradual SR).
    extra_sources : sequence of FatherSource
        Additional fathers (outputs of earlier gradual steps).
    """

    fathers: Sequence[object]
    config: ZSSRConfig
    seed: int = 0
    model: TrainedModel | None = None
    extra_sources: Sequence[FatherSource] = field(default_factory=tuple)


_SHARED_FIELDS = ("width", "depth", "batch_size", "mixed_precision", "cuda_graphs")


def _check_jobs(runs: Sequence[PreparedRun], jobs: Sequence[FitJob]) -> None:
    first = jobs[0].config
    for job in jobs[1:]:
        for name in _SHARED_FIELDS:
            if getattr(job.config, name) != getattr(first, name):
                raise ValueError(
                    f"networks trained together need the same {name}: "
                    f"{getattr(first, name)!r} and {getattr(job.config, name)!r}"
                )
    crops = {(r.sampler.crop, r.margin) for r in runs}
    channels = {r.model.net.channels for r in runs}
    if len(crops) > 1 or len(channels) > 1:
        raise ValueError(
            f"networks trained together need the same father crop and channels, got crops "
            f"{sorted(crops)} and channels {sorted(channels)}: group the images by size"
        )


class _Group:
    """The networks still training, their stacked step and their loss accumulators."""

    def __init__(self, runs: Sequence[PreparedRun], cfg: ZSSRConfig, dev: torch.device) -> None:
        self.runs = list(runs)
        self.active = list(range(len(runs)))
        longest = max(r.model.config.max_iters for r in runs)
        self.step = BatchedStep(
            StackedNets.from_nets([r.model.net for r in runs]),
            [r.policy.lr for r in runs],
            mixed_precision=cfg.mixed_precision,
            cuda_graph=cfg.cuda_graphs and longest >= GRAPH_MIN_ITERS,
        )
        self.loss_sum = torch.zeros(len(runs), device=dev)
        self.n_sum = [0] * len(runs)
        self.last_loss: list[float | None] = [None] * len(runs)

    def drop(self, finished: Sequence[int]) -> None:
        """Write the finished networks back and train the others on without them."""
        keep = [j for j, i in enumerate(self.active) if i not in finished]
        for j, i in enumerate(self.active):
            if i in finished:
                self.step.net.write_back(j, self.runs[i].model.net)
        self.active = [self.active[j] for j in keep]
        if keep:
            idx = torch.as_tensor(keep, device=self.loss_sum.device)
            self.loss_sum = self.loss_sum.index_select(0, idx)
            self.step = self.step.select(keep)


def _batch_inputs(
    group: _Group, sc: tuple[float, float], dk: DownscaleKernel | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fathers of every active network, degraded together: ``(B, K * C, h, w)`` pairs."""
    runs = [group.runs[i] for i in group.active]
    hrs = [r.sampler.sample(r.model.config.batch_size) for r in runs]
    batch = hrs[0].shape[0]
    # the kernel's core, as in prepare_run (``dk`` is the kernel as given)
    lr_all = degrade(torch.cat(hrs), sc, runs[0].model.kernel if dk is not None else None)
    sons = [
        son_noise(son, r.model.config, r.noise_gen) for son, r in zip(lr_all.split(batch), runs)
    ]
    margin = runs[0].margin  # one crop and margin per group (_check_jobs)
    inp = trim_margin(imresize(torch.cat(sons), sc, hrs[0].shape[-2:]), margin)
    # (K*B, C, h, w) -> (B, K*C, h, w): network k reads its own channel block
    k = len(runs)
    inp = inp.unflatten(0, (k, batch)).transpose(0, 1).flatten(1, 2)
    hr = trim_margin(torch.stack(hrs, dim=1).flatten(1, 2), margin)
    return inp, hr


def _evaluate(group: _Group, it: int) -> None:
    """Reconstruction errors of the networks whose evaluation falls at ``it`` (one sync)."""
    due = [
        (j, i)
        for j, i in enumerate(group.active)
        if it % group.runs[i].model.config.eval_every == 0
    ]
    if not due:
        return
    net = group.step.net
    with torch.inference_mode():
        errs = [
            (net.forward_one(j, group.runs[i].eval_in[None])[0] - group.runs[i].eval_hr)
            .abs()
            .mean()
            for j, i in due
        ]
        values = torch.stack(errs).tolist()
    for (_, i), err in zip(due, values):
        group.runs[i].policy.record(it, err)


def _policies_and_reports(group: _Group, it: int) -> tuple[list[int], list[float]]:
    """Step each policy; record the losses due at ``it``. Returns finished and reported."""
    changed = False
    finished, due = [], []
    for j, i in enumerate(group.active):
        run, cfg = group.runs[i], group.runs[i].model.config
        changed |= run.policy.step(it)
        done = run.policy.finished or it == cfg.max_iters
        if done:
            finished.append(i)
        if it % cfg.report_every == 0 or done:
            due.append(j)
    if changed:
        group.step.set_lrs([group.runs[i].policy.lr for i in group.active])
    reported: list[float] = []
    if due:
        sums = group.loss_sum.tolist()
        for j in due:
            i = group.active[j]
            loss = sums[j] / max(group.n_sum[i], 1)
            group.last_loss[i] = loss
            group.runs[i].model.history.append((it, loss))
            group.n_sum[i] = 0
            reported.append(loss)
        group.loss_sum[torch.as_tensor(due, device=group.loss_sum.device)] = 0.0
    return finished, reported


def fit_many(
    jobs: Sequence[FitJob],
    scale: object,
    *,
    kernel: DownscaleKernel | None = None,
    device: str | torch.device = "auto",
    reporter: Reporter | None = None,
) -> list[TrainedModel]:
    """Train one network per job together; each as :func:`~napari_zssr.core.engine.fit`.

    One job is trained by ``fit`` itself. Every network follows its own configuration's
    policy and stops on its own; the models come back in the order of ``jobs``.

    Parameters
    ----------
    jobs : sequence of FitJob
        The trainings (same network shape and father crop shape).
    scale : float or (float, float)
        The factor every network learns.
    kernel : DownscaleKernel, optional
        The downscaling kernel, prepared for ``scale``; None for MATLAB's bicubic.
    device : str or torch.device
        Ignored for continued models (they stay on their device).
    reporter : Reporter, optional
        Receives one report per reporting iteration (mean loss of the networks reporting).

    Returns
    -------
    list of TrainedModel
    """
    if not jobs:
        raise ValueError("fit_many needs at least one job")
    sc = normalise_scale(scale)
    rep = reporter if reporter is not None else Reporter()
    if len(jobs) == 1:
        j = jobs[0]
        model = _engine.fit(
            j.fathers,
            sc,
            kernel=kernel,
            config=j.config,
            device=device,
            seed=j.seed,
            model=j.model,
            reporter=rep,
            extra_sources=j.extra_sources,
        )
        return [model]
    first = jobs[0].model
    dev, reason = (first.device, first.device_reason) if first else resolve_device(device)
    runs = [
        prepare_run(
            j.fathers,
            sc,
            kernel=kernel,
            config=j.config,
            device=dev,
            device_reason=reason,
            seed=j.seed,
            model=j.model,
            extra_sources=j.extra_sources,
        )
        for j in jobs
    ]
    _check_jobs(runs, jobs)
    _train_group(_Group(runs, jobs[0].config, dev), sc, kernel, rep)
    return [r.model for r in runs]


def _train_group(
    group: _Group, sc: tuple[float, float], dk: DownscaleKernel | None, rep: Reporter
) -> None:
    """The training loop of :func:`fit_many` until every network has stopped."""
    t0 = time.perf_counter()
    longest = max(r.model.config.max_iters for r in group.runs)
    lr0 = group.runs[0].policy.lr
    rep("train", 0.0, iteration=0, max_iterations=longest, lr=lr0, message="training")
    for it in range(1, longest + 1):
        inp, hr = _batch_inputs(group, sc, dk)
        group.loss_sum += group.step(inp, hr)
        for i in group.active:
            group.n_sum[i] += 1
        _evaluate(group, it)
        finished, reported = _policies_and_reports(group, it)
        if reported:
            rep(
                "train",
                _engine.INFER_START * it / longest,
                iteration=it,
                max_iterations=longest,
                loss=sum(reported) / len(reported),
                lr=max(group.runs[i].policy.lr for i in group.active),
                message=f"training {len(group.active)} networks",
            )
        if finished:
            for i in finished:
                model = group.runs[i].model
                model.iterations += it
                model.final_loss = group.last_loss[i]
                model.seconds += time.perf_counter() - t0
            group.drop(finished)
        if not group.active:
            break
