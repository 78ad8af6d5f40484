# %% [markdown]
# # 19. Federated learning with encrypted gradient aggregation
#
# **What you will learn**
#
# - how to average the workers' models *on shares*, so that nobody (not the server, not
#   the other workers, not the crypto provider) sees any worker's model;
# - how a worker shares its own model where it lives: the shares go straight from it to
#   the others, never through us;
# - how to check, from the message log, that no message carried a worker's update;
# - that the encrypted average trains the same model as a plain average.
#
# This is the course's final project for its "Securing federated learning" section, on
# scikit-learn's handwritten digits (no download). It replaces lesson 11's trusted
# secure worker by secret sharing.

# %%
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn, optim

import fedlab as sy
from fedlab.viz.shared import draw_flows

torch.set_num_threads(1)
hook = sy.TorchHook(torch)
bob = sy.VirtualWorker(hook, id="bob")
alice = sy.VirtualWorker(hook, id="alice")
james = sy.VirtualWorker(hook, id="james")  # the crypto provider
compute_nodes = [bob, alice]

# %% [markdown]
# ## The data and the model
#
# The digits of lesson 12: 400 images aside for testing, the rest split between bob and
# alice. The model is small: 64 pixels in, 10 scores out, one hidden layer.

# %%
digits = load_digits()
images = torch.tensor(digits.data, dtype=torch.float32) / 16
labels = torch.tensor(digits.target)
order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
test_x, test_y = images[order[:400]], labels[order[:400]]
train = order[400:]
half = len(train) // 2
datasets = {
    bob: (images[train[:half]].send(bob), labels[train[:half]].send(bob)),
    alice: (images[train[half:]].send(alice), labels[train[half:]].send(alice)),
}


def new_model():
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def accuracy(model):
    return (model(test_x).argmax(1) == test_y).float().mean().item()


# %% [markdown]
# ## One round, step by step
#
# **Part A: train.** Each worker trains its own copy of the model on its own data, as in
# lessons 11 and 12.


# %%
def train_copies(model, steps=5):
    """A copy of the model on every worker, trained there for a few steps."""
    copies = []
    for worker, (data, target) in datasets.items():
        local = model.copy().send(worker)
        opt = optim.SGD(local.parameters(), lr=0.5)
        for _ in range(steps):
            opt.zero_grad()
            F.cross_entropy(local(data), target).backward()
            opt.step()
        copies.append(local)
    return copies


model = new_model()
copies = train_copies(model)
params = [list(c.parameters()) for c in copies]
print(params[0][0])

# %% [markdown]
# **Part B: encrypted aggregation.** For each parameter, each worker encodes its copy in
# fixed precision and shares it between bob and alice, with james as crypto provider.
# The parameter lives on the worker, so all of this runs *there*: the worker makes the
# random shares and sends each one straight to its party. What we get back is a pointer
# to the shared value, held by the worker; `.get()` brings home that record (the
# pointers to the shares, not a value). Then the shares are added, share by share, and
# only the sum is decrypted: we divide it by two.
#
# The next cell is the course's (and PySyft's Part 10) code. We watch the workers and
# trace every message.

# %%
sy.watch(bob, alice, james, side=True)

# %%
with sy.trace() as t:
    new_params = list()
    for param_i in range(len(params[0])):
        spdz_params = list()
        for remote_index in range(len(compute_nodes)):
            copy_of_parameter = params[remote_index][param_i].copy()
            fixed_precision_param = copy_of_parameter.fix_precision()
            encrypted_param = fixed_precision_param.share(bob, alice, crypto_provider=james)
            param = encrypted_param.get()
            spdz_params.append(param)
        new_param = (spdz_params[0] + spdz_params[1]).get().float_precision() / 2
        new_params.append(new_param)
print(f"{len(t)} messages; the first parameter's average:\n{new_params[0][:2, :5]}")

# %% [markdown]
# The panel above (it updates as cells run) named every share. Between the workers,
# only shares travelled; to us came shares of the *sum*:

# %%
draw_flows(t, "encrypted aggregation of one round")

# %% [markdown]
# ## Did anything leak?
#
# Which tensors did a message carry? We compare every tensor in the trace with every
# worker's parameters, as floats and as their fixed-precision encoding. (We may look at
# them here only because this is a simulation: `copy().get()` fetches them for the
# check.)

# %%
leaks = 0
for worker_params in params:
    for p in worker_params:
        value = p.copy().get().detach()
        encoded = value.fix_precision().child.child
        leaks += len(sy.secure.carries(t, value)) + len(sy.secure.carries(t, encoded))
print("messages that carried a worker's parameters:", leaks)

# %% [markdown]
# None. And the encrypted average equals the plain one to the encoding's precision
# (0.0005 with 3 digits, rounding):

# %%
plain = [(a.copy().get() + b.copy().get()) / 2 for a, b in zip(*params)]
print(max((n - p).abs().max().item() for n, p in zip(new_params, plain)))

# %% [markdown]
# **Part C: clean up.** The average goes into the global model; the copies are
# dropped, and with them every object on the workers but their data.

# %%
with torch.no_grad():
    for p, new in zip(model.parameters(), new_params):
        p.copy_(new)
del copies, params, spdz_params, param, encrypted_param, fixed_precision_param
del copy_of_parameter, new_param, worker_params, p
print(bob, alice, james, sep="\n")

# %% [markdown]
# ## Putting it together
#
# The same three parts as a function; and, to compare, a plain FedAvg round that
# averages in the clear (`.get()` each copy: the server sees everything).


