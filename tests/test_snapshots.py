"""Training snapshots: the engine's hook, its conversion to output arrays, and their clock."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from napari_zssr import super_resolve
from napari_zssr.core.config import PRESETS
from napari_zssr.napari.live import SnapshotClock

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CFG = PRESETS["fast"].replace(max_iters=40, min_iters=40, crop_size=24, report_every=1)


def _image(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    img = ndimage.gaussian_filter(rng.random(shape), [0] * (len(shape) - 2) + [1.5, 1.5])
    img -= img.min()
    return (img / img.max() * 3000 + 100).astype(np.uint16)


def test_snapshots_do_not_change_the_result():
    img = _image((36, 40))
    seen: list[tuple[int, np.ndarray, np.ndarray]] = []

    def take_all(p):
        if p.snapshot is not None:
            seen.append((p.iteration, p.snapshot(), p.snapshot(network=False)))

    with_snaps = super_resolve(img, 2, config=CFG, seed=3, device="cpu", callback=take_all)
    without = super_resolve(img, 2, config=CFG, seed=3, device="cpu", callback=lambda p: None)
    assert len(seen) >= 30  # a snapshot at every iteration
    np.testing.assert_array_equal(with_snaps, without)
    first, last = seen[0][1], seen[-1][1]
    assert first.shape == with_snaps.shape == (72, 80) and first.dtype == np.uint16
    assert not np.array_equal(first, last)  # the network moves
    # the bicubic upscale is the same at every iteration, and not the network's output
    np.testing.assert_array_equal(seen[0][2], seen[-1][2])
    assert not np.array_equal(seen[-1][2], last)


def test_inference_offers_the_trained_network_once_at_no_cost():
    img = _image((36, 40))
    at_inference, last_training = [], []

    def take(p):
        if p.snapshot is None:
            return
        if p.stage == "infer":
            at_inference.append((p.snapshot(), p.snapshot(network=False)))
        else:
            last_training[:] = [(p.snapshot(), p.snapshot(network=False))]

    out = super_resolve(img, 2, config=CFG, seed=3, device="cpu", callback=take)
    assert CFG.self_ensemble and len(at_inference) == 1
    # the ensemble's identity member is what a snapshot of the trained network shows
    (net_out, bicubic), (train_out, train_bicubic) = at_inference[0], last_training[0]
    np.testing.assert_array_equal(net_out, train_out)
    np.testing.assert_array_equal(bicubic, train_bicubic)
    assert net_out.shape == out.shape and net_out.dtype == out.dtype
    assert not np.array_equal(net_out, out)  # the result adds the ensemble

    at_inference.clear()
    super_resolve(img, 2, config=CFG.replace(self_ensemble=False), device="cpu", callback=take)
    assert at_inference == []  # one member: the result itself comes next


def test_snapshot_of_channels_keeps_the_output_layout():
    img = np.stack([_image((30, 32), seed=1), _image((30, 32), seed=2)])
    shots = []

    def take(p):
        if p.snapshot is not None and not shots:
            shots.append(p.snapshot())

    out = super_resolve(img, 2, config=CFG, channel_axis=0, device="cpu", callback=take)
    assert shots[0].shape == out.shape == (2, 60, 64)
    assert shots[0].dtype == out.dtype


def test_a_stack_offers_no_snapshot():
    stack = np.stack([_image((24, 24), seed=k) for k in range(2)])
    offered = []
    cfg = CFG.replace(max_iters=4, min_iters=4, finetune_iters=2)
    super_resolve(stack, 2, config=cfg, device="cpu", callback=lambda p: offered.append(p))
    assert any(p.stage == "train" for p in offered)
    assert all(p.snapshot is None for p in offered)


def test_the_clock_starts_early_then_follows_wall_time_and_cost():
    clock = SnapshotClock(first_iteration=3, interval_s=1.0, max_share=0.2)
    assert not clock.due(2, now=0.0)
    assert clock.due(3, now=0.0)
    assert clock.record(0.1, now=0.1) == 1  # started at 0.0: next at 1.0
    assert not clock.due(10, now=0.9)
    assert clock.due(10, now=1.0)
    assert clock.record(0.5, now=1.5) == 2  # took 0.5 s: next 2.5 s after its start
    assert not clock.due(20, now=3.4)
    assert clock.due(20, now=3.5)
    assert clock.spent_s == pytest.approx(0.6)


def test_the_default_clock_spends_at_most_a_tenth_on_snapshots():
    clock = SnapshotClock()
    now, spent, cost = 0.0, 0.0, 0.8
    for it in range(1, 2000):
        now += 0.05  # one training iteration
        if clock.due(it, now=now):
            now += cost
            spent += cost
            clock.record(cost, now=now)
    assert clock.taken >= 5
    assert spent <= 0.1 * now + cost  # the share holds up to the snapshot in progress
