import numpy as np
import pytest
from scipy.special import softmax

from ferlab.tta import TTA_SHIFT, average_views, tta_views


def test_tta_views_are_the_mirror_and_shifted_copies():
    x = np.arange(2 * 48 * 48).reshape(2, 48, 48)
    assert len(tta_views(x, "none")) == 1
    original, mirror = tta_views(x, "flip")
    assert np.array_equal(original, x) and np.array_equal(mirror, x[..., ::-1])
    views = tta_views(x, "shift")
    assert len(views) == 10 and all(v.shape == x.shape for v in views)
    s = TTA_SHIFT
    down = views[1]  # content moved s pixels down: the top rows repeat the edge
    assert np.array_equal(down[:, s:], x[:, :-s])
    assert np.array_equal(down[:, :s], np.repeat(x[:, :1], s, axis=1))
    assert np.array_equal(tta_views(x[:, None], "shift")[1][:, 0], down)  # (N, 1, H, W) too
    with pytest.raises(ValueError, match="tta must be one of"):
        tta_views(x, "rotate")


def test_averaging_views_probabilities_is_averaging_their_logits():
    logits = np.random.default_rng(0).normal(size=(10, 4, 7)) * 3  # 10 views of 4 faces
    probabilities = softmax(logits, axis=2).astype(np.float32)
    np.testing.assert_allclose(average_views(probabilities), softmax(logits.mean(0), axis=1), atol=1e-5)
    np.testing.assert_array_equal(average_views(probabilities[:1]), probabilities[0])  # one view: itself
    one_hot = np.eye(7, dtype=np.float32)  # probabilities of exactly 0 must not make the mean log NaN
    np.testing.assert_allclose(average_views(np.stack([one_hot, one_hot])), one_hot, atol=1e-6)
