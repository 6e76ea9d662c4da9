"""The reference's learning-rate policy: divide the rate when the loss stops falling."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["LRPolicy"]


@dataclass
class LRPolicy:
    """Track reconstruction errors and decide when to lower the learning rate.

    Every ``lr_check_every`` iterations, once ``lr_slope_window`` iterations have passed
    since the last change, a line is fitted to the last ``fit_points`` reconstruction
    errors. If ``-ratio * slope < standard error of the slope`` the loss is no longer
    clearly falling and the rate is divided by ``decay``. Training ends when the rate
    drops below ``min_lr``.
    """

    lr: float
    decay: float = 10.0
    min_lr: float = 9e-6
    check_every: int = 60
    slope_window: int = 256
    fit_points: int = 5
    ratio: float = 1.5
    min_iters: int = 0
    iters: list[int] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)
    last_change: int = 0

    def record(self, iteration: int, error: float) -> None:
        """Store the reconstruction error measured at ``iteration``."""
        self.iters.append(iteration)
        self.errors.append(float(error))

    def step(self, iteration: int) -> bool:
        """Possibly lower the rate at ``iteration``; return True if it changed."""
        if iteration % self.check_every or iteration < self.min_iters:
            return False
        if iteration - self.last_change <= self.slope_window:
            return False
        if len(self.errors) < self.fit_points:
            return False
        x = np.asarray(self.iters[-self.fit_points :], dtype=np.float64)
        y = np.asarray(self.errors[-self.fit_points :], dtype=np.float64)
        slope, std_err = _linear_fit(x, y)
        # "<=": a perfectly flat loss (slope 0, no scatter, e.g. an all-zero image) is not
        # falling either, and must not keep the rate up until max_iters.
        if -self.ratio * slope <= std_err:
            self.lr /= self.decay
            self.last_change = iteration
            return True
        return False

    @property
    def finished(self) -> bool:
        """True once the rate fell below ``min_lr``."""
        return self.lr < self.min_lr


def _linear_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope and its standard error (as ``scipy.stats.linregress``)."""
    n = len(x)
    xm, ym = x.mean(), y.mean()
    sxx = ((x - xm) ** 2).sum()
    if sxx == 0:
        return 0.0, 0.0
    slope = ((x - xm) * (y - ym)).sum() / sxx
    resid = y - (ym + slope * (x - xm))
    dof = max(n - 2, 1)
    std_err = float(np.sqrt((resid**2).sum() / dof / sxx))
    return float(slope), std_err
