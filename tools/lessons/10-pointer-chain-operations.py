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
sy.watch(bob, alice)

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
print("bob:  ", bob._objects)
print("alice:", alice._objects)

# %% [markdown]
# `remote_get` asks alice to do a `get` on *her* pointer: she fetches the tensor from
# bob, and keeps it under the same id. Our pointer is unchanged and still valid, but now
# it leads directly to data.

# %%
with sy.trace() as t:
    x.remote_get()
print(x)
print("bob:  ", bob._objects)
print("alice:", alice._objects)

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
# Alice's store is empty: a move hands the object over, it does not leave a copy behind.
# (The original course showed a leftover tensor on alice at this point and called it a
# garbage collection issue; in fedlab the worker that gives an object away forgets it.)
# And when we drop the pointer, bob frees the tensor:

# %%
del x
print("bob:  ", bob._objects)
print("alice:", alice._objects)

# %% [markdown]
# ## What to try next
#
# - Create `carol`, send a tensor to bob and `move` it to alice and then to carol. Trace
#   the whole journey and draw it with `t.draw()`.
# - Call `remote_get()` on a pointer that leads straight to a tensor. What does the error
#   suggest instead?
# - Go on to [lesson 11](11-federated-learning-with-a-trusted-aggregator.ipynb): use
#   `move` to average models on a trusted worker.
