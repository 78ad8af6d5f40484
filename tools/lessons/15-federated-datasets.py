# %% [markdown]
# # 15. Federated datasets
#
# **What you will learn**
#
# - how `dataset.federate((bob, alice))` splits a dataset and sends each part to its owner;
# - how a `FederatedDataLoader` gives batches that are made *on* the workers, and why a
#   batch costs two messages and never brings the data to you;
# - how to train with one optimizer per worker (`Optims`), the way PySyft's MNIST
#   tutorial does.
#
# Until now we sent tensors one by one and wrote our own loops over the workers. PySyft
# 0.2 (and fedlab) give the same tools as PyTorch's `Dataset` and `DataLoader`, for data
# spread over several workers.

# %%
import time
from collections import Counter

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn, optim

import fedlab as sy
from fedlab.federated.digits import digits_as_mnist
from fedlab.federated.floptimizer import Optims

torch.set_num_threads(1)  # small tensors: one thread is faster, and results repeat exactly
hook = sy.TorchHook(torch)
bob = sy.VirtualWorker(hook, id="bob")
alice = sy.VirtualWorker(hook, id="alice")

# %% [markdown]
# ## The data: MNIST's stand-in
#
# PySyft's tutorials train on MNIST, 60,000 handwritten digits of 28x28 pixels, which
# they download. The course runs offline, so fedlab gives a stand-in:
# `digits_as_mnist()` takes scikit-learn's 1,797 small digits (8x8 pixels), scales each
# up to MNIST's size and normalises the pixels exactly as the tutorials' torchvision
# transform does. A model written for MNIST runs on it unchanged. (It is a stand-in: the
# digits are fewer and blurrier, and the accuracies are not MNIST's.)

# %%
train = digits_as_mnist(train=True)
test = digits_as_mnist(train=False)
print(len(train), "training digits,", len(test), "test digits")
print("inputs:", train.data.dtype, tuple(train.data.shape), " targets:", tuple(train.targets.shape))

fig, axes = plt.subplots(1, 8, figsize=(8, 1.3))
for ax, (image, label) in zip(axes, (train[i] for i in range(8))):
    ax.imshow(image[0].numpy(), cmap="gray_r")
    ax.set(title=str(label.item()), xticks=[], yticks=[])
plt.show()

# %% [markdown]
# `train` is a `sy.BaseDataset`: a torch `Dataset` made of two tensors, the inputs
# (`train.data`) and the targets (`train.targets`). `train[i]` is the pair
# `(image, label)`, as for any torch dataset. You can make one from your own tensors:
# `sy.BaseDataset(inputs, targets)`.
#
# ## `federate`: give each worker its part
#
# `.federate(workers)` works on any torch `Dataset`. It cuts the examples, in order,
# into one part per worker (here 1,500 / 2 = 750 each), sends each part's inputs and
# targets to its worker, and returns a `FederatedDataset`: for each worker, a
# `BaseDataset` of pointers.

# %%
federated_train = train.federate((bob, alice))
print(federated_train)
print(federated_train.workers)
print(federated_train["bob"])
print(bob, alice)

# %% [markdown]
# Each worker now holds two tensors: 750 images and their 750 labels. (In a real
# federation the data would have been on the workers from the start; `federate` is how
# we play that on one machine.)
#
# ## The loader: batches made where the data are
#
# A `sy.FederatedDataLoader` is the federated `DataLoader`. It gives pairs
# `(data, target)` of pointers: a batch of 64 images and their labels, on bob, then on
# alice. Open the panel and keep an eye on it.

# %%
loader = sy.FederatedDataLoader(federated_train, batch_size=64, shuffle=True)
print(len(loader), "batches per epoch: 12 from bob's 750 digits, then 12 from alice's")
panel = sy.watch(bob, alice)
panel

# %% [markdown]
# Now take six batches, slowly enough to watch: each new batch appears on its worker as
# two new tensors, and the previous batch disappears as soon as the loop moves on (its
# pointers died, so the worker deleted its tensors, as in lesson 7).

# %%
for i, (data, target) in enumerate(loader):
    print(f"batch {i}: {len(data)} images, {len(target)} labels on {data.location.id}: {data}")
    panel.refresh()  # paint the panel now (by itself, it repaints when something changes)
    time.sleep(0.5)  # (only to give you time to see it)
    if i == 5:
        break
print(bob)

# %% [markdown]
# Bob holds four objects: his two data tensors and the last batch, which `data` and
# `target` still point to after the loop. Deleting them frees it:

# %%
del data, target
print(bob)

# %% [markdown]
# ## What a batch costs: two messages, and no data for you
#
# How is a batch made? The loader picks the batch's example numbers here (shuffled by
# torch, from your seed), and asks the worker to index its tensors with them. Trace one
# batch, from its making to its deletion:

# %%
torch.manual_seed(0)  # (the same shuffle, and the same message sizes, each time)
batches = iter(loader)
with sy.trace() as t:
    data, target = next(batches)
    del data, target
print(t)

