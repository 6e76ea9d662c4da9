"""One optimisation step of the network: eager, or replayed from a CUDA graph.

On a GPU the ZSSR network is small for the hardware: one step (forward, L1 loss, backward,
Adam) is some sixty short kernels, and launching them one by one from Python costs more
than running them. On CUDA the step is therefore captured once in a CUDA graph and replayed
at every iteration; the inputs are copied into fixed buffers first and the learning rate
lives in a device tensor, so that the policy can change it without a new capture. Elsewhere
(and when ``ZSSRConfig.cuda_graphs`` is off) the same step runs eagerly.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["TrainStep"]

#: Eager steps before the capture (lazy initialisation of cuDNN, cuBLAS and Adam's state
#: must not happen while a graph is being captured).
GRAPH_WARMUP = 3


class TrainStep:
    """L1 training step of ``net`` with Adam, the loop's only use of the optimiser.

    Parameters
    ----------
    net : nn.Module
        The network, already on its device.
    lr : float
        Initial learning rate (one per network for :class:`~napari_zssr.core.batched.BatchedStep`).
    mixed_precision : bool
        Run the forward pass under bfloat16 autocast (CUDA only).
    cuda_graph : bool
        Capture the step in a CUDA graph (ignored off CUDA).
    """

    def __init__(
        self,
        net: nn.Module,
        lr: float | Sequence[float],
        *,
        mixed_precision: bool = False,
        cuda_graph: bool = True,
    ) -> None:
        self.net = net
        self.device = next(net.parameters()).device
        cuda = self.device.type == "cuda"
        self.amp = mixed_precision and cuda
        self.use_graph = cuda_graph and cuda
        self.opt = self._make_optimizer(lr)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.calls = 0
        self._inp: torch.Tensor | None = None
        self._target: torch.Tensor | None = None
        self._loss: torch.Tensor | None = None
        self._stream: torch.cuda.Stream | None = None

    def _make_optimizer(self, lr: float) -> torch.optim.Optimizer:
        cuda = self.device.type == "cuda"
        if self.use_graph:
            # capturable Adam keeps its step count on the device; a tensor learning rate can
            # be changed in place between replays.
            return torch.optim.Adam(
                self.net.parameters(),
                lr=torch.tensor(lr, device=self.device),
                fused=True,
                capturable=True,
            )
        # fused Adam is one kernel on CUDA; the CPU keeps the default implementation
        # (and its bit-exact reproducibility).
        return torch.optim.Adam(self.net.parameters(), lr=lr, fused=cuda)

    @property
    def graphed(self) -> bool:
        """Whether steps are now replayed from a captured CUDA graph."""
        return self.graph is not None

    def set_lr(self, lr: float) -> None:
        """Change the learning rate of the following steps."""
        for group in self.opt.param_groups:
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(lr)
            else:
                group["lr"] = lr

    def _predict(self, inp: torch.Tensor) -> torch.Tensor:
        # cache_enabled=False: autocast's weight cache is not allowed in a captured graph.
        with torch.autocast(
            device_type=self.device.type,
            dtype=torch.bfloat16,
            enabled=self.amp,
            cache_enabled=False,
        ):
            return self.net(inp)

    def _loss_and_update(self, inp: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        pred = self._predict(inp)
        loss = (pred.float() - target).abs().mean()
        loss.backward()
        self.opt.step()
        return loss.detach()

    def _eager(self, inp: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.opt.zero_grad(set_to_none=True)
        return self._loss_and_update(inp, target)

    def __call__(self, inp: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """One step on the input ``inp`` and the target ``target``; returns the loss.

        On the graph path the returned tensor is overwritten by the next step: read it (or
        add it to an accumulator) before calling again.
        """
        self.calls += 1
        if not self.use_graph:
            return self._eager(inp, target)
        if self._inp is None:
            self._inp, self._target = inp.clone(), target.clone()
            self._stream = torch.cuda.Stream(device=self.device)
        elif inp.shape != self._inp.shape or target.shape != self._target.shape:
            raise ValueError(
                f"a graphed training step needs fixed shapes: {tuple(self._inp.shape)} "
                f"expected, got {tuple(inp.shape)}"
            )
        else:
            self._inp.copy_(inp)
            self._target.copy_(target)
        if self.graph is None:
            if self.calls <= GRAPH_WARMUP:
                return self._side_stream_step()
            try:
                self._capture()
            except RuntimeError as exc:  # an unsupported setup: go on eagerly
                warnings.warn(
                    f"CUDA graph capture failed ({exc}); training continues without it",
                    RuntimeWarning,
                    stacklevel=2,
                )
                self.use_graph = False
                self.graph = None
                return self._eager(self._inp, self._target)
        self.graph.replay()
        return self._loss

    def _side_stream_step(self) -> torch.Tensor:
        assert self._stream is not None and self._inp is not None and self._target is not None
        current = torch.cuda.current_stream(self.device)
        self._stream.wait_stream(current)
        with torch.cuda.stream(self._stream):
            loss = self._eager(self._inp, self._target)
        current.wait_stream(self._stream)
        return loss

    def _capture(self) -> None:
        assert self._inp is not None and self._target is not None
        graph = torch.cuda.CUDAGraph()
        # Gradients are set to None so that the captured backward allocates them in the
        # graph's memory and writes (not accumulates) them at every replay.
        self.opt.zero_grad(set_to_none=True)
        # thread_local: another thread's CUDA work (a second run, a viewer) must not break
        # this capture, which runs in the caller's thread (a worker in napari).
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            self._loss = self._loss_and_update(self._inp, self._target)
        self.graph = graph
