"""An offline stand-in for MNIST: scikit-learn's handwritten digits, made to look like it.

The PySyft course downloads MNIST (60,000 handwritten digits, 28x28 grey pixels). Here
nothing is downloaded: scikit-learn ships 1,797 digits of 8x8 pixels (values 0 to 16).
``digits_as_mnist`` makes them look like MNIST to a model: each digit is scaled up to
20x20 (MNIST's digits fit a 20x20 box) and centred in 28x28 with a 4-pixel border,
stored as 8-bit grey levels as MNIST is, then converted as the course's torchvision
transform does (``ToTensor()``: divide by 255; ``Normalize((0.1307,), (0.3081,))``).

It is a stand-in, not MNIST: fewer, blurrier digits drawn by other people. A model
built for MNIST runs on it unchanged and learns it; its accuracies are not MNIST's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fedlab.federated.dataset import BaseDataset

TRAIN_SIZE = 1500  # the first 1,500 digits; the other 297 are the test set
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # the course's Normalize((0.1307,), (0.3081,))


def _images() -> tuple[torch.Tensor, torch.Tensor]:
    try:
        from sklearn.datasets import load_digits  # (scikit-learn is loaded only here)
    except ImportError:
        raise ImportError(
            "digits_as_mnist needs scikit-learn, which ships the digits: "
            "pip install 'fedlab[lab]' (make lab installs it)"
        ) from None

    digits = load_digits()
    small = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16  # N,1,8,8
    box = F.interpolate(small, size=(20, 20), mode="bilinear", align_corners=False)
    grey = (F.pad(box, (4, 4, 4, 4)) * 255).round().clamp(0, 255).to(torch.uint8)
    return grey, torch.tensor(digits.target, dtype=torch.int64)


def digits_as_mnist(train: bool = True, normalize: bool = True) -> BaseDataset:
    """MNIST-shaped digits: inputs ``float32[N, 1, 28, 28]``, targets ``int64[N]``.

    ``train=True`` gives the first 1,500 digits, ``train=False`` the other 297. With
    ``normalize=False`` the pixels are left in [0, 1] (to look at them).
    """
    grey, labels = _images()
    part = slice(0, TRAIN_SIZE) if train else slice(TRAIN_SIZE, None)
    x = grey[part].float().div(255)  # ToTensor()
    if normalize:
        x = x.sub(MNIST_MEAN).div(MNIST_STD)  # Normalize((0.1307,), (0.3081,))
    return BaseDataset(x, labels[part].clone())
