# %% [markdown]
# # 8. Toy federated learning
#
# **What you will learn**
#
# - how to train a small model the ordinary, centralised way;
# - how to train the same model on data split between bob and alice, which never
#   leaves their machines, by sending the model to each in turn;
# - why this simple scheme still lets the server learn about each worker's data.

# %%
import matplotlib.pyplot as plt
import torch
from torch import nn, optim

import fedlab as sy

hook = sy.TorchHook(torch)
bob = sy.VirtualWorker(hook, id="bob")
alice = sy.VirtualWorker(hook, id="alice")

# %% [markdown]
# ## Centralised training first
#
# A toy dataset (the target is the second input, as in lesson 6), a linear model and
# plain stochastic gradient descent. We fix the random seed so that the starting weights,
# and therefore every loss below, are the same each time the lesson runs.

# %%
data = torch.tensor([[1.0, 1], [0, 1], [1, 0], [0, 0]])
target = torch.tensor([[1.0], [1], [0], [0]])

torch.manual_seed(0)
model = nn.Linear(2, 1)
start = {k: v.clone() for k, v in model.state_dict().items()}  # to restart from later
opt = optim.SGD(params=model.parameters(), lr=0.1)


def train_central(iterations=20):
    """Train ``model`` on all the data at once; return the losses."""
    losses = []
    for _ in range(iterations):
        opt.zero_grad()
        loss = ((model(data) - target) ** 2).sum()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


central_losses = train_central()
print(f"first loss {central_losses[0]:.2e}, last loss {central_losses[-1]:.2e}")

# %% [markdown]
# This needed every example on one machine. Now suppose the first two rows belong to bob
# and the last two to alice, and neither will hand them over.
#
# ## The data stays with its owners

# %%
data_bob, target_bob = data[0:2].send(bob), target[0:2].send(bob)
data_alice, target_alice = data[2:4].send(alice), target[2:4].send(alice)
datasets = [(data_bob, target_bob), (data_alice, target_alice)]
print(bob, alice)

# %% [markdown]
# ## The model visits the data
#
# We restart from the same initial weights and make the optimizer *before* any sending.
# `model.send(bob)` turns each parameter into a pointer in place: they are the same
# Python objects, so the optimizer still holds them, and `opt.step()` runs on bob.
# `model.get()` brings the trained parameters back, again in place.

# %%
model.load_state_dict(start)
opt = optim.SGD(params=model.parameters(), lr=0.1)


def train_federated(iterations=20):
    """Send the model to each worker in turn, train one step there, bring it back."""
    losses = {"bob": [], "alice": []}
    for _ in range(iterations):
        for data_ptr, target_ptr in datasets:
            model.send(data_ptr.location)  # the model goes to the data
            opt.zero_grad()  # ordinary training, run by the worker
            loss = ((model(data_ptr) - target_ptr) ** 2).sum()
            loss.backward()
            opt.step()
            model.get()  # the improved model comes back
            losses[data_ptr.location.id].append(loss.get().item())
    return losses


federated_losses = train_federated()
for name, values in federated_losses.items():
    print(f"{name:5}: first loss {values[0]:.2e}, last loss {values[-1]:.2e}")

# %%
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(central_losses, marker="o", label="centralised (all 4 examples)")
ax.plot(federated_losses["bob"], marker="x", label="federated, on bob's 2 examples")
ax.plot(federated_losses["alice"], marker="+", label="federated, on alice's 2 examples")
ax.set(xlabel="iteration", ylabel="loss", yscale="log", title="The same model, two ways")
ax.legend()
plt.show()

# %% [markdown]
# Both ways reach a small loss. The federated losses are measured on each worker's half
# of the data, so they are not directly comparable with the centralised ones, but the
# model learned the task without us ever seeing a single example.
#
# The workers kept their data and nothing else; the model is back here (a model whose
# parameters are all local has no location):

# %%
print(bob, alice)
print("model.location:", model.location)
print(model.weight.data, model.bias.data)

# %% [markdown]
# ## The shortcoming: the server sees each worker's model
#
# Every time the model comes back from bob, we hold a model that was trained on bob's
# data alone. Comparing it with the model we sent tells us bob's update, and an update
# can give the data away. A drastic example: carol has a single private example.

# %%
carol = sy.VirtualWorker(hook, id="carol")
secret = torch.tensor([[0.3, 0.7]])
carol_data, carol_target = secret.send(carol), torch.tensor([[1.0]]).send(carol)

before = [p.detach().clone() for p in model.parameters()]
opt.zero_grad()
model.send(carol)
((model(carol_data) - carol_target) ** 2).sum().backward()
opt.step()
model.get()
change_w, change_b = (p.detach() - b for p, b in zip(model.parameters(), before))

# %% [markdown]
# For one example `x`, the gradient of the squared error is `2 * error * x` for the
# weights and `2 * error` for the bias. Their ratio is `x` itself, so anyone who sees the
# model before and after carol's step can divide:

# %%
change_w / change_b

# %% [markdown]
# That is carol's secret input, recovered from the model she sent back (up to float
# rounding). With more examples per worker the attack is harder but not hopeless. The
# cure is to stop looking at individual models: lesson 11 lets a trusted third worker
# average them, so the server only ever sees the average.
#
# ## What to try next
#
# - Give bob three rows and alice one. Does the order of the visits matter?
# - Replace `optim.SGD` by `optim.SGD(..., momentum=0.9)`. Why does fedlab refuse to step,
#   and what does the error suggest?
# - Go on to [lesson 9](09-advanced-remote-execution.ipynb): pointers to pointers, the
#   tool that lets workers pass data to each other.
