"""Occlusion against gradient maps: which shows best what the model uses, at what cost?

`ferlab explain` maps a face by occlusion (`ferlab.explain.occlusion_maps`: 530 classifier
passes a face). Gradient methods cost one forward and one backward pass, but need PyTorch and
the network's inside. Each method maps the first N PublicTest faces for their predicted label,
and `ferlab.explain.deletion_curve` scores them all alike: accuracy as the pixels a map ranks
highest are hidden (lower is more faithful), beside another face's map and random patches.

- occlusion: `ferlab explain`'s maps (4-pixel patches every 2 pixels, log-odds);
- gradient x input: the label's logit's gradient with respect to the normalised pixels,
  times those pixels (signed);
- Grad-CAM (Selvaraju et al. 2017): the last stage's 6x6 feature maps before their pooling,
  weighted by the mean gradient of the label's logit, ReLU, upsampled bilinearly to 48x48.

    python benchmarks/explain_methods.py --data ../shared/data/fer2013.csv.gz [--faces 500]
"""

from __future__ import annotations

import argparse
import time
from importlib import resources

import numpy as np
import torch
import torch.nn.functional as F

from ferlab.classifier import load_model
from ferlab.data import load_fer2013, train_val_test
from ferlab.evaluate import to_input
from ferlab.explain import deletion_curve, occlusion_maps
from ferlab.hardware import machine_description
from ferlab.models import load_trained
from ferlab.models.fast_cnn import MaxPool2x2


def gradient_maps(network, faces: np.ndarray, targets: np.ndarray, method: str) -> np.ndarray:
    """(N, 48, 48) maps of ``network`` (a fast_cnn) for class ``targets``, in fp32."""
    x = to_input(torch.from_numpy(faces), torch.device("cpu")).contiguous().requires_grad_(method == "gradient_x_input")
    pools = [i for i, layer in enumerate(network.features) if isinstance(layer, MaxPool2x2)]
    before_last_pool = network.features[: pools[-1]]
    after = torch.nn.Sequential(*network.features[pools[-1] :], network.head)
    features = before_last_pool(x)
    if method == "gradcam":
        features.retain_grad()
    logits = after(features)
    logits[torch.arange(len(faces)), torch.from_numpy(targets)].sum().backward()
    if method == "gradient_x_input":
        return (x.grad * x).detach()[:, 0].numpy()
    weights = features.grad.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * features).sum(dim=1, keepdim=True))
    return F.interpolate(cam, size=faces.shape[1:], mode="bilinear", align_corners=False)[:, 0].detach().numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--faces", type=int, default=500, help="first N PublicTest faces (default: %(default)s)")
    args = parser.parse_args()
    faces, labels = train_val_test(load_fer2013(args.data))["PublicTest"]
    faces, labels = faces[: args.faces], labels[: args.faces]
    classifier = load_model(backend="torch")  # the bundled default, as ferlab explain runs it
    predicted = classifier.predict_proba(faces).argmax(axis=1)
    network, _ = load_trained(resources.files("ferlab") / "pretrained" / "default.safetensors")
    network.eval()
    print(f"{machine_description()}; the bundled default; the first {len(faces)} PublicTest faces; "
          f"accuracy with nothing hidden {100 * np.mean(predicted == labels):.1f}%")
    print("| method | ms a face | accuracy with 5 / 10 / 20% hidden: own map | another face's map | random patches "
          "| area: own | another face's map | random patches |")
    print("|---|---|---|---|---|---|---|---|")
    methods = {
        "occlusion (ferlab explain)": lambda: occlusion_maps(classifier, faces)[np.arange(len(faces)), predicted],
        "gradient x input": lambda: gradient_maps(network, faces, predicted, "gradient_x_input"),
        "Grad-CAM (6x6)": lambda: gradient_maps(network, faces, predicted, "gradcam"),
    }
    for name, compute in methods.items():
        start = time.perf_counter()
        maps = compute()
        milliseconds = 1000 * (time.perf_counter() - start) / len(faces)
        curve = deletion_curve(classifier, faces, labels, maps)
        at = [curve["fractions"].index(f) for f in (0.05, 0.1, 0.2)]
        keys = ("salient", "another_face", "random_patches")
        cells = [" / ".join(f"{100 * curve[key][i]:.1f}" for i in at) for key in keys]
        print(f"| {name} | {milliseconds:.1f} | {' | '.join(cells)} | {100 * curve['area_salient']:.1f} | "
              f"{100 * curve['area_another_face']:.1f} | {100 * curve['area_random_patches']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
