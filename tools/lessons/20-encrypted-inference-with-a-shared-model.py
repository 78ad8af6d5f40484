# %% [markdown]
# # 20. Encrypted inference with a shared model
#
# **What you will learn**
#
# - how a model owner (the server) and a data owner (the client) can use a model on data
#   without either showing theirs: both are secret-shared between two workers;
# - that `nn.Linear`, `F.relu` and `argmax` run unchanged on shared tensors;
# - what it costs, in messages, to compute a ReLU or an argmax on secrets;
# - that even training works on shares (`share(..., requires_grad=True)`).
#
# This is the course's "Encrypted deep learning in PyTorch", and PySyft's tutorials 11
# (secure classification) and 12 (encrypted training), on handwritten digits.

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
client = sy.VirtualWorker(hook, id="client")
bob = sy.VirtualWorker(hook, id="bob")
alice = sy.VirtualWorker(hook, id="alice")
crypto_provider = sy.VirtualWorker(hook, id="crypto_provider")

# %% [markdown]
# ## The server trains its model, in the clear
#
# The server owns some labelled digits and trains an ordinary model on them: nothing
# secure yet.

# %%
digits = load_digits()
images = torch.tensor(digits.data, dtype=torch.float32) / 16
labels = torch.tensor(digits.target)
order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
server_x, server_y = images[order[100:]], labels[order[100:]]
client_x, client_y = images[order[:100]], labels[order[:100]]  # the client's own images


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = x.view(-1, 64)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.fc2(x)
        return x


torch.manual_seed(2)
model = Net()
optimizer = optim.Adam(model.parameters(), lr=0.01)
for _ in range(100):
    optimizer.zero_grad()
    loss = F.cross_entropy(model(server_x), server_y)
    loss.backward()
    optimizer.step()
plain_predictions = model(client_x).argmax(1)
print(f"plain accuracy on the client's images: {(plain_predictions == client_y).sum().item()}/100")

# %% [markdown]
# ## Both sides share what they own
#
# The client encodes and shares its images and labels between alice and bob (in PySyft's
# tutorial, batches of a test loader); the server does the same with its model. Think
# of alice as run by the client and bob by the server: each holds one share of
# everything, which tells it nothing.

# %%
private_test_loader = []
for data, target in zip(client_x.split(50), client_y.split(50)):
    private_test_loader.append(
        (
            data.fix_precision().share(alice, bob, crypto_provider=crypto_provider),
            target.fix_precision().share(alice, bob, crypto_provider=crypto_provider),
        )
    )

model.fix_precision().share(alice, bob, crypto_provider=crypto_provider)
model.fc1.bias

# %%
sy.draw(model.fc1.bias)

# %% [markdown]
# ## Encrypted evaluation
#
# PySyft's tutorial code, unchanged. The model's weights, the images, the predictions and
# the labels stay shared; the only thing decrypted is the number of correct predictions.


# %%
def test(model, test_loader):
    model.eval()
    n_correct_priv = 0
    n_total = 0
    with torch.no_grad():
        for data, target in test_loader:
            output = model(data)
            pred = output.argmax(dim=1)
            n_correct_priv += pred.eq(target.view_as(pred)).sum()
            n_total += len(target)
    n_correct = n_correct_priv.copy().get().float_precision().long().item()
    print(f"Test set: Accuracy: {n_correct}/{n_total} ({100.0 * n_correct / n_total:.0f}%)")


test(model, private_test_loader)

# %% [markdown]
# The same accuracy as in the clear: every operation was exact but for the rounding of
# the products to 3 digits, too small to change a prediction here.
#
# ## What it cost
#
# One batch of 50 images, traced. A linear layer is a Beaver matrix product and a
# truncation; the ReLU and the argmax are comparisons, bit by bit: most of the messages.

# %%
data, target = private_test_loader[0]
with sy.trace() as t, torch.no_grad():
    hidden = F.relu(model.fc1(data))
with sy.trace() as t2, torch.no_grad():
    scores = model.fc2(hidden)
    pred = scores.argmax(dim=1)
print(f"layer 1 and ReLU: {len(t)} messages; layer 2 and argmax: {len(t2)} messages")
draw_flows(t, "a linear layer and a ReLU, on shares")

# %% [markdown]
# The client may decrypt its own predictions (here with `.get()`; in a deployment, only
# the client would receive the shares). They match the plain model's:

# %%
encrypted_predictions = pred.get().float_precision().long()
fig, axes = plt.subplots(1, 8, figsize=(8, 1.5))
for ax, image, p, q in zip(axes, client_x, plain_predictions, encrypted_predictions):
    ax.imshow(image.reshape(8, 8), cmap="gray_r")
    ax.set(title=f"{p.item()} / {q.item()}", xticks=[], yticks=[])
fig.suptitle("plain / encrypted prediction", fontsize=9)
plt.show()
print("same predictions:", torch.equal(encrypted_predictions, plain_predictions[:50]))

# %% [markdown]
# ### Your turn
#
# The client has five more images, `client_x[50:55]`. Encode and share them as
# `my_images` between alice and bob (in that order, like the model), with
# `crypto_provider` as crypto provider. Then, inside the `with` block, classify them with
# the shared `model` and decrypt only the predicted digits into `my_prediction`: the
# scores must stay shared. The check reads the shares in the stores and what came to you
# in `my_trace`.

