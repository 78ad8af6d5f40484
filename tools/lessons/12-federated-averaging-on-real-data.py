# %% [markdown]
# # 12. Federated averaging on real data
#
# **What you will learn**
#
# - how to split a real dataset (handwritten digits) across several workers, evenly
#   (IID) and unevenly (non-IID);
# - the federated averaging algorithm (FedAvg): local training on every worker, then a
#   weighted average of the models;
# - how its accuracy compares with centralised training, round by round, and why the
#   way the data is split matters.

# %%
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn, optim

import fedlab as sy
from fedlab.federated.fedavg import aggregate
from fedlab.viz.lesson_figures import curves

# Small tensors: one thread is faster than several that wait for each other.
torch.set_num_threads(1)
hook = sy.TorchHook(torch)
workers = [sy.VirtualWorker(hook, id=name) for name in ["bob", "alice", "carol", "dave"]]

# %% [markdown]
# ## The data
#
# scikit-learn ships a small dataset of 1797 handwritten digits, each an 8x8 grayscale
# image (no download needed). We scale the pixels to [0, 1] and keep 400 images aside,
# chosen at random with a fixed seed, to test the models.

# %%
digits = load_digits()
images = torch.tensor(digits.data, dtype=torch.float32) / 16  # 64 pixels per image
labels = torch.tensor(digits.target)

order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
train_x, train_y = images[order[400:]], labels[order[400:]]
test_x, test_y = images[order[:400]], labels[order[:400]]

fig, axes = plt.subplots(1, 8, figsize=(8, 1.3))
for ax, image, label in zip(axes, train_x, train_y):
    ax.imshow(image.reshape(8, 8), cmap="gray_r")
    ax.set(title=str(label.item()), xticks=[], yticks=[])
plt.show()
print(f"{len(train_y)} training images, {len(test_y)} test images")

# %% [markdown]
# ## Two ways to split the training set
#
# In the **IID** split ("independent and identically distributed"), every worker gets a
# random sample of the images, so each sees every digit in about the same proportions.
# We still give them different amounts of data (40%, 30%, 20%, 10%), as real workers
# would have.
#
# In the **non-IID** split, each worker holds only some digits: bob has 0-2, alice 3-5,
# carol 6-7 and dave 8-9. Think of post offices in different districts, or phones whose
# owners write differently. This is the usual situation in federated learning, and the
# harder one.

# %%
sizes = [int(f * len(train_y)) for f in (0.4, 0.3, 0.2)]
sizes.append(len(train_y) - sum(sizes))
iid_split = list(torch.arange(len(train_y)).split(sizes))

digit_groups = [(0, 1, 2), (3, 4, 5), (6, 7), (8, 9)]
non_iid_split = [torch.isin(train_y, torch.tensor(g)).nonzero().flatten() for g in digit_groups]

fig, axes = plt.subplots(1, 2, figsize=(9, 2.4))
for ax, (title, split) in zip(axes, [("IID", iid_split), ("non-IID", non_iid_split)]):
    counts = torch.stack([train_y[rows].bincount(minlength=10) for rows in split])
    ax.imshow(counts, cmap="Blues")
    ax.set(title=f"{title}: images of each digit", xlabel="digit", xticks=range(10))
    ax.set_yticks(range(len(workers)), [w.id for w in workers])
plt.show()
for title, split in [("IID", iid_split), ("non-IID", non_iid_split)]:
    print(f"{title:8}", {w.id: len(rows) for w, rows in zip(workers, split)})


# %% [markdown]
# ## The model and the centralised baseline
#
# A linear classifier (64 pixels in, 10 scores out) trained with plain gradient descent
# on the cross-entropy loss. As a baseline, we train it the centralised way, on all the
# training images at once, and measure its accuracy on the test images after every 5
# steps. We call 5 steps a *round*, to compare with FedAvg below.


# %%
def accuracy(model):
    """The fraction of test images whose digit the model predicts correctly."""
    with torch.no_grad():
        return (model(test_x).argmax(dim=1) == test_y).float().mean().item()


def new_model():
    """The same starting weights every time (fixed seed)."""
    torch.manual_seed(0)
    return nn.Linear(64, 10)


