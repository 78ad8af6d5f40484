# %% [markdown]
# # 3. Basic remote execution
#
# **What you will learn**
#
# - how to send a tensor to a worker, and what you get back: a *pointer*;
# - what a pointer's attributes mean: `location`, `id_at_location`, `id`, `owner`;
# - how `get()` brings the tensor back and empties the worker's store;
# - how to watch a worker's store live, and which messages travel.

# %%
import torch

import fedlab as sy

hook = sy.TorchHook(torch)
bob = sy.VirtualWorker(hook, id="bob")

# %% [markdown]
# ## A live view of bob's store
#
# `sy.watch` shows the stores of the workers you name and updates while the next cells
# run: new objects are marked, deleted ones fade out. With `side=True` it also opens in
# JupyterLab's right-hand side area, where it stays in sight while you scroll down
# (close it with its tab's x). Below, the panel shows bob's store as it is now: empty.

# %%
sy.watch(bob, side=True)

# %% [markdown]
# ## Sending a tensor
#
# `send` copies a tensor to a worker. What comes back is not a tensor but a pointer to
# it, so we usually rebind the same name:

# %%
x = torch.tensor([1, 2, 3, 4, 5])
x = x.send(bob)
bob._objects

# %% [markdown]
# Bob now holds the tensor under id 1 (the panel shows it). The pointer reads:

# %%
x

# %% [markdown]
# `me:1 -> bob:1`: a pointer owned by `me`, with its own id 1, to the object with id 1 on
# bob. Each part has a name:

# %%
print("location:      ", x.location)  # the worker that holds the tensor
print("id_at_location:", x.id_at_location)  # its key in that worker's store
print("id:            ", x.id)  # the pointer's own id, among me's objects
print("owner:         ", x.owner)  # the worker that holds the pointer

# %% [markdown]
# The owner is the local worker, the same `me` that the hook created:

# %%
x.owner is hook.local_worker

# %% [markdown]
# A pointer also remembers a few facts about the tensor (its shape and dtype), so that
# you can use it like a tensor without asking bob:

# %%
x.shape, x.dtype

# %% [markdown]
# ### Your turn
#
# Send `torch.tensor([10, 20, 30])` to bob and keep the pointer in `mine`. Then read from
# the pointer (do not type the answers) which worker holds the tensor, into `where`,
# and the tensor's key in that worker's store, into `key`. Replace each `...` and run
# the cell, then the check below it.

# %%
mine = ...
where = ...
key = ...

# %%
from fedlab.viz import practice

practice.check("send-and-read")

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# mine = torch.tensor([10, 20, 30]).send(bob)
# where = mine.location
# key = mine.id_at_location
# ```
#
# </details>

# %% [markdown]
# ## Getting it back
#
# `get()` asks bob for the tensor. Bob sends it and deletes his copy: the object *moves*
# back to us, it is not copied.

# %%
x = x.get()
x

# %%
bob._objects

# %% [markdown]
# Bob's store is empty again (in the panel too).
#
# ## What travelled
#
# Every request to bob is a message: it is encoded into bytes, delivered, decoded, and
# answered. `sy.trace()` records the messages of a block of code:

# %%
with sy.trace() as t:
    y = torch.tensor([1.0, 2.0, 3.0]).send(bob)
    y = y.get()
t

# %% [markdown]
# Four messages: we *send* the tensor and bob *replies* with the id he stored it under;
# we *fetch* that id and bob replies with the tensor itself. The byte counts are the
# real sizes of the encoded messages: three float32 numbers take 12 of them.
#
# `t.draw()` draws the same exchange as a sequence diagram, one line per worker:

# %%
t.draw()

# %% [markdown]
# ## Summary
#
# - `x.send(bob)` copies a tensor to bob and returns a pointer, `me:i -> bob:j`.
# - A pointer knows its `location`, `id_at_location`, `id` and `owner`, and the shape.
# - `x.get()` brings the tensor back and bob deletes his copy; every step is a message.
#
# ## Check yourself
#
# **1.** After `x = x.send(bob)`, where are the numbers, and what does `x` hold?
#
# <details><summary>Answer</summary>
#
# The numbers are in bob's store; `x` holds a pointer: bob's id for them
# (`id_at_location`), who bob is (`location`), and facts such as the shape.
#
# </details>
#
# **2.** Why does bob's store become empty after `x = x.get()`?
#
# <details><summary>Answer</summary>
#
# `get` moves the object: bob sends it and deletes his copy, so the values exist in one
# place only, now here.
#
# </details>
#
# **3.** Three float32 numbers are 12 bytes. Why is the *send* message longer?
#
# <details><summary>Answer</summary>
#
# The message also carries what bob needs to rebuild the tensor (its kind, dtype and
# shape) and the message's own header.
#
# </details>
#
# **Graded exercise:** after lesson 4, [exercise 1, remote tensors](../exercises/01-remote-tensors.ipynb).
#
# ## What to try next
#
# - Send a bigger tensor, `torch.zeros(1000)`, inside `sy.trace()`. How do the byte
#   counts change?
# - Send two tensors to bob before getting either back. Which ids do they get?
# - Go on to [lesson 4](04-remote-tensors-on-several-workers.ipynb): one tensor sent to
#   two workers at once.
