"""``napari-zssr train`` and ``napari-zssr run --model``: saved networks on the command line."""

from __future__ import annotations

import numpy as np
import pytest

from napari_zssr.cli import main
from napari_zssr.io import read_tiff, write_tiff
from napari_zssr.io.model_file import load_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = ["--preset", "fast", "--max-iters", "8", "--device", "cpu", "-q"]


def _texture(shape, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[: shape[0], : shape[1]]
    img = 800 + 400 * np.sin(x / 2.5) * np.cos(y / 3.5) + rng.normal(0, 15, shape)
    return img.clip(0, 4000).astype(np.uint16)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Two time points of one specimen, and a network trained on the first."""
    folder = tmp_path_factory.mktemp("net")
    paths = []
    for k in range(2):
        path = folder / f"t{k}.tif"
        write_tiff(path, _texture((24, 28), k), axes="YX", pixel_size=0.2)
        paths.append(path)
    net = folder / "net.zssr"
    assert main(["train", str(paths[0]), "-o", str(net), "-s", "2", *FAST]) == 0
    return paths, net


def test_train_writes_a_network_for_the_scale(files):
    _, net = files
    model = load_model(net)
    assert model.scale == (2.0, 2.0) and model.channels == 1
    assert model.config.gradual_scales == () and model.config.max_iters == 8
    assert model.training["input"].endswith("t0.tif")


def test_run_with_model_and_finetune_end_to_end(files, tmp_path, capsys):
    (_, t1), net = files
    plain, tuned = tmp_path / "plain.tif", tmp_path / "tuned.tif"
    args = ["run", str(t1), "-s", "2", "--preset", "fast", "--device", "cpu", "--model", str(net)]
    assert main([*args, "-o", str(plain)]) == 0
    out = capsys.readouterr().out
    assert f"network: {net}" in out and "applied as saved" in out
    assert main([*args, "-o", str(tuned), "--finetune", "4"]) == 0
    assert "fine-tuned 4 iterations per plane" in capsys.readouterr().out
    a, meta = read_tiff(plain)
    b, _ = read_tiff(tuned)
    assert a.shape == b.shape == (48, 56) and not np.array_equal(a, b)
    assert meta.pixel_size[1] == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["-s", "3"], "does not match the saved network"),
        (
            ["-s", "2", "--na", "1.4", "--emission", "0.5", "--pixel-size", "0.1"],
            "brings the kernel",
        ),
        (["-s", "2", "--finetune", "-1"], "--finetune"),
    ],
)
def test_run_with_model_refuses_bad_options_before_training(files, tmp_path, capsys, extra, needle):
    (_, t1), net = files
    code = main(["run", str(t1), "-o", str(tmp_path / "o.tif"), "--model", str(net), *extra])
    assert code == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "o.tif").exists()


def test_run_refuses_a_missing_or_foreign_model_file(files, tmp_path, capsys):
    (t0, t1), _ = files
    out = str(tmp_path / "o.tif")
    assert main(["run", str(t1), "-o", out, "-s", "2", "--model", str(tmp_path / "no.zssr")]) == 2
    assert "network file not found" in capsys.readouterr().err
    assert main(["run", str(t1), "-o", out, "-s", "2", "--model", str(t0)]) == 2
    assert "no valid .zssr header" in capsys.readouterr().err


def test_train_refuses_bad_outputs(files, tmp_path, capsys):
    (t0, _), net = files
    assert main(["train", str(t0), "-o", str(tmp_path / "n.tif"), "-s", "2"]) == 1
    assert "must end in .zssr" in capsys.readouterr().err
    assert main(["train", str(t0), "-o", str(net), "-s", "2"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert main(["train", str(t0), "-o", str(tmp_path / "n.zssr"), "-s", "2", "--z-isotropic"]) == 2
    assert "lateral" in capsys.readouterr().err
