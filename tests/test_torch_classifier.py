import numpy as np
import torch

from ferlab.models import create_model
from ferlab.torch_classifier import TorchExpressionClassifier


def test_folded_batch_norm_and_batch_sizes_do_not_change_the_answer():
    torch.manual_seed(0)
    network = create_model("fast_cnn").eval()
    for module in network.modules():  # batch norms that really transform
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
    card = {"model": "fast_cnn", "input": {"mean": 0.5, "std": 0.25}}
    faces = np.random.default_rng(1).integers(0, 256, (100, 48, 48), dtype=np.uint8)
    with torch.no_grad():
        reference = torch.softmax(network(torch.from_numpy(faces).unsqueeze(1).float() / 64 - 2), 1).numpy()
    model = TorchExpressionClassifier(network, card)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.network.modules())  # folded into convs
    # The fast pooling layer survives tracing whole (it picks its code at run time).
    assert any(type(m).__name__ == "MaxPool2x2" for m in model.network.modules())
    np.testing.assert_allclose(model.predict_proba(faces), reference, atol=0.03)  # bf16 in big batches
    one_by_one = np.concatenate([model.predict_proba(face) for face in faces[:5]])  # one face: fp32
    np.testing.assert_allclose(one_by_one, reference[:5], atol=1e-4)
