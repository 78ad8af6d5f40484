"""The federated-averaging task that every system runs, defined once.

scikit-learn's digits (1,797 8x8 images), standardised, split into 4 clients by a
seeded shuffle. Every system starts from the same initial weights, each client sees
its examples in the same order in every round (a permutation seeded by round and
client), and the server averages weighted by example counts. So every system does
the same SGD steps and must end at the same loss (up to float rounding).

This file imports only torch and numpy, so Flower's own environment can import it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

SEED = 0
CLIENTS = 4
ROUNDS = 10
BATCH = 32
LR = 0.1


@dataclass(frozen=True)
class Config:
    """One experiment: which model, how many clients and rounds."""

    model: str = "linear"  # "linear" (logistic regression) or "mlp" (64-32-10)
    clients: int = CLIENTS
    rounds: int = ROUNDS
    batch: int = BATCH
    lr: float = LR
    seed: int = SEED


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """Digits as standardised float32 features and int64 labels (needs scikit-learn)."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    return x.astype(np.float32), y.astype(np.int64)


def split(x: np.ndarray, y: np.ndarray, cfg: Config) -> list[tuple[np.ndarray, np.ndarray]]:
    """The clients' shards: a seeded shuffle cut into ``cfg.clients`` nearly equal parts."""
    order = np.random.default_rng(cfg.seed).permutation(len(x))
    return [(x[part], y[part]) for part in np.array_split(order, cfg.clients)]


def make_model(cfg: Config) -> nn.Module:
    """The model, with weights fixed by the seed."""
    torch.manual_seed(cfg.seed)
    if cfg.model == "linear":
        return nn.Linear(64, 10)
    if cfg.model == "mlp":
        return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    raise ValueError(f"unknown model {cfg.model!r}")


def batch_order(n: int, rnd: int, client: int, cfg: Config) -> list[tuple[int, int, list[int]]]:
    """The mini-batches of one local epoch: (start, stop, indices) in a seeded order."""
    g = torch.Generator().manual_seed(cfg.seed * 100_000 + rnd * 1_000 + client)
    perm = torch.randperm(n, generator=g).tolist()
    return [(s, min(s + cfg.batch, n), perm[s : s + cfg.batch]) for s in range(0, n, cfg.batch)]


def total_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean cross-entropy of ``model`` on all the data (the number every system reports)."""
    with torch.no_grad():
        return float(nn.functional.cross_entropy(model(x), y))


def save_npz(path: str, cfg: Config) -> None:
    """Write the shards and the initial weights for a process that has no scikit-learn."""
    x, y = load_digits_arrays()
    arrays: dict[str, np.ndarray] = {"x": x, "y": y}
    for i, (cx, cy) in enumerate(split(x, y, cfg)):
        arrays[f"x{i}"], arrays[f"y{i}"] = cx, cy
    for i, p in enumerate(make_model(cfg).state_dict().values()):
        arrays[f"w{i}"] = p.numpy()
    np.savez(path, **arrays)