# %% [markdown]
# Two operations, `__getitem__` on bob's images and on his labels, each carrying the 64
# example numbers; bob answers with where he stored the results. Then the two deletes,
# when the batch dies. No image travelled: the batch was made on bob. A whole epoch:

# %%
with sy.trace() as t:
    n_batches = sum(1 for batch in loader)  # each batch dies as soon as it is counted
print(n_batches, "batches:", dict(Counter(message.kind for message in t)))
print("messages to or from me:", all("me" in (m.sender, m.receiver) for m in t))
print("every message is smaller than one image:", max(m.nbytes for m in t) < 28 * 28 * 4)
print(bob, alice)

# %% [markdown]
# 24 batches, 48 operations and 48 deletes, whatever the batch size: the examples are
# indexed all at once, in one operation per tensor. (PySyft 0.2 asked for each example
# separately, its input and its target, then stacked them: 130 messages for a batch of
# 64.) After the epoch, each worker holds only its data again.
#
# With `shuffle=True`, each epoch reshuffles each worker's examples, drawing from
# torch's random generator the way `torch.utils.data.DataLoader` does: under the same
# `torch.manual_seed`, a worker's batches are the ones a `DataLoader` over its part
# would give.
#
# ## Training: the model visits the batches
#
# Training looks like ordinary PyTorch with two new lines, as in PySyft's MNIST
# tutorial: send the model to where the batch is, and get it back after the step.
#
# One catch first. Adam keeps running averages of the gradients, a *state*, next to
# each parameter: on bob, after a step there. When the model moves on to alice, bob's
# state cannot follow it, and fedlab refuses to step:

# %%
torch.manual_seed(0)
model = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 64), nn.ReLU(), nn.Linear(64, 10))
one_adam = optim.Adam(model.parameters(), lr=1e-3)
try:
    for data, target in loader:
        model.send(data.location)
        one_adam.zero_grad()
        F.cross_entropy(model(data), target).backward()
        one_adam.step()
        model.get()
except sy.exceptions.StatefulOptimizerError as error:
    print("StatefulOptimizerError:", error)
    model.get()  # the error came on alice, before model.get()
del one_adam, data, target

# %% [markdown]
# PySyft's answer is `Optims` (from `syft.federated.floptimizer`, here
# `fedlab.federated.floptimizer`): one copy of the optimizer per worker, all updating
# the same model, each with its own state on its own worker. Ask it for the worker's
# optimizer at each batch:

# %%
torch.manual_seed(0)
model = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 64), nn.ReLU(), nn.Linear(64, 10))
optims = Optims(federated_train.workers, optim=optim.Adam(model.parameters(), lr=1e-3))


def train_one_epoch():
    """One pass over every worker's batches; returns the mean loss."""
    total = 0.0
    for data, target in loader:
        model.send(data.location)  # NEW: the model goes to the data
        optimizer = optims.get_optim(data.location.id)  # NEW: that worker's optimizer
        optimizer.zero_grad()
        loss = F.cross_entropy(model(data), target)
        loss.backward()
        optimizer.step()
        model.get()  # NEW: the model comes back
        total += loss.get().item()
    return total / len(loader)


def accuracy():
    """The share of the test digits (here, on me) that the model gets right."""
    with torch.no_grad():
        return (model(test.data).argmax(1) == test.targets).float().mean().item()


for epoch in range(1, 4):
    print(f"epoch {epoch}: mean loss {train_one_epoch():.4f}, test accuracy {accuracy():.1%}")
print(bob, alice)

# %% [markdown]
# The model learned the digits, and only the model and the losses travelled. Each
# worker holds ten objects: its two tensors of data, and its Adam's state, two running
# averages for each of the model's four parameter tensors, held by its optimizer:

# %%
adam_on_bob = optims.get_optim("bob")
print(
    {
        tuple(state["exp_avg"].shape): state["exp_avg"].location.id
        for state in adam_on_bob.state.values()
    }
)

# %% [markdown]
# ## Transforms run here, before federating
#
# A torch dataset may *transform* each example as it is read (torchvision's
# `transform=`). `sy.BaseDataset(data, targets, transform=t)` does too, and when you
# federate it, each example goes through `t` here, before it is sent. A worker cannot
# run `t` later: that would mean sending it code, and a worker only runs the torch
# operations on its allowlist. So a transform on data that are already on a worker is
# refused, with the fix:

# %% tags=["raises-exception"]
sy.BaseDataset(federated_train["bob"].data, federated_train["bob"].targets, transform=torch.flip)

# %% [markdown]
# ## One batch from every worker at each step
#
# With `iter_per_worker=True` the loader gives, at each step, a dictionary with one
# batch per worker (until the first worker runs out). Use it when the workers train in
# step with each other, as in federated averaging (lesson 12):

# %%
per_worker = sy.FederatedDataLoader(federated_train, batch_size=64, iter_per_worker=True)
step = next(iter(per_worker))
for worker, (data, target) in step.items():
    print(worker.id, tuple(data.shape), tuple(target.shape))
print(len(per_worker), "steps per epoch")
del step, data, target

