"""The saved-network panel: use a saved network (``.zssr``) for the next runs, or save the
network of a finished 2-D run.

A run on a 2-D layer keeps its network (when it trained in one jump); "Save network..."
writes the network of the selected result layer (or of the latest result) to a ``.zssr``
file. With "use a saved network" ticked and a file chosen, Run applies that network to every
plane instead of training one, fine-tuned on each plane for the given iterations first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from magicgui.widgets import CheckBox, Container, FileEdit, Label, PushButton, SpinBox
from napari.utils.notifications import show_error, show_info

__all__ = ["ModelPanel"]

_FILTER = "ZSSR network (*.zssr)"


class ModelPanel(Container):
    """ "Use a saved network" (file, fine-tuning iterations) and "Save network..."."""

    def __init__(self, viewer: Any) -> None:
        super().__init__(labels=True)
        self.margins = (0, 0, 0, 0)
        self._viewer = viewer
        self.use_model = CheckBox(
            text="use a saved network",
            value=False,
            tooltip="Apply a network saved earlier (napari-zssr train, or Save network) "
            "instead of training one: the same network for every plane. It brings its "
            "kernel (PSF: none) and must have learned this scale.",
        )
        self.model_file = FileEdit(label="Network file", mode="r", filter=_FILTER)
        self.finetune = SpinBox(
            label="Fine-tune",
            value=0,
            min=0,
            max=100_000,
            step=10,
            tooltip="Training iterations on each plane from the saved weights before it is "
            "upscaled (0: apply the network as it is).",
        )
        self.save_button = PushButton(
            text="Save network...",
            enabled=False,
            tooltip="Save the network of the selected result layer (or the latest result) of "
            "a 2-D run to a .zssr file.",
        )
        self.model_info = Label(value="no network kept yet")
        self.model_info.native.setWordWrap(True)
        self.extend(
            [self.use_model, self.model_file, self.finetune, self.save_button, self.model_info]
        )
        #: result layer -> (source name, network) of the runs that kept one, latest last
        self.kept: list[tuple[Any, str, Any]] = []
        self.use_model.changed.connect(self.refresh)
        self.save_button.changed.connect(lambda *_: self.save_network())
        self.refresh()

    def refresh(self, *_: Any) -> None:
        """Show the file and fine-tuning only when a saved network is used."""
        on = bool(self.use_model.value)
        self.model_file.visible = on
        self.finetune.visible = on

    def chosen_file(self) -> Path | None:
        """The network file to apply (None: the run trains its own)."""
        if not self.use_model.value:
            return None
        value = str(self.model_file.value or "").strip()
        if value in ("", "."):
            raise ValueError("'use a saved network' is ticked but no network file is chosen")
        return Path(value)

    def request_fields(self, two_d: bool, iso: bool) -> dict[str, Any]:
        """The request's network fields: the network to apply, or keep the run's (2-D)."""
        if iso:
            return {}
        path = self.chosen_file()
        if path is not None:
            return {"model": path, "finetune": int(self.finetune.value)}
        return {"keep_model": True} if two_d else {}

    def on_result(self, layer: Any, source_name: str, result: Any) -> None:
        """Remember the network a finished run kept (with its result layer)."""
        saved = result.info.get("saved_network")
        if saved:
            self.model_info.value = f"applied {saved['source']} (fine-tuned {saved['finetune']})"
        model = result.extra.get("model")
        if model is None:
            note = result.info.get("model_note")
            if note:
                self.model_info.value = note
            return
        self.kept.append((layer, source_name, model))
        self.save_button.enabled = True
        self.model_info.value = f"network of '{source_name}' kept: {model.describe()}"

    def _selected(self) -> tuple[Any, str, Any] | None:
        active = self._viewer.layers.selection.active
        for entry in reversed(self.kept):
            if entry[0] is active:
                return entry
        return self.kept[-1] if self.kept else None

    def save_network(self, path: str | Path | None = None) -> Path | None:
        """Write the selected result's network to ``path`` (None: ask with a file dialog)."""
        from ...io.model_file import save_model

        entry = self._selected()
        if entry is None:
            show_info("ZSSR: no network to save: run on a 2-D image first")
            return None
        _, source_name, model = entry
        if path is None:
            path = self._ask_path(f"{source_name}.zssr")
            if path is None:
                return None
        path = Path(path)
        if path.suffix.lower() != ".zssr":
            path = path.with_name(path.name + ".zssr")
        try:
            save_model(model, path)
        except (OSError, ValueError, TypeError) as exc:
            show_error(f"ZSSR: cannot save the network: {exc}")
            return None
        self.model_info.value = f"saved the network of '{source_name}' to {path}"
        return path

    def _ask_path(self, suggested: str) -> Path | None:
        from qtpy.QtWidgets import QFileDialog

        name, _ = QFileDialog.getSaveFileName(self.native, "Save ZSSR network", suggested, _FILTER)
        return Path(name) if name else None
