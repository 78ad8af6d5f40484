"""The allowlist covers torch.nn.functional: every function runs on a worker bit for bit, or
is excluded with its reason written out."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

import fedlab as sy
from fedlab.allowlist import EXCLUDED, OPS, _is_function


def inputs() -> dict[str, torch.Tensor]:
    """Small inputs of every shape the calls below need (the same values every time)."""
    g = torch.Generator().manual_seed(0)

    def r(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g)

    # fmt: off
    return {
        "v": r(4, 5), "u": r(4, 5), "w": r(4, 5), "b5": r(5),
        "probs": torch.rand(4, 5, generator=g), "bits": (r(4, 5) > 0).float(),
        "labels": torch.tensor([1, 0, 4, 2]), "signs": torch.tensor([1.0, -1.0, 1.0, -1.0]),
        "x1": r(2, 4, 8), "x2": r(2, 4, 8, 8), "x3": r(1, 2, 4, 4, 4),
        "w1": r(3, 4, 3), "w2": r(3, 4, 3, 3), "w3": r(2, 2, 3, 3, 3), "b3": r(3),
        "wt1": r(4, 3, 3), "wt2": r(4, 3, 3, 3), "wt3": r(2, 2, 3, 3, 3), "b2": r(2),
        "c4": r(4), "ones4": torch.ones(4), "rm": torch.zeros(4), "rv": torch.ones(4),
        "emb": r(6, 3), "idx": torch.tensor([[0, 2], [1, 5]]), "flat": torch.tensor([0, 2, 1, 5]),
        "offsets": torch.tensor([0, 2]), "ints": torch.tensor([0, 3, 1]),
        "multi": torch.tensor([[3, 0, -1, 1, 2], [1, 2, -1, 0, 0], [4, -1, 0, 0, 0],
                               [0, -1, 0, 0, 0]]),
        "bil_w": r(2, 5, 5), "theta": r(2, 2, 3),
        "grid": torch.rand(2, 4, 4, 2, generator=g) * 2 - 1,
        "tbc": r(6, 2, 4), "w_tbc": r(3, 4, 5), "b_tbc": r(5),
        "q": r(3, 1, 4), "in_w": r(12, 4), "in_b": r(12), "out_w": r(4, 4), "out_b": r(4),
        "logp": r(6, 2, 5).log_softmax(2), "targets": torch.tensor([[1, 2], [3, 3]]),
        "cols": r(1, 2 * 9, 9), "pos": torch.rand(4, 5, generator=g) + 0.1,
        "a3": r(2, 4, 6, 6).abs(), "lce_w": r(5, 5),
    }
    # fmt: on


# name -> a call on the inputs (``t.name``); run here in plain torch and on bob, compared.
CALLS = {
    "adaptive_avg_pool1d": lambda t: F.adaptive_avg_pool1d(t.x1, 3),
    "adaptive_avg_pool2d": lambda t: F.adaptive_avg_pool2d(t.x2, (3, 2)),
    "adaptive_avg_pool3d": lambda t: F.adaptive_avg_pool3d(t.x3, 2),
    "adaptive_max_pool1d": lambda t: F.adaptive_max_pool1d(t.x1, 3),
    "adaptive_max_pool1d_with_indices": lambda t: F.adaptive_max_pool1d_with_indices(t.x1, 3),
    "adaptive_max_pool2d": lambda t: F.adaptive_max_pool2d(t.x2, 3),
    "adaptive_max_pool2d_with_indices": lambda t: F.adaptive_max_pool2d_with_indices(t.x2, 3),
    "adaptive_max_pool3d": lambda t: F.adaptive_max_pool3d(t.x3, 2),
    "adaptive_max_pool3d_with_indices": lambda t: F.adaptive_max_pool3d_with_indices(t.x3, 2),
    "affine_grid": lambda t: F.affine_grid(t.theta, [2, 1, 4, 4], align_corners=False),
    "alpha_dropout": lambda t: F.alpha_dropout(t.v, 0.3, training=True),
    "avg_pool1d": lambda t: F.avg_pool1d(t.x1, 2),
    "avg_pool2d": lambda t: F.avg_pool2d(t.x2, 2),
    "avg_pool3d": lambda t: F.avg_pool3d(t.x3, 2),
    "batch_norm": lambda t: F.batch_norm(t.x1, t.rm, t.rv, t.c4, t.ones4, training=True),
    "bilinear": lambda t: F.bilinear(t.v, t.u, t.bil_w, t.b2),
    "binary_cross_entropy": lambda t: F.binary_cross_entropy(t.probs, t.bits),
    "binary_cross_entropy_with_logits": lambda t: F.binary_cross_entropy_with_logits(t.v, t.bits),
    "celu": lambda t: F.celu(t.v, alpha=0.5),
    "celu_": lambda t: F.celu_(t.v),
    "channel_shuffle": lambda t: F.channel_shuffle(t.x2, 2),
    "conv1d": lambda t: F.conv1d(t.x1, t.w1, t.b3, padding=1),
    "conv2d": lambda t: F.conv2d(t.x2, t.w2, t.b3, stride=2),
    "conv3d": lambda t: F.conv3d(t.x3, t.w3, t.b2),
    "conv_tbc": lambda t: F.conv_tbc(t.tbc, t.w_tbc, t.b_tbc, 1),
    "conv_transpose1d": lambda t: F.conv_transpose1d(t.x1, t.wt1, t.b3),
    "conv_transpose2d": lambda t: F.conv_transpose2d(t.x2, t.wt2, t.b3),
    "conv_transpose3d": lambda t: F.conv_transpose3d(t.x3, t.wt3, t.b2),
    "cosine_embedding_loss": lambda t: F.cosine_embedding_loss(t.v, t.u, t.signs),
    "cosine_similarity": lambda t: F.cosine_similarity(t.v, t.u),
    "cross_entropy": lambda t: F.cross_entropy(t.v, t.labels, label_smoothing=0.1),
    "ctc_loss": lambda t: F.ctc_loss(t.logp, t.targets, (6, 5), (2, 1)),
    "dropout": lambda t: F.dropout(t.v, 0.5),
    "dropout1d": lambda t: F.dropout1d(t.x1, 0.5),
    "dropout2d": lambda t: F.dropout2d(t.x2, 0.5),
    "dropout3d": lambda t: F.dropout3d(t.x3, 0.5),
    "elu": lambda t: F.elu(t.v),
    "elu_": lambda t: F.elu_(t.v),
    "embedding": lambda t: F.embedding(t.idx, t.emb),
    "embedding_bag": lambda t: F.embedding_bag(t.flat, t.emb, t.offsets),
    "feature_alpha_dropout": lambda t: F.feature_alpha_dropout(t.x2, 0.5, training=True),
    "fold": lambda t: F.fold(t.cols, (5, 5), 3),
    "fractional_max_pool2d": lambda t: F.fractional_max_pool2d(t.x2, 2, output_size=4),
    "fractional_max_pool2d_with_indices": lambda t: F.fractional_max_pool2d_with_indices(
        t.x2, 2, output_size=4
    ),
    "fractional_max_pool3d": lambda t: F.fractional_max_pool3d(t.x3, 2, output_size=2),
    "fractional_max_pool3d_with_indices": lambda t: F.fractional_max_pool3d_with_indices(
        t.x3, 2, output_size=2
    ),
    "gaussian_nll_loss": lambda t: F.gaussian_nll_loss(t.v, t.u, t.pos),
    "gelu": lambda t: F.gelu(t.v, approximate="tanh"),
    "glu": lambda t: F.glu(t.x1, dim=2),
    "grid_sample": lambda t: F.grid_sample(t.x2, t.grid, align_corners=False),
    "group_norm": lambda t: F.group_norm(t.x2, 2, t.c4, t.ones4),
    "gumbel_softmax": lambda t: F.gumbel_softmax(t.v, tau=0.5),
    "hardshrink": lambda t: F.hardshrink(t.v),
    "hardsigmoid": lambda t: F.hardsigmoid(t.v),
    "hardswish": lambda t: F.hardswish(t.v),
    "hardtanh": lambda t: F.hardtanh(t.v, -0.5, 0.5),
    "hardtanh_": lambda t: F.hardtanh_(t.v),
    "hinge_embedding_loss": lambda t: F.hinge_embedding_loss(t.v, t.bits * 2 - 1),
    "huber_loss": lambda t: F.huber_loss(t.v, t.u, delta=0.5),
    "instance_norm": lambda t: F.instance_norm(t.x2),
    "interpolate": lambda t: F.interpolate(t.x2, scale_factor=1.5, mode="bilinear"),
    "kl_div": lambda t: F.kl_div(t.v.log_softmax(1), t.probs, reduction="batchmean"),
    "l1_loss": lambda t: F.l1_loss(t.v, t.u),
    "layer_norm": lambda t: F.layer_norm(t.v, (5,), t.b5, t.b5),
    "leaky_relu": lambda t: F.leaky_relu(t.v, 0.2),
    "leaky_relu_": lambda t: F.leaky_relu_(t.v),
    "linear": lambda t: F.linear(t.v, t.w, t.c4),
    "linear_cross_entropy": lambda t: F.linear_cross_entropy(t.v, t.lce_w, t.labels),
    "local_response_norm": lambda t: F.local_response_norm(t.x2, 2),
    "log_softmax": lambda t: F.log_softmax(t.v, 1),
    "logsigmoid": lambda t: F.logsigmoid(t.v),
    "lp_pool1d": lambda t: F.lp_pool1d(t.x1, 2, 2),
    "lp_pool2d": lambda t: F.lp_pool2d(t.a3, 2, 2),
    "lp_pool3d": lambda t: F.lp_pool3d(t.x3.abs(), 2, 2),
    "margin_ranking_loss": lambda t: F.margin_ranking_loss(t.c4, t.ones4, t.signs),
    "max_pool1d": lambda t: F.max_pool1d(t.x1, 2),
    "max_pool1d_with_indices": lambda t: F.max_pool1d_with_indices(t.x1, 2),
    "max_pool2d": lambda t: F.max_pool2d(t.x2, 2),
    "max_pool2d_with_indices": lambda t: F.max_pool2d_with_indices(t.x2, 2),
    "max_pool3d": lambda t: F.max_pool3d(t.x3, 2),
    "max_pool3d_with_indices": lambda t: F.max_pool3d_with_indices(t.x3, 2),
    "max_unpool1d": lambda t: F.max_unpool1d(*F.max_pool1d(t.x1, 2, return_indices=True), 2),
    "max_unpool2d": lambda t: F.max_unpool2d(*F.max_pool2d(t.x2, 2, return_indices=True), 2),
    "max_unpool3d": lambda t: F.max_unpool3d(*F.max_pool3d(t.x3, 2, return_indices=True), 2),
    "mish": lambda t: F.mish(t.v),
    "mse_loss": lambda t: F.mse_loss(t.v, t.u),
    "multi_head_attention_forward": lambda t: F.multi_head_attention_forward(
        t.q, t.q, t.q, 4, 2, t.in_w, t.in_b, None, None, False, 0.0, t.out_w, t.out_b
    ),
    "multi_margin_loss": lambda t: F.multi_margin_loss(t.v, t.labels),
    "multilabel_margin_loss": lambda t: F.multilabel_margin_loss(t.v, t.multi),
    "multilabel_soft_margin_loss": lambda t: F.multilabel_soft_margin_loss(t.v, t.bits),
    "native_channel_shuffle": lambda t: F.native_channel_shuffle(t.x2, 2),
    "nll_loss": lambda t: F.nll_loss(t.v.log_softmax(1), t.labels),
    "normalize": lambda t: F.normalize(t.v, dim=1),
    "one_hot": lambda t: F.one_hot(t.ints, 4),
    "pad": lambda t: F.pad(t.x2, (1, 2, 0, 1), mode="reflect"),
    "pairwise_distance": lambda t: F.pairwise_distance(t.v, t.u),
    "pdist": lambda t: F.pdist(t.v),
    "pixel_shuffle": lambda t: F.pixel_shuffle(t.x2, 2),
    "pixel_unshuffle": lambda t: F.pixel_unshuffle(t.x2, 2),
    "poisson_nll_loss": lambda t: F.poisson_nll_loss(t.v, t.pos),
    "prelu": lambda t: F.prelu(t.x1, t.c4),
    "relu": lambda t: F.relu(t.v),
    "relu6": lambda t: F.relu6(t.v * 4),
    "relu_": lambda t: F.relu_(t.v),
    "rms_norm": lambda t: F.rms_norm(t.v, [5], t.b5),
    "rrelu": lambda t: F.rrelu(t.v, training=True),
    "rrelu_": lambda t: F.rrelu_(t.v, training=True),
    "scaled_dot_product_attention": lambda t: F.scaled_dot_product_attention(t.x2, t.x2, t.x2),
    "selu": lambda t: F.selu(t.v),
    "selu_": lambda t: F.selu_(t.v),
    "sigmoid": lambda t: F.sigmoid(t.v),
    "silu": lambda t: F.silu(t.v),
    "smooth_l1_loss": lambda t: F.smooth_l1_loss(t.v, t.u),
    "soft_margin_loss": lambda t: F.soft_margin_loss(t.c4, t.signs),
    "softmax": lambda t: F.softmax(t.v, 0),
    "softmin": lambda t: F.softmin(t.v, 1),
    "softplus": lambda t: F.softplus(t.v, beta=2),
    "softshrink": lambda t: F.softshrink(t.v),
    "softsign": lambda t: F.softsign(t.v),
    "tanh": lambda t: F.tanh(t.v),
    "tanhshrink": lambda t: F.tanhshrink(t.v),
    "threshold": lambda t: F.threshold(t.v, 0.1, 20.0),
    "threshold_": lambda t: F.threshold_(t.v, 0.1, 20.0),
    "triplet_margin_loss": lambda t: F.triplet_margin_loss(t.v, t.u, t.w),
    "triplet_margin_with_distance_loss": lambda t: F.triplet_margin_with_distance_loss(
        t.v, t.u, t.w
    ),
    "unfold": lambda t: F.unfold(t.x2, 3),
    "upsample": lambda t: F.upsample(t.x2, scale_factor=2),
    "upsample_bilinear": lambda t: F.upsample_bilinear(t.x2, scale_factor=2),
    "upsample_nearest": lambda t: F.upsample_nearest(t.x2, scale_factor=2),
}

FUNCTIONS = sorted(n for n in dir(F) if not n.startswith("_") and _is_function(getattr(F, n)))


def test_every_function_is_called_here_or_excluded_with_a_reason():
    excluded = {n for n in FUNCTIONS if f"F.{n}" in EXCLUDED}
    assert not excluded & set(CALLS), "an excluded function would be tested as allowed"
    missing = [n for n in FUNCTIONS if n not in CALLS and n not in excluded]
    assert not missing, f"neither run below nor excluded with a reason: {missing}"
    assert all(f"F.{n}" in OPS for n in CALLS), [n for n in CALLS if f"F.{n}" not in OPS]
    assert all(len(EXCLUDED[f"F.{n}"]) > 20 for n in excluded)


def _flat(result) -> list:
    return list(result) if isinstance(result, (tuple, list)) else [result]


@pytest.mark.parametrize("name", sorted(CALLS))
def test_a_functional_runs_on_a_worker_bit_for_bit(bob, name):
    local = inputs()
    remote = {k: v.send(bob) for k, v in inputs().items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (deprecated names: upsample, ...)
        torch.manual_seed(0)  # (random ones draw the same numbers here and on bob)
        want = _flat(CALLS[name](SimpleNamespace(**local)))
        torch.manual_seed(0)
        got = _flat(CALLS[name](SimpleNamespace(**remote)))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        if w is None:
            assert g is None
            continue
        assert sy.is_pointer(g), f"{name} did not run on bob"
        if any(g is p for p in remote.values()):  # in place: its input, checked below
            continue
        value = g.get()
        assert value.dtype == w.dtype and value.shape == w.shape
        assert torch.equal(value, w), f"F.{name} on bob differs from plain torch"
    # In-place functions changed bob's input exactly as they changed the local one.
    for k, v in local.items():
        assert torch.equal(remote[k].get(), v), k


def test_clip_grad_norm_runs_on_remote_parameters(bob):
    """It calls linalg_vector_norm and friends on each gradient, all on bob."""
    model = torch.nn.Linear(3, 2)
    copy = torch.nn.Linear(3, 2)
    copy.load_state_dict(model.state_dict())
    x = torch.randn(4, 3)
    for m, data in ((model, x), (copy.send(bob), x.send(bob))):
        m(data).pow(2).sum().backward()
    want = torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
    got = torch.nn.utils.clip_grad_norm_(copy.parameters(), 0.1)
    assert torch.equal(got.get(), want)
    copy.get()
    for p, q in zip(model.parameters(), copy.parameters()):
        assert torch.equal(p.grad, q.grad)
