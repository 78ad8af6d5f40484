# %% [markdown]
# # 11. Federated learning with a trusted aggregator
#
# **What you will learn**
#
# - how bob and alice each train their own copy of the model, on their own data;
# - how the trained copies `move` to a third worker that everyone trusts, which
#   averages them, so that we, the server, only ever receive the average;
# - how to check with a trace that no individual model reached us;
# - what this protects, and what it still does not.
#
# This is the project that opens the original course's third section, *Securing
# Federated Learning*. It uses the chain operations of lesson 10 to fix the shortcoming
# found in lesson 8: there, the server saw every worker's trained model.

# %%
import torch
from torch import nn, optim

import fedlab as sy

hook = sy.TorchHook(torch)
bob = sy.VirtualWorker(hook, id="bob")
alice = sy.VirtualWorker(hook, id="alice")
secure_worker = sy.VirtualWorker(hook, id="secure_worker")
bob.add_workers([alice, secure_worker])  # the workers know each other (the course's lines)
alice.add_workers([bob, secure_worker])
secure_worker.add_workers([alice, bob])
sy.watch(bob, alice, secure_worker, side=True)

# %% [markdown]
# `secure_worker` is a party that bob and alice both trust (a neutral organisation, or
# a secure enclave); we, the server, are not trusted with individual models. Keep the
# panel in sight: the models will appear on bob and alice, then on the secure worker.
#
# ## The data and the model
#
# The course's toy dataset: the target is the *first* input. Bob holds the first two
# examples, alice the last two. A linear model, with a fixed seed so that every number
# below is the same each time the lesson runs.

# %%
data = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1.0]])
target = torch.tensor([[0], [0], [1], [1.0]])

bobs_data, bobs_target = data[0:2].send(bob), target[0:2].send(bob)
alices_data, alices_target = data[2:].send(alice), target[2:].send(alice)

torch.manual_seed(0)
model = nn.Linear(2, 1)

# %% [markdown]
# ## Each worker trains its own copy
#
# `model.copy()` makes a new model with the same weights, and `.send(bob)` puts it on
# bob. Each copy gets its own optimizer, because the two are trained separately (and,
# unlike lesson 8, at the same time rather than in turn).

# %%
bobs_model = model.copy().send(bob)
alices_model = model.copy().send(alice)
bobs_opt = optim.SGD(params=bobs_model.parameters(), lr=0.1)
alices_opt = optim.SGD(params=alices_model.parameters(), lr=0.1)

for i in range(10):
    bobs_opt.zero_grad()
    bobs_loss = ((bobs_model(bobs_data) - bobs_target) ** 2).sum()
    bobs_loss.backward()
    bobs_opt.step()
    bobs_loss = bobs_loss.get()

    alices_opt.zero_grad()
    alices_loss = ((alices_model(alices_data) - alices_target) ** 2).sum()
    alices_loss.backward()
    alices_opt.step()
    alices_loss = alices_loss.get()
print(f"after 10 steps: bob's loss {bobs_loss.item():.4f}, alice's loss {alices_loss.item():.4f}")

# %% [markdown]
# Two models now, each trained on half of the data, each still on its owner's machine.
#
# ### Your turn: the course's project
#
# Average the two models on `secure_worker`, so that only the average reaches you, and
# load it into `model`. Three steps: move both models to the secure worker (straight
# from bob and from alice: lesson 10); compute the average of the two weights and of
# the two biases there, with ordinary arithmetic on the pointers; `get` only the
# averages and copy them into `model`'s parameters (under `torch.no_grad()`, with
# `set_` or `copy_`). Do it inside the `with` block, whose trace the check reads.

# %%
with sy.trace() as averaging:
    ...

# %%
from fedlab.viz import practice

practice.check("average-on-secure-worker")

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# with sy.trace() as averaging:
#     alices_model.move(secure_worker)
#     bobs_model.move(secure_worker)
#     with torch.no_grad():
#         model.weight.set_(((alices_model.weight.data + bobs_model.weight.data) / 2).get())
#         model.bias.set_(((alices_model.bias.data + bobs_model.bias.data) / 2).get())
# ```
#
# </details>
#
# ## The average, on the secure worker
#
# Here is the course's code for those steps, traced. (If your version already moved the
# models, moving them again to where they are does nothing, and the average is the same.)

# %%
with sy.trace() as t:
    alices_model.move(secure_worker)
    bobs_model.move(secure_worker)
    with torch.no_grad():
        model.weight.set_(((alices_model.weight.data + bobs_model.weight.data) / 2).get())
        model.bias.set_(((alices_model.bias.data + bobs_model.bias.data) / 2).get())
print(model.weight.data, model.bias.data)
print(secure_worker)

# %% [markdown]
# The addition and the division ran on `secure_worker`, where both models were; only the
# two results travelled to us. Which messages carried values? `t.tensors()` keeps just
# those:

# %%
t.tensors()

