# %% [markdown]
# # 11. Federated learning with a trusted aggregator
#
# **What you will learn**
#
# - how every worker trains its own copy of the model, in parallel rather than in turn;
# - how the trained copies `move` to a third worker we trust, which averages them;
# - how to check with a trace that we, the server, only ever receive the average;
# - what this protects, and what it still does not.
#
# This goes one step beyond the original course: it uses the chain operations of
# lesson 10 to fix the shortcoming found in lesson 8.

# %%
import matplotlib.pyplot as plt
import torch
from torch import nn, optim

import fedlab as sy
from fedlab.fedavg import aggregate

hook = sy.TorchHook(torch)
bob = sy.VirtualWorker(hook, id="bob")
alice = sy.VirtualWorker(hook, id="alice")
secure_worker = sy.VirtualWorker(hook, id="secure_worker")
sy.watch(bob, alice, secure_worker)

# %% [markdown]
# ## The setting
#
# The toy data of lesson 8, split between bob and alice, and a linear model with a
# fixed seed. `secure_worker` is a party that bob and alice both trust (a neutral
# organisation, or a secure enclave); we, the server, are not trusted with individual
# models.

# %%
data = torch.tensor([[1.0, 1], [0, 1], [1, 0], [0, 0]])
target = torch.tensor([[1.0], [1], [0], [0]])
datasets = {
    bob: (data[0:2].send(bob), target[0:2].send(bob)),
    alice: (data[2:4].send(alice), target[2:4].send(alice)),
}

torch.manual_seed(0)
model = nn.Linear(2, 1)

# %% [markdown]
# ## One round, step by step
#
# **1. Every worker gets its own copy.** `model.copy()` makes a new model with the same
# weights, and `.send(bob)` puts it on bob. Each copy needs its own optimizer, made after
# the send, because the two copies are trained separately.

# %%
bob_model = model.copy().send(bob)
alice_model = model.copy().send(alice)
bob_opt = optim.SGD(bob_model.parameters(), lr=0.1)
alice_opt = optim.SGD(alice_model.parameters(), lr=0.1)
print(bob_model.location, alice_model.location)

# %% [markdown]
# **2. Every worker trains on its own data**, here for 5 steps.


# %%
def train_locally(local_model, opt, data, target, steps=5):
    """A few steps of ordinary training, run where the data and the model are."""
    for _ in range(steps):
        opt.zero_grad()
        loss = ((local_model(data) - target) ** 2).sum()
        loss.backward()
        opt.step()
    return loss


bob_loss = train_locally(bob_model, bob_opt, *datasets[bob])
alice_loss = train_locally(alice_model, alice_opt, *datasets[alice])

# %% [markdown]
# **3. Both trained models move to the secure worker**, straight from bob and from
# alice (lesson 10: `move` never passes through us). **4. The secure worker averages
# them**: `aggregate` works on pointers too, as long as they all live on one worker; then
# every multiplication and addition runs there. **5. Only the average comes back.**
#
# We trace all of it.

# %%
with sy.trace() as t:
    bob_model.move(secure_worker)
    alice_model.move(secure_worker)
    average = aggregate([(list(bob_model.parameters()), 2), (list(alice_model.parameters()), 2)])
    new_weight, new_bias = (p.get() for p in average)
print("average weight:", new_weight, " average bias:", new_bias)

# %% [markdown]
# Which tensors reached us, `me`, during that block? Every message carries its decoded
# content as `payload`, so we can list exactly the tensors that arrived:

# %%
for message in t:
    value = getattr(message.payload, "value", None)
    if message.receiver == "me" and isinstance(value, torch.Tensor):
        print(f"from {message.sender}: {message.summary}")

# %% [markdown]
# Two tensors, both from `secure_worker`: the averaged weight and the averaged bias.
# Neither bob's nor alice's model ever reached us. The models travelled like this (the
# first messages of the trace):

# %%
t.draw(max_messages=12)

# %% [markdown]
# The secure worker holds the two models and the average's intermediate results until
# the pointers to them die. We load the average into our model and drop the copies:

# %%
with torch.no_grad():
    model.weight.copy_(new_weight)
    model.bias.copy_(new_bias)
del bob_model, alice_model, bob_opt, alice_opt, average, bob_loss, alice_loss
print(secure_worker)

# %% [markdown]
# ## Several rounds
#
# The same five steps as a function, run for 10 more rounds (round 1 was the one by
# hand). We keep each worker's last training loss to plot. (A loss is one number, and it
# does say a little about the data: in a real system you would decide whether to share
# it.)


# %%
def federated_round(model, local_steps=5):
    """Train a copy on every worker, average on secure_worker, load the average into model."""
    results, losses = [], {}
    for worker, (data, target) in datasets.items():
        local_model = model.copy().send(worker)
        opt = optim.SGD(local_model.parameters(), lr=0.1)
        losses[worker.id] = train_locally(local_model, opt, data, target, local_steps).get()
        local_model.move(secure_worker)
        results.append((list(local_model.parameters()), len(target)))
    average = aggregate(results)
    with torch.no_grad():
        for p, new in zip(model.parameters(), average):
            p.copy_(new.get())
    return losses


history = [federated_round(model) for _ in range(10)]

fig, ax = plt.subplots(figsize=(6, 3))
for name in ["bob", "alice"]:
    ax.plot(range(2, 12), [h[name].item() for h in history], marker="o", label=name)
ax.set(xlabel="round", ylabel="local loss", yscale="log", title="Training with a secure worker")
ax.legend()
plt.show()

# %% [markdown]
# Both losses fall round after round, although we never held a worker's data or a
# worker's model. The workers keep only their data, and the secure worker is empty
# again, because every pointer made inside `federated_round` died when it returned:

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
# ## What to try next
#
# - Give alice three rows and bob one, and change the weights in `aggregate` to match.
#   What changes in the plot?
# - Trace a whole `federated_round(model)` and count the messages per worker.
# - Make `local_steps` 1 and 20. Which converges in fewer rounds, and why?
# - Go on to [lesson 12](12-federated-averaging-on-real-data.ipynb): federated averaging
#   on real handwritten digits.
