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
# run: new objects are marked, deleted ones fade out. Keep it in sight as you go (in
# JupyterLab, right-click the panel and choose *Create New View for Output* to pin it to
# the side). Below, the panel shows bob's store as it is now: empty.

# %%
sy.watch(bob)

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
# ## What to try next
#
# - Send a bigger tensor, `torch.zeros(1000)`, inside `sy.trace()`. How do the byte
#   counts change?
# - Send two tensors to bob before getting either back. Which ids do they get?
# - Go on to [lesson 4](04-remote-tensors-on-several-workers.ipynb): one tensor sent to
#   two workers at once.
