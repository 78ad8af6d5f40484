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
import torch
from torch import nn, optim

import fedlab as sy
from fedlab.viz.lesson_figures import curves

hook = sy.TorchHook(torch)
bob = sy.VirtualWorker(hook, id="bob")
alice = sy.VirtualWorker(hook, id="alice")
sy.watch(bob, alice, side=True)

# %% [markdown]
# Keep the panel in sight (JupyterLab's side area): when the model travels below, you
# will see its weight and bias arrive on bob, leave, and arrive on alice.
#
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
# ### Your turn: the course's project
#
# Train a fresh model, `my_model`, on bob's and alice's data without the data ever
# coming here: for 20 iterations, visit each `(data_ptr, target_ptr)` in `datasets`,
# send the model to the worker that holds that data (`data_ptr.location`), do one
# ordinary training step there with `my_opt`, and bring the model back. Try it before
# reading on; the next section shows the course's way.

# %%
torch.manual_seed(1)
my_model = nn.Linear(2, 1)
my_opt = optim.SGD(params=my_model.parameters(), lr=0.1)
for _ in range(20):
    for data_ptr, target_ptr in datasets:
        ...

# %%
from fedlab.viz import practice

practice.check("federated-loop")

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# torch.manual_seed(1)
# my_model = nn.Linear(2, 1)
# my_opt = optim.SGD(params=my_model.parameters(), lr=0.1)
# for _ in range(20):
#     for data_ptr, target_ptr in datasets:
#         my_model.send(data_ptr.location)
#         my_opt.zero_grad()
#         loss = ((my_model(data_ptr) - target_ptr) ** 2).sum()
#         loss.backward()
#         my_opt.step()
#         my_model.get()
# ```
#
# </details>
#
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

# %% [markdown]
# ## The model's journey
#
# What did one iteration send? Trace one more and draw it: the model goes to bob, is
# trained there, and comes back; then the same with alice. (One more iteration changes
# the model a little; that does not matter here.)

# %%
with sy.trace() as t:
    train_federated(iterations=1)
journey = t.tensors()  # only the messages that carried a tensor's values
journey

# %% [markdown]
# Of the iteration's messages, these carried values. Read them in order: the weight
# (`float32[1, 2]`) and the bias (`float32[1]`) go from `me` to bob; after the step bob
# sends back the trained weight, the trained bias, and the loss (`float32[]`, one
# number). Then the same with alice. Not one message carried bob's or alice's data.
# Drawn as a sequence diagram:

# %%
journey.draw()

# %%
curves(
    {
        "centralised (all 4 examples)": central_losses,
        "federated, on bob's 2 examples": federated_losses["bob"],
        "federated, on alice's 2 examples": federated_losses["alice"],
    },
    title="The same model, two ways",
    xlabel="iteration",
    ylabel="loss",
    log=True,
)

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
# ## Summary
#
# - Federated learning sends the model to each worker's data and brings it back trained.
# - The data never moves; the model and (here) the losses do.
# - Whoever sees a worker's trained model can learn about its data: updates leak.
#
# ## Check yourself
#
# **1.** Why is the optimizer made before `model.send(...)`, and why does it keep working
# after the model comes back?
#
# <details><summary>Answer</summary>
#
# `send` and `get` change each parameter in place: the optimizer holds the same Python
# objects throughout, so `opt.step()` updates them wherever they are.
#
# </details>
#
# **2.** How did we recover carol's input from her update?
#
# <details><summary>Answer</summary>
#
# With one example, the weight's gradient is `2 * error * x` and the bias's `2 * error`;
# the change of each is the learning rate times that, so their ratio is `x`.
#
# </details>
#
# **Graded exercise:** [exercise 3, federated learning](../exercises/03-federated.ipynb).
#
# ## What to try next
#
# - Give bob three rows and alice one. Does the order of the visits matter?
# - Replace `optim.SGD` by `optim.SGD(..., momentum=0.9)`. Why does fedlab refuse to step,
#   and what does the error suggest?
# - Go on to [lesson 9](09-advanced-remote-execution.ipynb): pointers to pointers, the
#   tool that lets workers pass data to each other.
