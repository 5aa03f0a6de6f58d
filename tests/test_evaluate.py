import numpy as np
import torch
from torch import nn

from ferlab.evaluate import predict_logits


def test_tta_averages_logits_over_views():
    class LeftRightSum(nn.Module):
        """Logits that see only which half of the face is brighter, so a mirror cancels them."""

        def __init__(self):
            super().__init__()
            self.anchor = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            left, right = x[..., :24].mean((1, 2, 3)), x[..., 24:].mean((1, 2, 3))
            return torch.stack([left - right] + [torch.zeros_like(left)] * 6, 1)

    faces = np.zeros((3, 48, 48), np.uint8)
    faces[:, :, :24] = 200
    plain = predict_logits(LeftRightSum(), faces, precision="fp32")
    assert (plain[:, 0] > 0).all()
    np.testing.assert_allclose(predict_logits(LeftRightSum(), faces, precision="fp32", tta="flip"), 0, atol=1e-6)
