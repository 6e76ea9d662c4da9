"""The honest resolution readout: no gain printed that the bicubic upscale also shows."""

from __future__ import annotations

import pytest

from napari_zssr.core.resolution import resolution_gain


def test_the_bundled_samples_readings_show_no_gain_over_bicubic() -> None:
    # the widget printed "resolution 3.28 px -> 1.18 px (bicubic upscale 1.34 px)"
    out = resolution_gain(3.28, 1.34, 1.18)
    assert not out["measurable"] and out["gain"] is None
    assert "not measurable" in out["text"] and "3.28 px -> 1.18" not in out["text"]
    assert "sampling limit" in out["text"]


def test_an_output_clearly_finer_than_a_fooled_bicubic_is_compared_with_it() -> None:
    out = resolution_gain(3.28, 2.2, 1.5)
    assert out["measurable"] and out["basis"] == "bicubic"
    assert out["gain"] == pytest.approx(2.2 / 1.5)
    assert "finer than the bicubic upscale" in out["text"]


def test_a_clean_input_reports_the_gain_over_the_input() -> None:
    out = resolution_gain(3.0, 2.95, 2.0)
    assert out["measurable"] and out["basis"] == "input"
    assert out["gain"] == pytest.approx(1.5)
    assert "3.00 px -> 2.00 px" in out["text"]
    assert not resolution_gain(3.0, 2.95, 2.9)["measurable"]


def test_bad_readings_are_refused() -> None:
    with pytest.raises(ValueError, match="positive and finite"):
        resolution_gain(3.0, float("nan"), 2.0)
    with pytest.raises(ValueError, match="scale"):
        resolution_gain(3.0, 2.0, 2.0, scale=0.5)
