# %% [markdown]
# # 9. Advanced remote execution: pointers to pointers
#
# **What you will learn**
#
# - how to send a *pointer* to another worker, making a chain `me -> alice -> bob`;
# - that an operation on the head of a chain is forwarded along it to the data;
# - that `get()` on a chain brings back one level at a time;
# - that `del` on the head frees the whole chain.
#
# Why bother? In lesson 8 the server saw every worker's model. To average models without
# seeing them, the workers must pass data to each other, on our orders but without it
# passing through us. Chains of pointers are the first tool for that.

# %%
import torch

import fedlab as sy

hook = sy.TorchHook(torch)
bob = sy.VirtualWorker(hook, id="bob")
alice = sy.VirtualWorker(hook, id="alice")
sy.watch(bob, alice, side=True)

# %% [markdown]
# ## Sending a pointer
#
# Send a tensor to bob, then send the *pointer* to alice:

# %%
x = torch.tensor([1, 2, 3, 4, 5]).send(bob)
x = x.send(alice)
print(x)

# %% [markdown]
# Our pointer now leads to alice (`me:2 -> alice:1`). What alice holds is itself a
# pointer, to bob's tensor:

# %%
print("alice:", alice._objects)
print("bob:  ", bob._objects)

# %% [markdown]
# The tensor stayed on bob and never came near alice. `sy.draw` draws the chain: each box
# is a worker's store, each arrow goes from a pointer to what it points at.

# %%
sy.draw(x)

# %% [markdown]
# ## Operations are forwarded
#
# Use `x` as if it were a tensor. The request goes to alice; alice finds that her object
# is a pointer, so she forwards the request to bob, who holds the data and computes.

# %%
with sy.trace() as t:
    y = x + x
t

# %% [markdown]
# Read the trace: we ask alice to add (message 1); alice asks bob (message 2); bob stores
# the sum and tells alice its id (3); alice stores a pointer to it and tells us *her*
# id (4). So `y` is a chain too, just like `x`:

# %%
print(y)
print("alice:", alice._objects)
print("bob:  ", bob._objects)

# %%
sy.draw(x, y)

# %% [markdown]
# `sy.explain` answers the question "why does bob still hold this?" by following the
# chain backwards:

# %%
at_bob = alice._objects[y.id_at_location].id_at_location  # alice's pointer knows bob's key
sy.explain(f"bob:{at_bob}")

# %% [markdown]
# ### Your turn
#
# Make a chain the other way round: the tensor `torch.tensor([7, 8, 9])` must end up on
# *alice*, and your pointer `c` must lead to *bob*, who holds a pointer to alice's
# tensor (`me -> bob -> alice`). Draw it with `sy.draw(c)` to see that it is right.

# %%
c = ...

# %%
from fedlab.viz import practice

practice.check("chain-to-alice")

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# c = torch.tensor([7, 8, 9]).send(alice).send(bob)
# ```
#
# The first `send` puts the tensor on alice and returns a pointer to it; the second
# sends that *pointer* to bob. The tensor ends where it was sent first.
#
# </details>
#
# ## `get` peels one level
#
# `get()` asks the worker our pointer leads to for its object. Alice's object is a
# pointer, so that is what we get: a pointer from us straight to bob. Alice's entry is
# handed over to us, not copied, so she forgets it.

# %%
y = y.get()
print(y)
print("alice:", alice._objects)
print("bob:  ", bob._objects)

# %% [markdown]
# A second `get` reaches the tensor itself:

# %%
y = y.get()
print(y)
print("bob:  ", bob._objects)

# %% [markdown]
# ## `del` frees the whole chain
#
# When the head of a chain dies, our pointer tells alice to delete her object. That
# object is a pointer too, so as it dies it tells bob to delete his. One `del` cleans
# every worker along the chain:

# %%
del x
print("alice:", alice._objects)
print("bob:  ", bob._objects)

# %% [markdown]
# ## Summary
#
# - Sending a pointer makes a chain: `me -> alice -> bob`; the data stays at the end.
# - Operations on the head are forwarded along the chain; results form a chain too.
# - `get` peels one level at a time; `del` on the head frees every level.
#
# ## Check yourself
#
# **1.** `x = torch.tensor([1]).send(bob).send(alice)`. Which worker holds the number 1?
#
# <details><summary>Answer</summary>
#
# Bob. Alice holds a pointer to bob's tensor, and `x` points to alice's pointer.
#
# </details>
#
# **2.** On that chain, what does one `x.get()` return?
#
# <details><summary>Answer</summary>
#
# Alice's object, which is a pointer: you now hold a pointer straight to bob's tensor,
# and alice forgets hers. A second `get` brings the tensor itself.
#
# </details>
#
# **Graded exercise:** [exercise 5, pointer chains](../exercises/05-pointer-chains.ipynb)
# practises lessons 9 and 10.
#
# ## What to try next
#
# - Build a chain of three: `torch.tensor([1, 2]).send(bob).send(alice).send(carol)`
#   (create `carol` first). Draw it and `get` it level by level.
# - Try `x.send(bob)` on a pointer that already leads to bob. What does the error say?
# - Go on to [lesson 10](10-pointer-chain-operations.ipynb): `move` and `remote_get`,
#   which move the data itself along the chain.
