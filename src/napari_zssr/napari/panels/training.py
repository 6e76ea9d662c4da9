"""The training panel: preset, noise, and the advanced settings (iterations, device, seed...)."""

from __future__ import annotations

from typing import Any

from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox, Label, SpinBox
from napari.qt.threading import create_worker

from ...core.config import (
    GRADUAL_SCALES,
    MAX_NOISE_STD,
    NOISE_MODELS,
    PRESETS,
    ZSSRConfig,
    default_noise_std,
    resolve_config,
)
from ...pipeline import describe_noise, likely_harm
from ..choices import Device, Init, Preset, texts
from ..worker import describe_device

__all__ = ["TrainingPanel"]

_NOISE_TIP = (
    "Gaussian noise added to the low-resolution training inputs only (fraction of the "
    "intensity range): the network learns to ignore noise that does not recur across scales. "
    "By default it is estimated from the image (the field then shows the estimate after a run "
    "or preview); untick the estimate to type a value, or 0 for a noise-free image. Without "
    "it, a noisy image comes out worse than bicubic, and far worse with a PSF."
)


class TrainingPanel(Container):
    """Preset and noise on the form; iterations, crop, steps, tiles, device, seed under Advanced."""

    def __init__(self) -> None:
        super().__init__(labels=True)
        self.margins = (0, 0, 0, 0)
        self.preset = ComboBox(
            label="Preset",
            choices=texts(Preset),
            value=Preset.BALANCED.value,
            tooltip="fast: interactive; balanced: most of the gain; paper: the published "
            "settings; paper-gradual: the reference's gradual x2 configuration (about 6x the "
            "time of paper); real: for noisy real images.",
        )
        self.noise = FloatSpinBox(
            label="Noise on LR sons",
            value=0.0,
            min=0.0,
            max=MAX_NOISE_STD,
            step=0.005,
            tooltip=_NOISE_TIP,
        )
        self.noise.native.setDecimals(4)
        self.noise_auto = CheckBox(
            text="estimate noise from the image",
            value=True,
            tooltip="Measure the image's own noise level (from its weakly textured patches) "
            "and add that much to the sons: the default. Untick to type a value (0: none). "
            "The paper presets untick it (their published setting is no noise).",
        )
        self.noise_hint = Label(value="estimated by default; 0 only for noise-free images")
        self.noise_hint.tooltip = _NOISE_TIP
        self.noise_model = ComboBox(
            label="Noise model",
            choices=list(NOISE_MODELS),
            value="gaussian",
            tooltip="gaussian: the same noise level at every intensity. poisson-gaussian: "
            "variance a x intensity + b (photon and read noise), a and b fitted to the image "
            "and recorded with the result; the noise level above sets its overall amount.",
        )
        self.extend([self.preset, self.noise, self.noise_auto, self.noise_hint, self.noise_model])
        self._build_advanced()
        self.preset.changed.connect(self.apply_preset)
        self.apply_preset(self.preset.value)

    def _build_advanced(self) -> None:
        fast = PRESETS[Preset.FAST.value]
        self.max_iters = SpinBox(
            label="Max iterations", value=fast.max_iters, min=1, max=100_000, step=50
        )
        self.crop_size = SpinBox(label="Crop size", value=fast.crop_size, min=8, max=1024, step=8)
        self.gradual = CheckBox(
            text="gradual: intermediate factors first",
            value=bool(fast.gradual_scales),
            tooltip="Large factors are reached in steps, each step's output joining the "
            "training images: x2 then x4 with fast and balanced; with paper, the reference's "
            "gradual x2 steps (x1.5 per axis first) for factors above 2; with paper-gradual, "
            "those steps at any factor. Without a PSF only. One jump when off.",
        )
        self.bp_iters = SpinBox(
            label="Back-projection", value=fast.back_projection_iters, min=0, max=50
        )
        self.ensemble = CheckBox(text="self-ensemble (8 flips/rotations)", value=False)
        self.tile_size = SpinBox(
            label="Tile size",
            value=fast.tile_size,
            min=32,
            max=16384,
            step=32,
            tooltip="Largest side (output pixels) of one network pass; lower it if the GPU "
            "runs out of memory.",
        )
        self.device = ComboBox(label="Device", choices=texts(Device), value=Device.AUTO.value)
        self.device_info = Label(value="(resolved when a run starts)")
        self.device_info.native.setWordWrap(True)
        self.seed = SpinBox(label="Seed", value=0, min=0, max=2**31 - 1)
        self.init = ComboBox(
            label="Start from",
            choices=texts(Init),
            value=Init.SCRATCH.value,
            tooltip="Where a new network's weights start: scratch (random, the published "
            "method; every preset's default) or bundled (the initialisation shipped with "
            "napari-zssr, learned from synthetic microscopy-like scenes; needs width 64 and "
            "depth 8). A saved network keeps its own weights.",
        )
        self.advanced = [
            self.max_iters,
            self.crop_size,
            self.gradual,
            self.bp_iters,
            self.ensemble,
            self.tile_size,
            self.device,
            self.device_info,
            self.seed,
            self.init,
        ]
        self.alive = True
        """False once the dock is closed: a late answer about the device is dropped."""
        self._device_probed = False
        self.device.changed.connect(self._on_device)

    # ------------------------------------------------------------------------- device
    def probe_device_once(self) -> None:
        """Say which device "auto" (or the choice) resolves to, the first time it is asked."""
        if not self._device_probed:
            self.probe_device()

    def probe_device(self) -> None:
        """Resolve the chosen device in a worker (importing torch there) and show why."""
        self._device_probed = True
        self.device_info.value = "checking..."
        worker = create_worker(describe_device, str(self.device.value), _start_thread=False)
        worker.returned.connect(self._show_device_info)
        worker.errored.connect(lambda exc: self._show_device_info(f"unknown ({exc})"))
        worker.start()

    def _on_device(self, *_: Any) -> None:
        if self._device_probed:  # once shown, the answer follows the choice
            self.probe_device()

    def _show_device_info(self, text: str) -> None:
        if self.alive:
            self.device_info.value = text

    def apply_preset(self, name: str) -> None:
        """Fill the advanced settings with a preset's values."""
        cfg = PRESETS[name]
        self.max_iters.value = cfg.max_iters
        self.crop_size.value = cfg.crop_size
        self.bp_iters.value = cfg.back_projection_iters
        self.ensemble.value = cfg.self_ensemble
        self.tile_size.value = cfg.tile_size
        self.gradual.value = bool(cfg.gradual_scales)
        self.noise_auto.value = default_noise_std(name) == "auto"
        self.noise.value = cfg.noise_std

    def refresh(self, iso: bool, psf_on: bool) -> None:
        """Noise estimation applies to upscaling; gradual steps to the bicubic model."""
        self.noise_auto.visible = not iso
        self.noise_model.visible = not iso
        self.noise.enabled = iso or not self.noise_auto.value
        self.gradual.enabled = not psf_on

    def show_noise(self, info: dict[str, Any]) -> tuple[str, list[str]]:
        """Put a run's noise on the sons into the field; return the status note and warnings."""
        if "noise_std" not in info or "noise_estimate" not in info:
            return "", []  # Z to isotropic: the field's own value
        if info.get("noise_std_source") == "auto":
            self.noise.value = round(float(info["noise_std"]), 4)
        harm = likely_harm(info)
        note = f"noise {describe_noise(info)}" + ("; likely harm: see the warning" if harm else "")
        return note, [*info.get("warnings", []), *harm]

    def noise_std(self, iso: bool) -> float | str:
        """The noise level, or ``"auto"`` to estimate it."""
        return "auto" if self.noise_auto.value and not iso else float(self.noise.value)

    def noise_model_name(self, iso: bool) -> str:
        """The shape of the noise on the sons (Gaussian for Z to isotropic, which has no other)."""
        return "gaussian" if iso else str(self.noise_model.value)

    def preset_name(self, preview: bool) -> str:
        """The preset a run uses (the fast one for a preview)."""
        return Preset.FAST.value if preview else str(self.preset.value)

    def overrides(self, preview: bool, kernel: Any) -> dict[str, Any]:
        """Configuration fields that replace the preset's (``kernel``: whether there is one)."""
        if preview:
            fast = PRESETS[Preset.FAST.value]
            return {
                "max_iters": min(fast.max_iters, int(self.max_iters.value)),
                "tile_size": int(self.tile_size.value),
                "noise_std": float(self.noise.value),
                "init": str(self.init.value),
            }
        name = str(self.preset.value)
        # the preset's own steps (the reference's for paper and paper-gradual), else x2, x4
        steps = PRESETS[name].gradual_scales or GRADUAL_SCALES
        return {
            "max_iters": int(self.max_iters.value),
            "crop_size": int(self.crop_size.value),
            "back_projection_iters": int(self.bp_iters.value),
            "self_ensemble": bool(self.ensemble.value),
            "tile_size": int(self.tile_size.value),
            "noise_std": float(self.noise.value),
            "gradual_scales": steps if self.gradual.value and kernel is None else (),
            "init": str(self.init.value),
        }

    def config(self, preview: bool, kernel: Any) -> ZSSRConfig:
        """The configuration a run would use."""
        return resolve_config(self.preset_name(preview), None, **self.overrides(preview, kernel))