# %% [markdown]
# ## Evaluating on federated data
#
# ### Your turn
#
# The test digits belong to three hospitals, say: bob, alice and a new worker, carol.
# Measure the model's accuracy on them *without the digits leaving the workers*: only
# a count of correct answers may come back, one per batch.
#
# 1. Create carol, federate `test` over bob, alice and carol, and make a
#    `FederatedDataLoader` called `test_loader` with batches of 50, no shuffling, and
#    `drop_last=True` (every batch then has exactly 50 digits).
# 2. For each batch, send the model there, count the correct predictions on the worker
#    (`argmax`, `eq`, `sum`), get the count back, and get the model back.
# 3. Store the total in `correct`.
#
# Try it first; the check below tells you how you are doing, and the solution is
# folded under it.

# %%
test_loader = ...  # your loader
correct = ...  # the number of correct predictions, added up over the batches

# %%
from fedlab.viz import practice

practice.check("federated-evaluation")

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# carol = sy.VirtualWorker(hook, id="carol")
# federated_test = test.federate((bob, alice, carol))
# test_loader = sy.FederatedDataLoader(federated_test, batch_size=50, drop_last=True)
#
# correct = 0
# with torch.no_grad():
#     for data, target in test_loader:
#         model.send(data.location)
#         count = model(data).argmax(1).eq(target).sum()
#         correct += count.get().item()
#         model.get()
# del data, target, count
# ```
#
# Each worker has 99 test digits, so `drop_last=True` keeps one batch of 50 per worker.
# What came back: three counts, and the model.
# </details>

# %% [markdown]
# ## Sent plans: the training step stays on the worker
#
# Each training step above costs a message per operation. A plan (lesson 14) makes it
# one; a plan *sent* to a worker (`plan.send(bob)`, as in PySyft) stays there with its
# state, and each call then carries only references. Here the model's step is a plan
# class: its `forward` is traced once, and its parameters are its state.


# %%
class Classifier(sy.Plan):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(28 * 28, 10)

    def forward(self, x):
        return F.log_softmax(self.fc(x.view(x.shape[0], -1)), dim=1)


classifier = Classifier()
data, target = next(iter(loader))
classifier.build(data)  # traced on zeros shaped like bob's batch
on_bob = classifier.send(bob)  # the plan and its parameters now live on bob
on_bob

# %% [markdown]
# Calling `on_bob` with a batch that lives on bob is one message, whatever the plan
# does; the answer is a pointer, like any operation's:

# %%
with sy.trace() as t:
    scores = on_bob(data)
print(t)
print("the same as running it here:", torch.equal(scores.get(), classifier(data.get())))
del data, target, on_bob

# %% [markdown]
# `print(classifier.code)` shows the operations bob runs for each call. A sent plan is
# freed with its pointer, parameters included; a plan made with
# `sy.func2plan(args_shape=...)` may take inputs of other sizes, each traced once.

# %% [markdown]
# ## Summary
#
# - `dataset.federate((bob, alice))` cuts a dataset into one part per worker and sends
#   each part to its owner; a `FederatedDataset` knows which worker holds which.
# - A `FederatedDataLoader` makes each batch on its worker with two indexing operations;
#   the examples never come to you, and a batch is freed when the loop moves on.
# - The model visits the batches, with one optimizer per worker if it keeps state
#   (`Optims`); a plan sent to the worker makes each step one message.
#
# ## Check yourself
#
# **1.** A worker holds 100 examples. How many messages does an epoch with
# `batch_size=10` cost to make and free the batches? And with `batch_size=50`?
#
# <details><summary>Answer</summary>
#
# 10 batches of two operations and two deletes: 40 requests (each with its reply). With
# batches of 50: 2 batches, 8 requests. The number of examples in a batch does not change
# the number of messages.
#
# </details>
#
# **2.** Why can't a `FederatedDataLoader` apply a transform to each batch on the worker?
#
# <details><summary>Answer</summary>
#
# The transform is Python code, and workers only run the torch operations on their
# allowlist: fedlab never sends code. Transform the data before federating them.
#
# </details>
#
# **3.** Why does one `optim.SGD(model.parameters(), lr=0.1)` work for all the workers,
# but one `optim.Adam` does not?
#
# <details><summary>Answer</summary>
#
# Plain SGD keeps no state: a step only reads the gradient next to each parameter. Adam
# keeps running averages, stored where the parameter was when it stepped; they cannot
# follow the model to another worker, so each worker needs its own optimizer (`Optims`).
#
# </details>
#
# **Graded exercise:** [exercise 3, federated learning](../exercises/03-federated.ipynb)
# trains a model on several workers' data.
#
# ## What to try next
#
# - Train with `iter_per_worker=True`, averaging the workers' models after each step
#   (lesson 12's `aggregate`). Is it better or worse than visiting the workers in turn?
# - Federate the training digits over four workers. How many digits does each get, and
#   how many batches does an epoch have?
# - Send `classifier` to alice too, and call both pointers on their workers' batches.
# - Back to the [course index](00-index.ipynb).