# %%
my_images = ...  # client_x[50:55], encoded and shared like the model
with sy.trace() as my_trace, torch.no_grad():
    my_prediction = ...  # the predicted digits, decrypted here (and nothing else)

# %%
from fedlab.viz import practice

practice.check("encrypted-prediction")

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# my_images = client_x[50:55].fix_precision()
# my_images = my_images.share(alice, bob, crypto_provider=crypto_provider)
# with sy.trace() as my_trace, torch.no_grad():
#     my_prediction = model(my_images).argmax(dim=1).get().float_precision().long()
# ```
#
# Two tensors came to you, alice's and bob's shares of the five digits; the scores,
# like the images and the weights, never left their shares. Decrypting the scores and
# taking the argmax here would give the same digits, and show you more than them.
# </details>

# %% [markdown]
# ## Training on shares
#
# PySyft's tutorial 12 goes further: the model *and* the data are shared with
# `requires_grad=True`, `backward()` computes shared gradients (fedlab keeps its own
# record of the operations, as torch's autograd cannot see inside shares), and an SGD
# step updates the shared weights. The course's toy dataset:

# %%
data = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1.0]])
target = torch.tensor([[0], [0], [1], [1.0]])


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(2, 2)
        self.fc2 = nn.Linear(2, 1)

    def forward(self, x):
        x = self.fc1(x)
        x = F.relu(x)
        x = self.fc2(x)
        return x


torch.manual_seed(3)
toy, plain_toy = Toy(), Toy()
plain_toy.load_state_dict(toy.state_dict())
options = dict(crypto_provider=crypto_provider, requires_grad=True)
data_enc = data.fix_precision().share(bob, alice, **options)
target_enc = target.fix_precision().share(bob, alice, **options)
toy = toy.fix_precision().share(bob, alice, **options)
opt = optim.SGD(params=toy.parameters(), lr=0.1).fix_precision()
plain_opt = optim.SGD(params=plain_toy.parameters(), lr=0.1)

losses = {"encrypted": [], "plain": []}
for _ in range(15):
    opt.zero_grad()
    loss = ((toy(data_enc) - target_enc) ** 2).sum()
    loss.backward()
    opt.step()
    losses["encrypted"].append(loss.get().float_precision().item())
    plain_opt.zero_grad()
    plain_loss = ((plain_toy(data) - target) ** 2).sum()
    plain_loss.backward()
    plain_opt.step()
    losses["plain"].append(plain_loss.item())

fig, ax = plt.subplots(figsize=(6, 2.8))
ax.plot(losses["plain"], marker="o", label="plain training")
ax.plot(losses["encrypted"], marker="x", ls="--", label="training on shares")
ax.set(xlabel="step", ylabel="loss", title="The same training, in the clear and on shares")
ax.legend()
plt.show()

# %% [markdown]
# The curves agree to about a thousandth: the gradients are exact but for the rounding
# of each product. Only the loss was decrypted, to plot it; the model stays shared, and
# `toy.get().float_precision()` would bring it home.
#
# ## What is protected, and from whom
#
# Alice and bob see only shares; the crypto provider sees only its own random numbers.
# Against parties that follow the protocol but try to learn (honest but curious), and as
# long as the provider colludes with neither, the server learns nothing about the images
# and the client nothing about the weights, beyond what the decrypted result (here the
# accuracy, or the client's predictions) reveals. A dishonest party that sends wrong
# shares is not caught: that needs heavier protocols (SPDZ with MACs). And fedlab's
# workers all share this Python process: a simulation to learn from, not a deployment.
#
# ## Summary
#
# - `model.fix_precision().share(alice, bob, crypto_provider=...)` shares a model in
#   place; `model(shared_data)` runs `nn.Linear` and `F.relu` on shares.
# - Linear layers cost a Beaver product and a truncation; ReLU and argmax cost bitwise
#   comparisons, hundreds of messages each.
# - With `requires_grad=True` and `opt.fix_precision()`, training works on shares too.
#
# ## Check yourself
#
# **1.** Which operations of `Net.forward` need the crypto provider, and which do not?
#
# <details><summary>Answer</summary>
#
# `x.view` (a reshape of every share) needs nobody; `fc1` and `fc2` (products of two
# shared tensors, and their truncation) and `F.relu` (a comparison) need it.
#
# </details>
#
# **2.** Why does the client need `argmax` on shares, rather than decrypting the scores
# and taking the argmax itself?
#
# <details><summary>Answer</summary>
#
# It need not: decrypting the scores is the client's right. But the scores reveal more
# about the model than the predicted digit does; sharing up to the argmax gives away the
# least. (And the server may not be willing to release more than the label.)
#
# </details>
#
# **Graded exercise:** [exercise 8, secure aggregation](../exercises/08-secure-aggregation.ipynb)
# shares models with `fix_precision().share(...)` as this lesson does, to average them
# without anyone seeing one; it is the course's graded exercise on secure computation.
#
# ## What to try next
#
# - Classify the 100 images in batches of 10, 50 and 100: which grows, the time or the
#   number of messages?
# - Replace `F.relu` by `torch.sigmoid` in `Net`: what does fedlab say, and why?
# - Back to the [course index](00-index.ipynb); graded exercises are in `exercises/`.
