"""The bundled initialisation: the file, the engine's use of it, and what it is worth."""

from __future__ import annotations

import hashlib
import json
import re
from importlib import resources

import numpy as np
import pytest
import torch

from napari_zssr.core import init_weights
from napari_zssr.core.config import PRESETS, ZSSRConfig
from napari_zssr.core.engine import fit, prepare_run
from napari_zssr.core.model import expected_shapes
from napari_zssr.core.network import ZSSRNet
from napari_zssr.core.resize import imresize

DATA = resources.files("napari_zssr") / "data"


def _state(net: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()}


def test_bundled_file_is_safetensors_with_the_recorded_hash():
    raw = (DATA / init_weights.BUNDLED_FILE).read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    assert digest == init_weights.BUNDLED_SHA256
    card = (DATA / "zssr_init.md").read_text(encoding="utf-8")
    assert re.search(r"SHA-256: `([0-9a-f]{64})`", card).group(1) == digest
    assert "Partial checkpoint" not in card
    # safetensors: an 8-byte little-endian header length, a JSON header, raw tensors; no pickle
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    assert raw[8:9] == b"{"
    assert {v["dtype"] for k, v in header.items() if k != "__metadata__"} == {"F32"}
    weights, meta = init_weights.load_bundled()
    width, depth = init_weights.bundled_shape()
    assert (width, depth) == (int(meta["width"]), int(meta["depth"]))
    assert (width, depth) == (PRESETS["fast"].width, PRESETS["fast"].depth)
    shapes = expected_shapes(1, width, depth)
    assert {k: v.shape for k, v in weights.items()} == shapes
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in weights.values())
    assert len(raw) < 4_000_000


def test_damaged_file_is_refused(monkeypatch):
    init_weights.load_bundled.cache_clear()
    good = init_weights._read_bytes()
    monkeypatch.setattr(init_weights, "_read_bytes", lambda: good[:-4] + b"\0\0\0\0")
    try:
        with pytest.raises(ValueError, match="damaged"):
            init_weights.load_bundled()
    finally:
        init_weights.load_bundled.cache_clear()


def test_config_init_is_validated_and_recorded():
    assert ZSSRConfig().init == "scratch"
    assert ZSSRConfig(init="bundled").to_dict()["init"] == "bundled"
    with pytest.raises(ValueError, match="init must be one of scratch, bundled"):
        ZSSRConfig(init="pretrained")


def test_width_other_than_the_bundled_one_is_refused():
    img = np.random.default_rng(0).random((40, 40), dtype=np.float32)
    cfg = ZSSRConfig(init="bundled", width=16, max_iters=1)
    with pytest.raises(ValueError, match="init='bundled' needs width 64 and depth 8"):
        fit([img], 2, config=cfg, device="cpu")


def test_scratch_start_is_the_seeded_random_one():
    img = np.random.default_rng(0).random((40, 40), dtype=np.float32)
    cfg = ZSSRConfig(width=8, depth=3, max_iters=3, crop_size=16)
    run = prepare_run(
        [img], (2.0, 2.0), kernel=None, config=cfg, device=torch.device("cpu"), seed=5
    )
    ref = ZSSRNet(1, 8, 3, generator=torch.Generator().manual_seed(5))
    got, want = _state(run.model.net), _state(ref)
    assert all(np.array_equal(got[k], want[k]) for k in want)
    # the default and an explicit "scratch" train to the same bits
    a = fit([img], 2, config=cfg, device="cpu", seed=1)
    b = fit([img], 2, config=cfg.replace(init="scratch"), device="cpu", seed=1)
    sa, sb = _state(a.net), _state(b.net)
    assert all(np.array_equal(sa[k], sb[k]) for k in sa)


def test_bundled_start_is_the_same_for_every_network_and_channel_count():
    rng = np.random.default_rng(1)
    gray = rng.random((48, 48), dtype=np.float32)
    cfg = PRESETS["fast"].replace(init="bundled")
    cpu = torch.device("cpu")
    runs = [
        prepare_run([gray], (2.0, 2.0), kernel=None, config=cfg, device=cpu, seed=s) for s in (0, 7)
    ]
    s0, s7 = (_state(r.model.net) for r in runs)
    bundled, _ = init_weights.load_bundled()
    assert all(np.array_equal(s0[k], bundled[k]) and np.array_equal(s7[k], s0[k]) for k in s0)
    # three equal channels: the same output as the single-channel network, on each channel
    rgb = prepare_run([np.stack([gray] * 3)], (2.0, 2.0), kernel=None, config=cfg, device=cpu)
    x = torch.from_numpy(gray)[None, None]
    with torch.inference_mode():
        one = runs[0].model.net(x)
        three = rgb.model.net(x.repeat(1, 3, 1, 1))
    assert torch.allclose(three, one.repeat(1, 3, 1, 1), atol=1e-5)


def _bars(n: int, rng: np.random.Generator) -> np.ndarray:
    """Axis-aligned bars and blocks of random grey levels: a scene the recipe does not draw
    (it has discs, curves, cell boundaries, ellipses and noise textures, no rectangles)."""
    img = np.full((n, n), 0.2, np.float32)
    for _ in range(40):
        y, x = rng.integers(0, n, 2)
        h, w = (
            (rng.integers(2, 12), rng.integers(2, 40))
            if rng.random() < 0.5
            else (rng.integers(2, 40), rng.integers(2, 12))
        )
        img[y : y + h, x : x + w] = rng.uniform(0.0, 1.0)
    return img


@pytest.mark.slow
def test_a_few_iterations_from_the_bundled_start_beat_bicubic():
    from napari_zssr import super_resolve

    torch.set_num_threads(1)
    hr = _bars(128, np.random.default_rng(3))
    hr_t = torch.from_numpy(hr)[None]
    lr = imresize(hr_t, 0.5)[0].clamp(0, 1).numpy()
    bicubic = imresize(torch.from_numpy(lr)[None], 2.0, hr.shape)[0].clamp(0, 1).numpy()
    cfg = PRESETS["fast"].replace(init="bundled", max_iters=10)
    out, info = super_resolve(lr, 2, config=cfg, noise_std=0.0, device="cpu", return_info=True)
    assert info["config"]["init"] == "bundled"

    def psnr(a: np.ndarray) -> float:
        return float(10 * np.log10(1.0 / np.mean((a[4:-4, 4:-4] - hr[4:-4, 4:-4]) ** 2)))

    # measured: bicubic 25.65 dB, bundled start 31.59 dB, random start 26.33 dB (10 iterations;
    # 28.62 dB from the first, shorter pre-training)
    assert psnr(out) > psnr(bicubic) + 1.0
    cold = super_resolve(lr, 2, config=cfg.replace(init="scratch"), noise_std=0.0, device="cpu")
    assert psnr(out) > psnr(cold) + 1.0
