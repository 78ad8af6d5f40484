# %% [markdown]
# # 4. Remote tensors on several workers
#
# **What you will learn**
#
# - how to send one tensor to two workers in a single call;
# - what a *multi-pointer* is and how to look inside it;
# - how operations on a multi-pointer run on every worker;
# - how to bring the copies back, as a list or summed with `get(sum_results=True)`.

# %%
import torch

import fedlab as sy

hook = sy.TorchHook(torch)
bob = sy.VirtualWorker(hook, id="bob")
alice = sy.VirtualWorker(hook, id="alice")
sy.watch(bob, alice, side=True)

# %% [markdown]
# The panel shows both stores; it sits in JupyterLab's side area too, so you can watch
# each copy arrive and leave as you run the cells below.
#
# ### Your turn: the course's first project
#
# Send `torch.tensor([1.0, 2.0, 3.0])` to bob *and* alice with one call to `send`,
# keeping what it returns in `pair`. Then bring both copies back, added together, into
# `total`. (Hint: `send` accepts several workers, and `get` has an argument
# `sum_results`.) Try it before reading on: the rest of the lesson shows how it works.

# %%
pair = ...
total = ...

# %%
from fedlab.viz import practice

practice.check("two-workers")

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# pair = torch.tensor([1.0, 2.0, 3.0]).send(bob, alice)
# total = pair.get(sum_results=True)
# ```
#
# </details>
#
# ## One send, two copies
#
# `send` accepts several workers. Each receives its own copy of the tensor, and you get
# back one object that points to all of them: a multi-pointer.

# %%
x = torch.tensor([1, 2, 3, 4, 5])
x_ptr = x.send(bob, alice)
x_ptr

# %% [markdown]
# Read it line by line: `me:1 -> bob:1` is a pointer, owned by `me` (its own id is 1),
# to object 1 in bob's store; the second line is the same for alice. Each worker counts
# its ids on its own, which is why both copies are number 1.

# %%
print(bob._objects)
print(alice._objects)

# %% [markdown]
# Inside the multi-pointer is a `MultiPointerTensor`, and inside that a dictionary from
# worker id to an ordinary pointer:

# %%
x_ptr.child

# %%
x_ptr.child.child

# %% [markdown]
# Each entry is a normal single pointer, so you can use one worker's copy on its own:

# %%
bob_ptr = x_ptr.child.child["bob"]
bob_ptr.location

# %% [markdown]
# The multi-pointer's `location` lists every worker, in the order you sent to them:

# %%
x_ptr.location

# %% [markdown]
# ## Operations run on every worker
#
# Arithmetic on a multi-pointer is sent to each worker, which runs it on its own copy.
# The answer is a new multi-pointer; no values come back to you.

# %%
y_ptr = x_ptr * 10 + 1
y_ptr

# %%
print(bob._objects)
print(alice._objects)

# %% [markdown]
# Note the intermediate result of `x_ptr * 10`: it was stored under id 2 on each worker,
# and deleted as soon as its pointer died (Python dropped it after the `+ 1`). Only the
# copies of `x` and the final `y` remain.
#
# ## Bringing the copies back
#
# `get` on a multi-pointer asks every worker for its copy and returns a list. Like any
# `get`, it removes the objects from the workers' stores.

# %%
y_ptr.get()

# %%
print(bob._objects)
print(alice._objects)

# %% [markdown]
# With `sum_results=True` the copies are added together once they are back. This is the
# simplest form of *aggregation*, an idea we will meet again and again: the results of
# several workers are combined into one.

# %%
x_ptr.get(sum_results=True)

# %%
print(bob._objects)
print(alice._objects)

# %% [markdown]
# Both stores are empty again: every object that was sent has come back or been freed.
#
# ## Summary
#
# - `x.send(bob, alice)` gives each worker its own copy and you one multi-pointer.
# - Operations on a multi-pointer run on every worker; results stay there.
# - `get()` returns a list of the copies; `get(sum_results=True)` adds them up here.
#
# ## Check yourself
#
# **1.** `x_ptr = x.send(bob, alice)`. How many messages did that send, and how many
# tensors exist now?
#
# <details><summary>Answer</summary>
#
# Two sends, one to each worker, each answered with a reply; and three tensors: `x`
# here, a copy on bob and a copy on alice.
#
# </details>
#
# **2.** After `y_ptr = x_ptr * 10`, what does bob hold that alice does not?
#
# <details><summary>Answer</summary>
#
# Nothing: each worker ran the multiplication on its own copy, so both hold `x` and
# `x * 10` (each under its own ids).
#
# </details>
#
# **Graded exercise:** [exercise 1, remote tensors](../exercises/01-remote-tensors.ipynb)
# practises lessons 3 and 4.
#
# ## What to try next
#
# - Create `carol` and send a tensor to all three workers. What does
#   `get(sum_results=True)` return?
# - Send `torch.tensor([1.0, 2.0])` to bob and alice and compute `(x_ptr ** 2).sum()`.
#   How many numbers come back with `get()`?
# - Go on to [lesson 5](05-remote-arithmetic-and-autograd.ipynb): arithmetic and
#   gradients on bob's machine.
