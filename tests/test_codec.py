"""Tests of src.codec: the map contract that targets, the pipeline, inference and export share."""
import numpy as np
import pytest

from src.codec import (
    GRID_OFFSET,
    STRIDE,
    TRAINED_INPUT_SCALE,
    check_input_side,
    in_cells,
    is_valid_side,
    map_grid,
    map_side,
    normalize_image,
    round_up_to_stride,
)
from src.data.pipeline import TrainSource
from src.evaluate.inference import preprocess


def test_normalize_image_keeps_bgr_and_scales():
    image = np.array([[[0, 255, 51]]], np.uint8)
    out = normalize_image(image)
    assert out.shape == (3, 1, 1) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, 0, 0], [-0.5, 0.5, -0.3], atol=1e-7)
    np.testing.assert_allclose(normalize_image(image, 256.0)[:, 0, 0], [-0.5, 255 / 256 - 0.5, 51 / 256 - 0.5],
                               atol=1e-7)


def test_training_and_inference_see_the_same_input():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    trained = normalize_image(image, TRAINED_INPUT_SCALE)
    inferred = preprocess(image, (40, 24))             # same size: the resize is the identity
    assert np.array_equal(trained, inferred), "training and inference normalise images differently"
    assert TrainSource.__module__ == "src.data.pipeline"


@pytest.mark.parametrize("side", [8, 64, 368])
def test_valid_sides(side):
    assert is_valid_side(side) and check_input_side(side) == side and map_side(side) == side // STRIDE


@pytest.mark.parametrize("side", [0, -8, 7, 100, 8.0, "64"])
def test_invalid_sides_are_refused(side):
    assert not is_valid_side(side)
    with pytest.raises(ValueError, match=f"insize must be a positive multiple of {STRIDE}"):
        check_input_side(side)


def test_grid_and_lengths():
    grid_x, grid_y = map_grid(2, 3)
    np.testing.assert_allclose(grid_x, [GRID_OFFSET, 1 + GRID_OFFSET, 2 + GRID_OFFSET])
    np.testing.assert_allclose(grid_y, [GRID_OFFSET, 1 + GRID_OFFSET])
    assert in_cells(7.0) == 7.0 / STRIDE
    assert [round_up_to_stride(v) for v in (1, 8, 9, 368)] == [8, 8, 16, 368]
