# %% [markdown]
# # 6. Learning a linear model on bob's machine
#
# **What you will learn**
#
# - how to train a model whose data *and* weights stay on bob, using only tensors,
#   `backward()` and a hand-written update (no `nn.Module`, no optimizer);
# - why the gradient must be set back to zero after each step;
# - that the remote run gives exactly the same numbers as the same code run locally.

# %%
import torch

import fedlab as sy
from fedlab.viz.lesson_figures import curves

hook = sy.TorchHook(torch)
bob = sy.VirtualWorker(hook, id="bob")

# %% [markdown]
# ## The task
#
# Four examples with two inputs each. The target is simply the second input, so the best
# weights are `[[0], [1]]`. A linear model `prediction = data @ weights` can learn that.

# %%
data = torch.tensor([[1.0, 1], [0, 1], [1, 0], [0, 0]])
target = torch.tensor([[1.0], [1], [0], [0]])

# %% [markdown]
# Bob holds the data. We send him starting weights too, with `requires_grad=True` so that
# his autograd tracks them.

# %%
data_ptr = data.send(bob)
target_ptr = target.send(bob)
weights_ptr = torch.zeros(2, 1, requires_grad=True).send(bob)
bob

# %% [markdown]
# ### Your turn: the course's project
#
# Train a linear model on bob's machine, with the data *and* the weights staying there.
# Use only tensors, `backward()` and your own update (no `nn.Module`, no optimizer):
# 20 steps of gradient descent with learning rate 0.1 on the squared error
# `((data_ptr.mm(my_weights) - target_ptr) ** 2).sum()`. Lesson 5 gave you every piece.
# Two hints: do the update under `torch.no_grad()`, and think about what happens to the
# gradient between steps. The rest of the lesson takes it apart.

# %%
my_weights = torch.zeros(2, 1, requires_grad=True).send(bob)
for _ in range(20):
    ...

# %%
from fedlab.viz import practice

practice.check("linear-on-bob")

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# my_weights = torch.zeros(2, 1, requires_grad=True).send(bob)
# for _ in range(20):
#     loss = ((data_ptr.mm(my_weights) - target_ptr) ** 2).sum()
#     loss.backward()
#     with torch.no_grad():
#         my_weights -= 0.1 * my_weights.grad
#     my_weights.grad.zero_()
# ```
#
# </details>
#
# ## One step by hand
#
# A step of gradient descent is four lines. Each line is a message to bob, and every
# intermediate result stays with him.

# %%
pred = data_ptr.mm(weights_ptr)  # bob computes the predictions
loss = ((pred - target_ptr) ** 2).sum()  # ... and the squared error
loss.backward()  # ... and the gradients, stored on his weights
with torch.no_grad():  # the update itself must not be recorded by autograd
    weights_ptr -= 0.1 * weights_ptr.grad
print(weights_ptr)
print(loss.get())

# %% [markdown]
# `weights_ptr` is still the same pointer (`me:3 -> bob:3`): the update changed bob's
# tensor in place. Only the loss came back, because we asked for it.
#
# ## Gradients add up: zero them
#
# `backward()` does not *replace* a tensor's gradient, it *adds* to it. This is
# useful when a gradient is built from several batches, but in a simple training loop the
# old gradient must be cleared, or every step also repeats all the previous ones.
# (The original version of this exercise forgot, and its loss bounced up and down
# instead of falling.) With no optimizer to call `zero_grad()` for us, we do it by hand,
# then bring home a *copy* of bob's gradient to check:

# %%
weights_ptr.grad.zero_()
weights_ptr.grad.copy().get()


# %% [markdown]
# ## The training loop
#
# Here are those lines in a function. It works on pointers and on ordinary tensors alike;
# the only line that cares where the data lives is the one that reads the loss.


# %%
def train(data, target, weights, steps=20, lr=0.1, zero_grad=True):
    """Fit ``weights`` by gradient descent on the squared error; return the losses."""
    losses = []
    for _ in range(steps):
        pred = data.mm(weights)
        loss = ((pred - target) ** 2).sum()
        loss.backward()
        with torch.no_grad():
            weights -= lr * weights.grad
        if zero_grad:
            weights.grad.zero_()
        if sy.is_pointer(loss):
            loss = loss.get()  # the loss is on bob: bring it here to record it
        losses.append(loss.item())
    return losses


# %% [markdown]
# Train on bob, from fresh weights, once the right way and once forgetting to zero:

# %%
weights_ptr = torch.zeros(2, 1, requires_grad=True).send(bob)
remote_losses = train(data_ptr, target_ptr, weights_ptr)

forgetful_ptr = torch.zeros(2, 1, requires_grad=True).send(bob)
forgetful_losses = train(data_ptr, target_ptr, forgetful_ptr, zero_grad=False)

curves(
    {"gradient zeroed each step": remote_losses, "gradient never zeroed": forgetful_losses},
    title="Training on bob's machine",
    xlabel="step",
    ylabel="loss on bob's data",
)

# %% [markdown]
# With zeroing, the loss falls steadily towards 0. Without it, each step pushes by the
# sum of all past gradients, overshoots, and the loss keeps bouncing.
#
# Bob now holds his data, the two sets of weights, the predictions `pred` from our
# step by hand (the variable `pred` still points to them), and each set of weights'
# gradient. (A pointer keeps the gradient pointer that `.grad` gave it, as a torch
# tensor keeps its `.grad`: it goes when the weights' pointer goes.) Everything else
# the loops made along the way is gone:

# %%
bob._objects

# %% [markdown]
# ## The same code, run locally
#
# Now run `train` on the very same numbers kept here on `me`:

# %%
weights = torch.zeros(2, 1, requires_grad=True)
local_losses = train(data, target, weights)
local_losses == remote_losses

# %% [markdown]
# Every loss is equal, to the last bit. So are the weights: bob ran the same float
# operations in the same order, and the messages carried the tensors' exact bytes.

# %%
remote_weights = weights_ptr.get()
print(remote_weights)
torch.equal(remote_weights, weights)

# %% [markdown]
# Working on a pointer changes *where* the computation happens, not *what* it computes.
#
# ## Summary
#
# - A model can train where its data is: every line of the step runs on bob.
# - `backward()` adds to `.grad`; zero it after each update, or the steps pile up.
# - Remote training computes exactly what local training computes, bit for bit.
#
# ## Check yourself
#
# **1.** In the training loop, which values travel from bob to you?
#
# <details><summary>Answer</summary>
#
# Only the loss, because `train` asks for it each step to record it. The data, the
# predictions, the weights and the gradients stay on bob until you `get` them.
#
# </details>
#
# **2.** Why does the loss bounce when the gradient is never zeroed?
#
# <details><summary>Answer</summary>
#
# Each step's gradient is added to all the earlier ones, so the update uses the sum of
# every past gradient: the weights overshoot, and keep overshooting.
#
# </details>
#
# **Graded exercise:** [exercise 2, a linear model](../exercises/02-linear-model.ipynb).
#
# ## What to try next
#
# - Change the learning rate `lr` to 0.3 and then to 0.6. When does training diverge?
# - Make the target the *sum* of the two inputs. Which weights should the model find?
# - Go on to [lesson 7](07-garbage-collection-and-common-errors.ipynb): what happens to
#   bob's objects when pointers go away, and the errors you will meet most often.
