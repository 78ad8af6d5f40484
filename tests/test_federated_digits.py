"""The offline MNIST stand-in: scikit-learn's digits, shaped and normalised like MNIST."""

from __future__ import annotations

import subprocess
import sys

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

from fedlab.federated.digits import digits_as_mnist


def test_shapes_split_and_labels():
    train, test = digits_as_mnist(train=True), digits_as_mnist(train=False)
    assert train.data.shape == (1500, 1, 28, 28) and train.data.dtype == torch.float32
    assert test.data.shape == (297, 1, 28, 28)
    assert train.targets.dtype == torch.int64
    labels = torch.tensor(load_digits().target)
    assert torch.equal(torch.cat([train.targets, test.targets]), labels)


def test_pixels_are_8_bit_grey_levels_normalised_as_torchvision_does():
    raw = digits_as_mnist(normalize=False).data
    levels = raw * 255
    assert torch.equal(levels, levels.round()) and levels.min() == 0 and levels.max() == 255
    assert torch.equal(digits_as_mnist().data, (raw - 0.1307) / 0.3081)
    border = raw.clone()
    border[:, :, 4:24, 4:24] = 0
    assert border.abs().sum() == 0  # the digit sits in the central 20x20 box, as in MNIST


def test_the_digit_is_the_scaled_up_scikit_learn_image():
    small = torch.tensor(load_digits().images[:1500], dtype=torch.float32).flatten(1) / 16
    box = digits_as_mnist(normalize=False).data[:, :, 4:24, 4:24]
    back = F.interpolate(box, size=(8, 8), mode="area").flatten(1)  # scaled back down
    # The same digit, blurred by the resizing: every image correlates with its original.
    a, b = small - small.mean(1, keepdim=True), back - back.mean(1, keepdim=True)
    correlation = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))
    assert correlation.min() > 0.9


def test_it_is_deterministic():
    assert torch.equal(digits_as_mnist().data, digits_as_mnist().data)


def test_import_fedlab_does_not_load_scikit_learn():
    code = "import sys, fedlab, torch; fedlab.TorchHook(torch); print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
