# %% [markdown]
# # 7. Garbage collection and common errors
#
# **What you will learn**
#
# - that a remote object lives exactly as long as a pointer to it: `del`, rebinding a
#   name and loops all free bob's copy;
# - why a pointer that Jupyter has *displayed* stays alive, and how to find and release
#   what keeps it;
# - the errors you will meet most often when mixing tensors from different places, and
#   how to fix each.

# %%
import torch

import fedlab as sy

hook = sy.TorchHook(torch)
bob = sy.VirtualWorker(hook, id="bob")
alice = sy.VirtualWorker(hook, id="alice")
sy.watch(bob, alice, side=True)

# %% [markdown]
# ## A pointer owns its remote object
#
# When you `send` a tensor, the pointer you get back is responsible for bob's copy. Its
# flag `garbage_collect_data` says so:

# %%
x = torch.tensor([1, 2, 3, 4, 5]).send(bob)
print(bob._objects)
print(x.garbage_collect_data)

# %% [markdown]
# When Python destroys the pointer, the pointer sends bob a *delete* message. `del`
# destroys it (if nothing else refers to it):

# %%
del x
print(bob._objects)

# %% [markdown]
# Rebinding the name has the same effect: the old pointer is no longer referenced, so
# it dies and bob deletes the tensor.

# %%
x = torch.tensor([1, 2, 3, 4, 5]).send(bob)
print(bob._objects)
x = "something else"
print(bob._objects)

# %% [markdown]
# A loop rebinds its variable on every pass. Send a tensor a thousand times and bob
# still ends up with exactly one: the last one, which `x` still points to.

# %%
for _ in range(1000):
    x = torch.tensor([1, 2, 3, 4, 5]).send(bob)
print(bob._objects)

# %% [markdown]
# The id keeps counting (each send got a new one), but every earlier tensor was deleted
# as soon as its pointer was replaced. (`get` and `move` are the exceptions: they hand
# the object over instead of deleting it, as lessons 3 and 10 showed.)

# %%
del x
print(bob._objects)

# %% [markdown]
# ## A displayed pointer stays alive
#
# Now the surprise. Send a tensor, and let Jupyter *display* the pointer by making it
# the last line of the cell:

# %%
x = torch.tensor([1, 2, 3, 4, 5]).send(bob)
x

# %% [markdown]
# Note bob's key for it, then delete `x` as before...

# %%
key = f"bob:{x.id_at_location}"  # "bob:" and its id in bob's store
del x
print(bob._objects)

# %% [markdown]
# ...and bob keeps the tensor. The original course took this for a bug. It is not: the
# pointer is still referenced, so it is still alive. `sy.explain` names who holds it:

# %%
sy.explain(key)

# %% [markdown]
# Jupyter (IPython, to be exact) keeps every value that a cell displays: in the
# dictionary `Out`, numbered like the cell's `Out[...]` prompt, and the last three also in
# the variables `_`, `__` and `___`. That is useful for getting back at an earlier result,
# but it means a displayed pointer never dies on its own.
#
# Three ways to live with it:
#
# - `print(x)` instead of displaying `x`: printing keeps no reference;
# - empty the output history with `%reset -f out`, or with `%fedlab forget`, which also
#   clears `_`, `__` and `___` everywhere IPython keeps them;
# - or empty a worker's store outright: `bob.clear_objects()`.

# %%
# %load_ext fedlab
# %fedlab forget
print(bob._objects)

# %% [markdown]
# ### Your turn
#
# The cell below sends bob three tensors and keeps the pointers in a list. Free bob's
# copy of the *first* one only, so that he keeps the other two, without `get` and
# without `clear_objects`. Then check: did bob free it? (If not, `sy.explain` tells you
# who still holds it.)

# %%
batch = [torch.tensor([i, i, i]).send(bob) for i in range(3)]
# your code here

# %%
from fedlab.viz import practice

practice.check("free-one")

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# batch = [torch.tensor([i, i, i]).send(bob) for i in range(3)]
# del batch[0]
# ```
#
# The list held the only reference to the first pointer: removing it from the list
# lets it die, and a dying pointer tells bob to delete his copy. (`batch[0] = None`
# works too.)
#
# </details>
#
# ## Common error 1: a pointer and a local tensor
#
# An operation needs all its tensors in one place. Here `x` lives on bob and `y` here:

# %% tags=["raises-exception"]
x = torch.tensor([1, 2, 3, 4, 5]).send(bob)
y = torch.tensor([1, 1, 1, 1, 1])
z = x + y

# %% [markdown]
# The error names both tensors and both fixes. Either send `y` to bob (the result stays
# on bob), or bring `x` home (if you may see its values):

# %%
z = x + y.send(bob)
print(z.get())

# %% [markdown]
# ## Common error 2: tensors on two different workers
#
# Now `x` is on bob and `y` on alice:

# %% tags=["raises-exception"]
y = torch.tensor([1, 1, 1, 1, 1]).send(alice)
z = x + y

# %% [markdown]
# Neither worker can see the other's tensor. Move one of them, straight from alice to
# bob (lesson 10 shows what travels), and the addition works:

# %%
y.move(bob)
z = x + y
print(z.get())

# %% [markdown]
# ## Common error 3: using a pointer after `get`
#
# `get` takes the object away from bob. If you call it without keeping the result, the
# values are lost to you, and the old pointer leads nowhere:

# %% tags=["raises-exception"]
x.get()
x + 1

# %% [markdown]
# Write `x = x.get()` so that the name refers to the tensor that came back.
#
# ## Summary
#
# - A remote object lives as long as some pointer to it: `del`, rebinding and loops free it.
# - Jupyter keeps every *displayed* value in `Out`: print pointers, or `%fedlab forget`.
# - An operation needs all its tensors on one worker: `send`, `move` or `get` them first.
#
# ## Check yourself
#
# **1.** `x = torch.tensor([1]).send(bob)` then `y = x`, then `del x`. Is bob's tensor freed?
#
# <details><summary>Answer</summary>
#
# No: `y` still refers to the same pointer, so it is alive. It is freed when `y` goes too.
#
# </details>
#
# **2.** Why did the original course see tensors on bob that no variable pointed to?
#
# <details><summary>Answer</summary>
#
# The pointers had been displayed, so IPython's output history (`Out`, `_`) still held
# them. `sy.explain("bob:ID")` names such holders; `%fedlab forget` clears them.
#
# </details>
#
# **3.** `x` is on bob and `y` on alice. Name two ways to compute `x + y`.
#
# <details><summary>Answer</summary>
#
# `y.move(bob)` (or `x.move(alice)`), so that both are on one worker; or, if you may see
# the values, `x.get() + y.get()` here.
#
# </details>
#
# **Graded exercise:** [exercise 4, the garbage collection detective](../exercises/04-gc-detective.ipynb).
#
# ## What to try next
#
# - Put `x` in a list, `keep = [x]`, then `del x`. Does bob free the tensor? Ask
#   `sy.explain`.
# - Send a tensor inside a function and return nothing. What is left on bob afterwards?
# - Go on to [lesson 8](08-toy-federated-learning.ipynb): train a model on data that
#   stays with bob and alice.