# %%
def encrypted_round(model):
    params = [list(c.parameters()) for c in train_copies(model)]
    averages = []
    for p_bob, p_alice in zip(*params):
        shared = [p.copy().fix_precision().share(bob, alice, crypto_provider=james).get()
                  for p in (p_bob, p_alice)]  # fmt: skip
        averages.append((shared[0] + shared[1]).get().float_precision() / 2)
    with torch.no_grad():
        for p, new in zip(model.parameters(), averages):
            p.copy_(new)


def plain_round(model):
    params = [list(c.parameters()) for c in train_copies(model)]
    with torch.no_grad():
        for p, p_bob, p_alice in zip(model.parameters(), *params):
            p.copy_((p_bob.get() + p_alice.get()) / 2)


encrypted_model, plain_model = new_model(), new_model()
history = {"encrypted": [accuracy(encrypted_model)], "plain": [accuracy(plain_model)]}
for _ in range(8):
    encrypted_round(encrypted_model)
    plain_round(plain_model)
    history["encrypted"].append(accuracy(encrypted_model))
    history["plain"].append(accuracy(plain_model))

fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(history["plain"], marker="o", label="plain average (server sees the models)")
ax.plot(history["encrypted"], marker="x", ls="--", label="encrypted average")
ax.set(xlabel="round", ylabel="test accuracy", title="FedAvg on digits, bob and alice")
ax.legend()
plt.show()
print(f"after 8 rounds: plain {history['plain'][-1]:.3f}, encrypted {history['encrypted'][-1]:.3f}")

# %% [markdown]
# The two curves lie on each other: the encrypted average is the plain average, rounded
# to 3 digits. What changed is who saw what.
#
# ### Your turn
#
# Bob and alice each hold an update (a gradient, say) that nobody else may see. Average
# the two as Part B did, inside the `with` block: share a copy of each update where it
# lives, in fixed precision, between bob and alice with james as crypto provider; add the
# two shared updates; decrypt only the sum, and divide it by 2, into `my_average`. The
# check reads `my_trace`: no message may carry an update, and only the sum may be
# decrypted.

# %%
bob_update = torch.tensor([0.5, -1.25, 0.75]).send(bob)  # only bob holds it
alice_update = torch.tensor([0.25, 0.5, -1.5]).send(alice)  # only alice holds it
with sy.trace() as my_trace:
    my_average = ...  # the average of the two updates, computed on shares

# %%
from fedlab.viz import practice

practice.check("encrypted-average")

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# bob_update = torch.tensor([0.5, -1.25, 0.75]).send(bob)  # only bob holds it
# alice_update = torch.tensor([0.25, 0.5, -1.5]).send(alice)  # only alice holds it
# with sy.trace() as my_trace:
#     my_shared = [
#         update.copy().fix_precision().share(bob, alice, crypto_provider=james).get()
#         for update in (bob_update, alice_update)
#     ]
#     my_average = (my_shared[0] + my_shared[1]).get().float_precision() / 2
# ```
#
# The updates themselves never moved: bob sent alice one random share of his, alice sent
# bob one of hers, and only the shares of the sum came to you. Fetching each update
# (`bob_update.copy().get()`) or decrypting each shared update on its own would give the
# same average, and show you both updates: the check catches both.
# </details>

# %% [markdown]
# ## What is protected, and from whom
#
# - **Protected**: each worker's model, from us (the server), from the other worker and
#   from james. Each share alone is uniformly random (lesson 16).
# - **Assumptions**: the parties follow the protocol (honest but curious), and james
#   does not collude with a party. Sums need no help from james at all: he is only
#   named because `share` requires a provider for the general case.
# - **Not protected**: the average itself, which we decrypt on purpose, and what it
#   reveals (with two workers, knowing your own model and the average gives the other
#   one!). Use more workers, or add noise (differential privacy). And in fedlab every
#   worker lives in this one Python process, sharing its memory and its random number
#   generator: a lesson, not a deployment.
#
# ## Summary
#
# - `p.copy().fix_precision().share(bob, alice, crypto_provider=james).get()` shares a
#   worker's parameter where it lives; sums of shared parameters decrypt to the sum only.
# - A trace proves it: no message carried any worker's parameters.
# - The encrypted average equals the plain one to the encoding's precision, so training
#   is unchanged.
#
# ## Check yourself
#
# **1.** Why does `.get()` on `encrypted_param` not reveal bob's parameter, while `.get()`
# on `spdz_params[0] + spdz_params[1]` reveals the sum?
#
# <details><summary>Answer</summary>
#
# `encrypted_param` is a shared value whose record was still on bob (he shared it): its
# `.get()` hands over the pointers to the shares. The sum is a shared value whose record
# we hold, and `.get()` on it fetches and adds its shares: decryption.
#
# </details>
#
# **2.** With only two workers, what can bob compute from the average and his own model?
#
# <details><summary>Answer</summary>
#
# alice's model: 2 * average - his own. Secure aggregation hides individual models only
# among enough workers (or with noise added).
#
# </details>
#
# **3.** Why does the encrypted average need no help from james, the crypto provider?
#
# <details><summary>Answer</summary>
#
# It is a sum, and sums are computed share by share (lesson 16); only products and
# comparisons need the provider's random numbers. Dividing the decrypted sum by 2 is done
# in the clear, by whoever is allowed to see the sum.
#
# </details>
#
# **Graded exercise:** [exercise 8, secure aggregation](../exercises/08-secure-aggregation.ipynb)
# asks for exactly this with three workers: average their models on shares, shared where
# they live, checked from the message log, and leave nothing behind on the workers.
#
# ## What to try next
#
# - Add a third worker, charlie, and share among all three: does the number of messages
#   grow with the workers, or with their square?
# - Time an encrypted round and a plain one with `time.perf_counter()`.
# - Go on to [lesson 20](20-encrypted-inference-with-a-shared-model.ipynb): a whole model,
#   shared, classifying shared images.
