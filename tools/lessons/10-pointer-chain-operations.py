# %% [markdown]
# # 10. Pointer chain operations: `move` and `remote_get`
#
# **What you will learn**
#
# - how `move` sends an object from one worker straight to another;
# - how `remote_get` makes the middle worker of a chain pull the object to itself;
# - how to check with a message trace that the data never passes through you, and that
#   nothing is left behind.

# %%
import torch

import fedlab as sy

hook = sy.TorchHook(torch)
bob = sy.VirtualWorker(hook, id="bob")
alice = sy.VirtualWorker(hook, id="alice")
sy.watch(bob, alice, side=True)

# %% [markdown]
# ## `move`: from bob to alice directly
#
# Bob holds a tensor. We want alice to hold it instead. We could `get` it and `send` it
# again, but then it would pass through us, and we may not be allowed to see it.
# `move` asks bob to send it to alice himself.

# %%
x = torch.tensor([1, 2, 3, 4, 5]).send(bob)
print(x)

with sy.trace() as t:
    x.move(alice)
print(x)

# %% [markdown]
# The pointer now leads to alice. The stores agree: bob has nothing, alice has the tensor.

# %%
print("bob:  ", bob._objects)
print("alice:", alice._objects)

# %% [markdown]
# And here is how it travelled:

# %%
t

# %%
t.draw()

# %% [markdown]
# We send bob one small *move* request (1). Bob sends the tensor to alice (2), alice
# answers with the id she stored it under (3), and bob passes that id on to us (4).
# The only message that carried the five numbers went from bob to alice. We can check it
# by listing what reached us:

# %%
for message in t:
    if message.receiver == "me":
        print(f"from {message.sender}: {message.kind} ({message.summary}, {message.nbytes} bytes)")

# %% [markdown]
# An id, nothing more. (`move` to the worker that already holds the object does nothing, and
# `move(me)` is simply `get()`.)
#
# ## `remote_get`: the middle of a chain pulls the data
#
# Now make a chain: our pointer leads to alice, whose pointer leads to bob.

# %%
del x
x = torch.tensor([1, 2, 3, 4, 5]).send(bob).send(alice)
print(x)
sy.draw(x)

# %% [markdown]
# `remote_get` asks alice to do a `get` on *her* pointer: she fetches the tensor from
# bob, and keeps it under the same id. Our pointer is unchanged and still valid, but now
# it leads directly to data.

# %%
with sy.trace() as t:
    x.remote_get()
print(x)
sy.draw(x)

# %% [markdown]
# The same pointer `me -> alice`, but alice's entry is now the tensor itself, and bob's
# store is empty. The messages:

# %%
t

# %% [markdown]
# Again the tensor went from bob to alice (message 3) and only a short description of it
# came to us.
#
# ## Moving back, and nothing left behind
#
# Finally, `move` the tensor back to bob:

# %%
with sy.trace() as t:
    x.move(bob)
print(x)
print("bob:  ", bob._objects)
print("alice:", alice._objects)

# %% [markdown]
# Alice's store is empty: a move hands the object over, it leaves no copy behind. And
# when we drop the pointer, bob frees the tensor:

# %%
del x
print("bob:  ", bob._objects)
print("alice:", alice._objects)

# %% [markdown]
# ## The course's leftover tensor
#
# At this point the original course still found a tensor on alice, and called it a
# garbage collection issue. It was not left by `move`. It was the tensor of the course's
# *first* `x.move(alice)`, whose cell ended with that call: Jupyter displayed the
# pointer it returned and kept it in its output history, `Out`, so when `x` was later
# rebound the old pointer stayed alive, and with it alice's tensor. That is lesson 7's
# [displayed pointer](07-garbage-collection-and-common-errors.ipynb). Here it is again:

# %%
x = torch.tensor([1, 2, 3, 4, 5]).send(bob)
x.move(alice)

# %%
key = f"alice:{x.id_at_location}"
x = torch.tensor([1, 2, 3, 4, 5]).send(bob).send(alice)  # rebinding x, as the course did
print("alice:", alice._objects)

# %% [markdown]
# Alice holds the moved tensor and the new chain's pointer. `sy.explain` says who keeps
# the tensor alive, and `%fedlab forget` releases it:

# %%
sy.explain(key)

# %%
# %load_ext fedlab
# %fedlab forget
del x
print("bob:  ", bob._objects)
print("alice:", alice._objects)

# %% [markdown]
# ### Your turn
#
# `v` points to a tensor on bob. Make it travel to alice, then to a new worker carol,
# without the values ever passing through you, and inside the `with` block so that the
# trace `trip` records it. At the end `v` must point to carol's tensor.

# %%
carol = sy.VirtualWorker(hook, id="carol")
v = torch.tensor([4, 5, 6]).send(bob)
with sy.trace() as trip:
    ...

# %%
from fedlab.viz import practice

practice.check("journey")

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# carol = sy.VirtualWorker(hook, id="carol")
# v = torch.tensor([4, 5, 6]).send(bob)
# with sy.trace() as trip:
#     v.move(alice)
#     v.move(carol)
# ```
#
# `trip.tensors()` lists the two messages that carried the values: bob to alice, then
# alice to carol. `v.get()` then `send` would have passed them through you.
#
# </details>

# %% [markdown]
# ## Summary
#
# - `x.move(alice)` sends the object from its location straight to alice; you get an id.
# - `x.remote_get()` makes the middle of a chain fetch the data; your pointer stays valid.
# - Neither leaves a copy behind; only a pointer kept alive (as by `Out`) keeps one.
#
# ## Check yourself
#
# **1.** Why move a tensor with `move` rather than `get` and then `send`?
#
# <details><summary>Answer</summary>
#
# With `get` and `send` the values pass through you, and you may not be allowed to see
# them; with `move` only a small request and an id pass through you.
#
# </details>
#
# **2.** After `x.remote_get()` on `me -> alice -> bob`, what does alice hold?
#
# <details><summary>Answer</summary>
#
# The tensor itself, under the id her pointer had; bob no longer holds it.
#
# </details>
#
# **Graded exercise:** [exercise 5, pointer chains](../exercises/05-pointer-chains.ipynb).
#
# ## What to try next
#
# - Create `carol`, send a tensor to bob and `move` it to alice and then to carol. Trace
#   the whole journey and draw it with `t.draw()`.
# - Call `remote_get()` on a pointer that leads straight to a tensor. What does the error
#   suggest instead?
# - Go on to [lesson 11](11-federated-learning-with-a-trusted-aggregator.ipynb): use
#   `move` to average models on a trusted worker.
