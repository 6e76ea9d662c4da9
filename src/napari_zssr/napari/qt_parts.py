"""Small Qt pieces of the dock widget: the loss sparkline, the kernel thumbnail, the scroll area."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from qtpy.QtCore import QEvent, QPointF, QRectF, QSize, Qt
from qtpy.QtGui import QColor, QImage, QPainter, QPen, QPixmap, QPolygonF
from qtpy.QtWidgets import QFrame, QScrollArea, QSizePolicy, QWidget

__all__ = ["LossPlot", "VerticalScrollArea", "kernel_pixmap"]


class LossPlot(QWidget):
    """A tiny sparkline of the training loss (log scale), drawn with QPainter."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._values: list[float] = []
        self.setMinimumHeight(44)
        self.setMaximumHeight(56)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("Training loss (L1, log scale) of the current layer")

    @property
    def values(self) -> list[float]:
        """Losses shown, oldest first."""
        return list(self._values)

    def clear(self) -> None:
        """Forget every value."""
        self._values.clear()
        self.update()

    def add(self, value: float | None) -> None:
        """Append one loss value (ignored unless finite and > 0)."""
        if value is None or not math.isfinite(value) or value <= 0:
            return
        self._values.append(float(value))
        if len(self._values) > 2000:
            self._values = self._values[::2]
        self.update()

    def paintEvent(self, event: Any) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(self.rect()).adjusted(1, 1, -1, -1)
        text_color = self.palette().color(self.foregroundRole())
        frame = QColor(text_color)
        frame.setAlpha(60)
        painter.setPen(QPen(frame, 1))
        painter.drawRect(rect)
        if len(self._values) < 2:
            painter.setPen(QPen(text_color))
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, "loss")
            painter.end()
            return
        logs = np.log10(np.asarray(self._values))
        lo, hi = float(logs.min()), float(logs.max())
        span = hi - lo if hi > lo else 1.0
        inner = rect.adjusted(4, 4, -4, -4)
        n = len(logs)
        points = [
            QPointF(
                inner.left() + inner.width() * k / (n - 1),
                inner.bottom() - inner.height() * (v - lo) / span,
            )
            for k, v in enumerate(logs)
        ]
        painter.setPen(QPen(QColor(64, 170, 255), 1.5))
        painter.drawPolyline(QPolygonF(points))
        painter.setPen(QPen(text_color))
        painter.drawText(
            rect.adjusted(4, 2, -4, -2),
            Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop,
            f"loss {self._values[-1]:.3g}",
        )
        painter.end()


class VerticalScrollArea(QScrollArea):
    """Scrolls its content vertically only and is always as wide as the content needs."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

    def _width(self, hint: QSize) -> int:
        bar = self.verticalScrollBar().sizeHint().width()
        return hint.width() + bar + 2 * self.frameWidth()

    def setWidget(self, widget: QWidget) -> None:
        super().setWidget(widget)
        widget.installEventFilter(self)

    def eventFilter(self, obj: Any, event: Any) -> bool:
        if obj is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self.updateGeometry()
        return super().eventFilter(obj, event)

    def minimumSizeHint(self) -> QSize:
        inner = self.widget()
        base = super().minimumSizeHint()
        if inner is None:
            return base
        return QSize(self._width(inner.minimumSizeHint()), base.height())

    def sizeHint(self) -> QSize:
        inner = self.widget()
        base = super().sizeHint()
        if inner is None:
            return base
        return QSize(self._width(inner.sizeHint()), inner.sizeHint().height())


def kernel_pixmap(kernel: np.ndarray, size: int = 48) -> QPixmap:
    """Grey-level thumbnail of a 2D kernel (normalised to its maximum, nearest upscaling)."""
    k = np.asarray(kernel, dtype=float)
    k = k - min(0.0, float(k.min()))
    peak = float(k.max())
    img8 = np.ascontiguousarray((255 * k / peak if peak > 0 else k).astype(np.uint8))
    h, w = img8.shape
    qimg = QImage(img8.data, w, h, w, QImage.Format.Format_Grayscale8).copy()
    return QPixmap.fromImage(qimg).scaled(
        size,
        size,
        Qt.AspectRatioMode.KeepAspectRatio,
        Qt.TransformationMode.FastTransformation,
    )
