# %% [markdown]
# # 2. Setting up
#
# **What you will learn**
#
# - what "hooking" torch means, and that plain torch keeps working exactly as before;
# - who `me`, the local worker, is;
# - how to create a first remote worker, `bob`, and look inside his store.

# %% [markdown]
# ## Plain torch first
#
# fedlab is built on PyTorch. Before we add anything, a tensor is just a tensor:

# %%
import torch

x = torch.tensor([1, 2, 3, 4, 5])
y = x + x
y

# %% [markdown]
# ## Hooking torch
#
# To work on data we cannot see, we need tensors that live somewhere else. fedlab adds
# this to torch with a *hook*. The course calls the package `sy` (as PySyft did), so
# code written for the original course runs unchanged.

# %%
import fedlab as sy

hook = sy.TorchHook(torch)
hook

# %% [markdown]
# The hook *adds* a few methods to every tensor and every `nn.Module` (`send`, `get`,
# `move`, ...) and replaces nothing. Ordinary tensors pay nothing for it and behave as
# before:

# %%
print(hasattr(torch.Tensor, "send"), hasattr(torch.nn.Module, "send"))
torch.tensor([1, 2, 3, 4, 5]) * 2

# %% [markdown]
# ## `me`, the local worker
#
# Every party that can hold tensors is a **worker**. The hook creates one for you: the
# local worker, called `me`. It is the notebook you are typing into.

# %%
me = hook.local_worker
me

# %% [markdown]
# `sy.local_worker` names the same worker. `#objects:0` counts what `me` keeps on behalf
# of other workers: nothing yet.

# %%
sy.local_worker is me

# %% [markdown]
# Hooking a second time is harmless: fedlab warns and reuses the hook and its `me`.

# %%
import warnings

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    again = sy.TorchHook(torch)
print(again is hook, "-", caught[0].message)

# %% [markdown]
# ## A first remote worker: bob
#
# A `VirtualWorker` is a pretend machine that lives inside this Python process. It is not
# a shortcut: every request to it is encoded into bytes and decoded on the other side,
# exactly as it would be over a network. (Lesson 13 starts workers in other processes.)

# %%
bob = sy.VirtualWorker(hook, id="bob")
bob

# %% [markdown]
# Each worker has an object store: a dictionary from small integer ids to the objects it
# holds. Bob's is empty, because nobody has sent him anything yet.

# %%
bob._objects

# %% [markdown]
# Jupyter lets you run a cell twice. Creating `bob` again gives you back the same bob
# rather than a second worker with the same name, which would confuse everyone:

# %%
sy.VirtualWorker(hook, id="bob") is bob

# %% [markdown]
# Every worker of this session, in the order they were made:

# %%
alice = sy.VirtualWorker(hook, id="alice")
sy.all_workers()

# %% [markdown]
# ## Summary
#
# - `sy.TorchHook(torch)` adds `send`, `get`, `move`... to torch and changes nothing else.
# - `me` (`hook.local_worker`) is this notebook; `sy.VirtualWorker(hook, id="bob")` is bob.
# - Every worker has a store, `bob._objects`: the objects it holds, by id.
#
# ## Check yourself
#
# **1.** After hooking, does `torch.tensor([1, 2]) + 1` send anything to anyone?
#
# <details><summary>Answer</summary>
#
# No. The hook only adds methods; ordinary tensors compute here, as before. Only a
# tensor you `send` lives elsewhere.
#
# </details>
#
# **2.** You run `bob = sy.VirtualWorker(hook, id="bob")` twice. How many bobs are there?
#
# <details><summary>Answer</summary>
#
# One: the second call gives back the same worker, with the same store.
#
# </details>
#
# The graded exercises start after lesson 4: [exercise 1, remote tensors](../exercises/01-remote-tensors.ipynb).
#
# ## What to try next
#
# - Create a worker called `carol` and check that `sy.all_workers()` lists her.
# - Try `sy.VirtualWorker(hook, id="")`: what does the error say?
# - Go on to [lesson 3](03-basic-remote-execution.ipynb): send bob a tensor.