ROUNDS, STEPS, LR = 10, 5, 0.5

model = new_model()
opt = optim.SGD(model.parameters(), lr=LR)
central = []
for _ in range(ROUNDS):
    for _ in range(STEPS):
        opt.zero_grad()
        F.cross_entropy(model(train_x), train_y).backward()
        opt.step()
    central.append(accuracy(model))
print("centralised accuracy per round:", [round(a, 3) for a in central])

# %% [markdown]
# ## Federated averaging
#
# One round of FedAvg:
#
# 1. the server sends a copy of the current model to every worker;
# 2. each worker trains its copy on its own data for a few steps (here 5);
# 3. the trained copies come back and the server averages them, **weighting each by
#    the number of examples it was trained on**, so a worker with 4 times more data
#    counts 4 times more;
# 4. the average becomes the new model.
#
# The weighted average is what `fedlab.federated.fedavg.aggregate` computes from a list of
# `(parameters, number_of_examples)` pairs. A tiny example with two "models" of one
# number each:

# %%
aggregate([([torch.tensor(1.0)], 30), ([torch.tensor(2.0)], 10)])


# %% [markdown]
# `(1.0 * 30 + 2.0 * 10) / 40 = 1.25`.
#
# ### Your turn
#
# Write `weighted_mean` yourself: it takes the same list of `(parameters,
# number_of_examples)` pairs, where `parameters` is a list of tensors (one per model
# parameter), and returns the list of weighted averages, one tensor per parameter.


# %%
def weighted_mean(results):
    """The average of each parameter over the models, weighted by their numbers of examples."""
    ...


# %%
from fedlab.viz import practice

practice.check("weighted-mean")


# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def weighted_mean(results):
#     """The average of each parameter over the models, weighted by their numbers of examples."""
#     total = sum(n for _, n in results)
#     averages = []
#     for k in range(len(results[0][0])):
#         averages.append(sum(params[k] * n for params, n in results) / total)
#     return averages
# ```
#
# </details>
#
# Now the whole algorithm. The images go to the
# workers once, at the start; afterwards only models travel.


# %%
def train_locally(model, images, labels):
    """Train a copy of ``model`` where the data is; return it, back here."""
    local = model.copy().send(images.location)
    opt = optim.SGD(local.parameters(), lr=LR)  # one optimizer per worker and round
    for _ in range(STEPS):
        opt.zero_grad()
        F.cross_entropy(local(images), labels).backward()
        opt.step()
    return local.get()


def send_shards(split):
    """Send each worker its part of the training set (once, before training)."""
    return [
        (train_x[rows].send(w), train_y[rows].send(w), len(rows)) for w, rows in zip(workers, split)
    ]


def fedavg_round(model, shards):
    """One round: train a copy on every worker, load their weighted average into ``model``."""
    results = []
    for images, labels, n in shards:
        local = train_locally(model, images, labels)
        results.append(([p.detach() for p in local.parameters()], n))
    with torch.no_grad():
        for p, new in zip(model.parameters(), aggregate(results)):
            p.copy_(new)


def fedavg(split):
    """Run FedAvg with the training set split as given; return accuracy per round."""
    shards = send_shards(split)
    model = new_model()
    history = []
    for _ in range(ROUNDS):
        fedavg_round(model, shards)
        history.append(accuracy(model))
    return history


iid = fedavg(iid_split)
non_iid = fedavg(non_iid_split)
print("FedAvg, IID:    ", [round(a, 3) for a in iid])
print("FedAvg, non-IID:", [round(a, 3) for a in non_iid])

# %%
curves(
    {"centralised": central, "FedAvg, IID split": iid, "FedAvg, non-IID split": non_iid},
    x=range(1, ROUNDS + 1),
    title="Handwritten digits: centralised vs federated",
    xlabel="round (5 gradient steps)",
    ylabel="test accuracy",
    ylim=(0, 1),
)

