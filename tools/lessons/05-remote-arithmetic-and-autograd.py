# %% [markdown]
# # 5. Remote arithmetic and remote autograd
#
# **What you will learn**
#
# - that torch operations on pointers run on the worker that holds the data;
# - that the result stays there too, and you get a new pointer;
# - that `backward()` works on bob's machine, and gradients come back with `get()`.

# %%
import torch

import fedlab as sy

hook = sy.TorchHook(torch)
bob = sy.VirtualWorker(hook, id="bob")
sy.watch(bob, side=True)

# %% [markdown]
# The panel (here and in JupyterLab's side area) shows every result appear in bob's
# store as the cells below compute it there.
#
# ## Arithmetic on pointers
#
# Send two tensors to bob and add them, exactly as if they were here:

# %%
x = torch.tensor([1, 2, 3, 4, 5]).send(bob)
y = torch.tensor([1, 1, 1, 1, 1]).send(bob)
z = x + y
z

# %% [markdown]
# `z` is a pointer, not a tensor: `x + y` travelled to bob as a message ("add objects 1
# and 2"), bob computed the sum, kept it as object 3, and answered with its id. The
# numbers never left bob's machine:

# %%
bob._objects

# %% [markdown]
# To see the values you must ask for them. `get()` brings the sum home and removes it
# from bob's store:

# %%
z = z.get()
z

# %% [markdown]
# Functions in the `torch` namespace work the same way as operators and methods:

# %%
z = torch.add(x, y).mul(10)
z

# %%
z.get()

# %% [markdown]
# Some facts about a remote tensor are known without asking bob, because the pointer
# remembers them: its shape, its dtype, whether it needs gradients.

# %%
x.shape, x.dtype, x.requires_grad

# %% [markdown]
# ## Autograd on bob's machine
#
# Gradients work remotely too. Make two tensors that require gradients, send them to
# bob, and build a small computation:

# %%
x = torch.tensor([15.0, 12, 4, 6, 78], requires_grad=True).send(bob)
y = torch.tensor([1.0, 1, 1, 1, 1], requires_grad=True).send(bob)
z = (x + y).sum()
z

# %% [markdown]
# Calling `backward()` on the pointer sends one more message: bob runs the backward pass
# on his own copy of the graph. The gradients are stored with his tensors, on his
# machine.

# %%
z.backward()
print(x.grad)

# %% [markdown]
# `x.grad` is again a pointer: the gradient lives on bob. (We `print` it rather than let
# Jupyter display it; lesson 7 explains why that matters.) When we bring `x` home, its
# gradient travels with it:

# %%
x = x.get()
x

# %%
x.grad

# %% [markdown]
# The gradient of a sum with respect to each input is 1, so this is what we expected.
# Bob still holds `y` and the result `z`; `x` has left his store:

# %%
bob._objects

# %% [markdown]
# ### Your turn
#
# Send `torch.tensor([2.0, 3.0], requires_grad=True)` to bob as `a`. On bob, compute
# `(a * a).sum()` and run `backward()` on it; then bring `a` home into the same name,
# with its gradient. What gradient do you expect before you run it?

# %%
a = torch.tensor([2.0, 3.0], requires_grad=True).send(bob)
a = ...

# %%
from fedlab.viz import practice

practice.check("remote-gradient")

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# a = torch.tensor([2.0, 3.0], requires_grad=True).send(bob)
# (a * a).sum().backward()
# a = a.get()
# ```
#
# The gradient of `a[0]**2 + a[1]**2` is `2 * a`, so `a.grad` is `tensor([4., 6.])`.
#
# </details>
#
# ## What a pointer will not do
#
# Anything that needs the *values* is refused, because the values are not here. An
# `if` on a remote tensor, `.item()`, `.tolist()` or `.numpy()` all stop with an error that
# says what to do:

# %% tags=["raises-exception"]
x = torch.tensor([3.0]).send(bob)
x.item()

# %% [markdown]
# ## Summary
#
# - An operation on pointers is a message: the worker computes and keeps the result.
# - `backward()` on a remote result runs on the worker; gradients stay with its tensors.
# - `get()` brings values (and gradients) home; nothing that needs values works on a pointer.
#
# ## Check yourself
#
# **1.** `z = x + y` with `x` and `y` on bob. What travels from bob to you?
#
# <details><summary>Answer</summary>
#
# Only a short reply with the id bob stored the sum under. The numbers stay on bob
# until you call `z.get()`.
#
# </details>
#
# **2.** Where is `x.grad` after `z.backward()` on bob, and how do you see its values?
#
# <details><summary>Answer</summary>
#
# On bob, attached to his copy of `x`; `x.grad` is a pointer to it. `x = x.get()` brings
# `x` home with its gradient (or `x.grad.copy().get()` fetches a copy of the gradient only).
#
# </details>
#
# **3.** Why is `if z > 0:` refused when `z` is a pointer?
#
# <details><summary>Answer</summary>
#
# Deciding needs the value, and the value is on bob. Bring it back first (`z.get()`), if
# you are allowed to see it.
#
# </details>
#
# **Graded exercise:** [exercise 2, a linear model](../exercises/02-linear-model.ipynb)
# practises lessons 5 and 6.
#
# ## What to try next
#
# - Replace `(x + y).sum()` by `(x * y).sum()`. What gradient do you expect for `x`?
# - Try `torch.exp(x)` on a pointer, then `.get()` it.
# - Go on to [lesson 6](06-learning-a-linear-model-on-bob.ipynb): train a model on bob's
#   machine with nothing but these pieces.