# %% [markdown]
# Alice's weight and bias went to the secure worker (the course moves alice's model
# first), then bob's; the last two messages bring the averaged weight and bias to `me`.
# No individual model reached us. As a sequence diagram:

# %%
t.tensors().draw()

# %% [markdown]
# ## Several rounds
#
# That was one *round*. The course repeats it: every round, bob and alice get a copy of
# the averaged model, train it for 5 steps on their own data, and the secure worker
# averages the results again. We print each worker's last loss on its own half of the
# data. (A loss is one number, and it does say a little about the data: a real system
# would decide whether to share it.)

# %%
iterations = 10
worker_iters = 5

for a_iter in range(iterations):
    bobs_model = model.copy().send(bob)
    alices_model = model.copy().send(alice)
    bobs_opt = optim.SGD(params=bobs_model.parameters(), lr=0.1)
    alices_opt = optim.SGD(params=alices_model.parameters(), lr=0.1)

    for wi in range(worker_iters):
        bobs_opt.zero_grad()
        bobs_loss = ((bobs_model(bobs_data) - bobs_target) ** 2).sum()
        bobs_loss.backward()
        bobs_opt.step()
        bobs_loss = bobs_loss.get()

        alices_opt.zero_grad()
        alices_loss = ((alices_model(alices_data) - alices_target) ** 2).sum()
        alices_loss.backward()
        alices_opt.step()
        alices_loss = alices_loss.get()

    alices_model.move(secure_worker)
    bobs_model.move(secure_worker)
    with torch.no_grad():
        model.weight.set_(((alices_model.weight.data + bobs_model.weight.data) / 2).get())
        model.bias.set_(((alices_model.bias.data + bobs_model.bias.data) / 2).get())

    print(f"round {a_iter + 1:2}: bob {bobs_loss.item():.4f}  alice {alices_loss.item():.4f}")

# %% [markdown]
# Each loss is measured on one worker's half of the data, by a copy trained on that half
# only, just before averaging. Both fall at first; after a few rounds bob's stops
# falling and creeps up a little while alice's keeps falling: every round the average
# is pulled towards both halves, and a copy that fits its own half well can lose a
# little to the other. These losses say how each copy fits its own half, not how good
# the average is. So the course ends with the check that matters: the averaged
# model, here, on all four examples. (We can run it because this is a toy: in a real
# system the server would hold test data of its own, never the workers' data.)

# %%
with torch.no_grad():
    preds = model(data)
    loss = ((preds - target) ** 2).sum()
print(preds)
print(target)
print(loss)

# %% [markdown]
# The predictions approach the targets, and we never held a worker's data or a worker's
# trained model. The workers hold their data, and the secure worker the last round's
# two models (the pointers `bobs_model` and `alices_model` still lead to them):

# %%
print(bob, alice, secure_worker, sep="\n")

# %% [markdown]
# ## What this does not protect
#
# We moved the trust from the server to `secure_worker`, who sees every individual model.
# If it cannot be trusted, or if it colludes with the server, nothing is gained. *Secure
# aggregation* removes the need for a trusted party: each worker splits its model into
# random-looking shares so that no one, not even the aggregator, sees an individual
# model, yet the shares still add up to the average. A later lesson builds it.
#
# ## Summary
#
# - Each worker trains its own copy of the model on its own data.
# - The copies `move` to a trusted worker, which averages them; only the average comes back.
# - A trace shows it: no message to `me` carried an individual model.
#
# ## Check yourself
#
# **1.** Why `move` the models to `secure_worker` instead of `get` and `send`?
#
# <details><summary>Answer</summary>
#
# With `get` the individual models would pass through us, the server, which is exactly
# what we must not see. `move` sends them from bob and alice straight to the secure
# worker.
#
# </details>
#
# **2.** The average is computed with `(alices_model.weight.data + bobs_model.weight.data) / 2`.
# Where does that run, and why can it?
#
# <details><summary>Answer</summary>
#
# On `secure_worker`: both pointers lead there, so the operations are sent to it and
# run on its copies. Only `.get()` brings a result here.
#
# </details>
#
# **3.** Who could still learn about bob's data from his model?
#
# <details><summary>Answer</summary>
#
# The secure worker, which sees both models; and, from the average, anyone who also
# knows alice's model. Secure aggregation removes the first.
#
# </details>
#
# **Graded exercise:** [exercise 6, the trusted aggregator](../exercises/06-trusted-aggregator.ipynb).
#
# ## What to try next
#
# - Trace one round of the loop and count the messages per worker with `t.workers`.
# - Give alice three rows and bob one. A plain mean of the two models now counts each of
#   bob's examples three times as much as alice's: how would you weight the average?
#   (Lesson 12 answers it.)
# - Make `worker_iters` 1 and 20. Which needs fewer rounds, and why?
# - Go on to [lesson 12](12-federated-averaging-on-real-data.ipynb): federated averaging
#   on real handwritten digits.