# %% [markdown]
# With the IID split, FedAvg follows centralised training closely (the dashed line on the
# thick one): every worker's data looks like the whole dataset, so every local model
# moves in about the same direction as the central one would. With the non-IID split it
# starts lower and catches up more slowly: bob's copy only ever sees 0, 1 and 2, so his
# local training pulls the model towards "everything is a 0, 1 or 2", alice's towards 3,
# 4 or 5, and the average of these tugs is a weaker step. This *client drift* grows with
# the number of local steps, and much research on federated learning is about reducing it.
#
# ## One local step is centralised training
#
# Likeness of the data is only half of the story. With **one** full-batch step per round,
# FedAvg *is* centralised gradient descent, whatever the split. Each worker's step is
# `w - lr * g_k`, with `g_k` the gradient of the mean loss on its `n_k` examples; the
# weighted average is `w - lr * sum(n_k * g_k) / n`, and `sum(n_k * g_k) / n` is exactly
# the gradient of the mean loss on all `n` examples. This special case is called
# *FedSGD*. Check it, on the non-IID split:

# %%
STEPS = 1
fedsgd = new_model()
fedavg_round(fedsgd, send_shards(non_iid_split))

central_step = new_model()
opt = optim.SGD(central_step.parameters(), lr=LR)
F.cross_entropy(central_step(train_x), train_y).backward()
opt.step()
pairs = zip(fedsgd.parameters(), central_step.parameters())
gap = max((p - q).abs().max().item() for p, q in pairs)
print(f"largest difference between the two models: {gap:.1e}")
STEPS = 5

# %% [markdown]
# Equal up to float rounding (the sums are added in another order). With several local
# steps, each worker follows its own data's gradient for a while before the average,
# and that is where the split starts to matter.
#
# ## What travelled
#
# Once the images are on the workers, a round sends only models. Trace one round and
# keep the messages that carried values:

# %%
shards = send_shards(iid_split)
model = new_model()
with sy.trace() as t:
    fedavg_round(model, shards)
for w in workers:
    sent = ", ".join(m.summary for m in t.tensors() if m.receiver == w.id)
    back = ", ".join(m.summary for m in t.tensors() if m.sender == w.id)
    print(f"me -> {w.id:5}: {sent:28} {w.id:5} -> me: {back}")
del shards

# %% [markdown]
# To each worker the model's weight (`float32[10, 64]`) and bias (`float32[10]`); from
# each, the trained weight and bias. Not one image. And nothing was left behind: the
# pointers to the images lived inside `fedavg` (and in `shards`, now deleted), so the
# workers freed the images too.

# %%
print(*workers, sep="\n")

# %% [markdown]
# One thing has not changed since lesson 8: the server receives every worker's trained
# model before averaging. [Lesson 11](11-federated-learning-with-a-trusted-aggregator.ipynb)
# shows how a trusted aggregator keeps the individual models away from the server.
#
# ## Summary
#
# - FedAvg: every worker trains a copy; the server averages them weighted by examples.
# - With one full-batch local step it is exactly centralised gradient descent (FedSGD).
# - With several local steps, non-IID data makes the copies drift apart and slows learning.
#
# ## Check yourself
#
# **1.** Why weight each model by its number of examples?
#
# <details><summary>Answer</summary>
#
# So that every *example* counts the same, as in centralised training; with a plain
# mean, each of dave's examples would count four times as much as each of bob's.
#
# </details>
#
# **2.** Why does the non-IID split hurt more with 20 local steps than with 1?
#
# <details><summary>Answer</summary>
#
# With one step the average is exactly the central step. Each further local step
# follows only the worker's own digits, so the copies drift apart before they are
# averaged.
#
# </details>
#
# **Graded exercise:** [exercise 3, federated learning](../exercises/03-federated.ipynb)
# trains and averages on several workers.
#
# ## What to try next
#
# - Set `STEPS = 20`. Does the non-IID split suffer more or less?
# - Replace the weights `n` by 1 in `fedavg` (a plain mean). How much does each curve
#   change? Look at the number of images per worker printed above.
# - Give dave only digit 9 and carol 6, 7 and 8. How does the non-IID curve change?
# - Go on to [lesson 13](13-federated-learning-on-worker-processes.ipynb): the same
#   ideas with workers in separate processes.
