# %% [markdown]
# # 18. Secret sharing and fixed precision in fedlab
#
# **What you will learn**
#
# - how `x.share(bob, alice, ...)` splits a tensor into random int64 shares on workers,
#   and how `.get()` puts it back together;
# - how `x.fix_prec()` encodes floats, and how the two combine;
# - how two *secret* numbers are multiplied, with a Beaver triple from a crypto provider,
#   step by step;
# - that comparisons work on secrets too, and what every party sees meanwhile.
#
# Lessons 16 and 17 did it by hand. fedlab does the same with tensors: shares are int64
# tensors in the workers' stores, and their arithmetic wraps around modulo 2**64, which
# plays the part of Q.

# %%
import torch as th

import fedlab as sy
from fedlab.viz.shared import beaver_by_hand, draw_beaver, draw_flows

hook = sy.TorchHook(th)
bob = sy.VirtualWorker(hook, id="bob")
alice = sy.VirtualWorker(hook, id="alice")
secure_worker = sy.VirtualWorker(hook, id="secure_worker")
th.manual_seed(0)  # the random shares below are the same at every run
sy.watch(bob, alice, secure_worker, side=True)

# %% [markdown]
# ## Secret sharing with `.share()`
#
# `share` splits the tensor into one share per worker and sends each its own. Bob now
# holds one int64 tensor that looks like noise:

# %%
x = th.tensor([1, 2, 3, 4, 5])
x = x.share(bob, alice, secure_worker)
bob._objects

# %% [markdown]
# What we hold is a record of where the shares are: one pointer per worker. The *crypto
# provider* is the party that helps with multiplications; we named none, so it is `me`
# (we will name one below).

# %%
x

# %% [markdown]
# `sy.draw` shows the one value split over the three workers. The panel names each
# share too: watch the same workers again to see the stores now.

# %%
sy.draw(x)

# %%
sy.watch(bob, alice, secure_worker)

# %% [markdown]
# Adding runs on the shares, each worker adding its own (lesson 16): the result is
# shared too, and `.get()` fetches the shares, adds them up and deletes them.

# %%
y = x + x
y

# %%
y.get()

# %% [markdown]
# ## Fixed precision with `.fix_prec()`
#
# `fix_prec()` (or `fix_precision()`) keeps 3 digits after the point by default:
# `x.child.child` is the integer tensor underneath.

# %%
x = th.tensor([0.1, 0.2, 0.3])
x = x.fix_prec()
x

# %%
x.child.child

# %%
y = x + x
y = y.float_prec()
y

# %% [markdown]
# ## Both together
#
# Encode, then share: the shares are of 100, 200 and 300.

# %%
x = th.tensor([0.1, 0.2, 0.3])
x = x.fix_prec().share(bob, alice, secure_worker)
y = x + x
y.get().float_prec()

# %% [markdown]
# Note who learns what: bob, alice and secure_worker never saw 0.1, 0.2 or 0.3, but
# whoever calls `.get()` sees the result in the clear. In federated learning that is the
# point: the server learns the *average* model and nothing else.
#
# ## Multiplying two secrets: a Beaver triple
#
# Two shared numbers cannot be multiplied share by share (lesson 16's question). The
# trick needs a third party, the *crypto provider*, who must not collude with the
# others. It deals a random "triple": a, b and c = a * b, each split into shares. Then
# the parties reveal eps = x - a and delta = y - b (harmless: a and b are random and
# nobody but the provider knows them), and each party computes, from public eps and
# delta and its own shares,
#
#     z_i = c_i + eps * b_i + a_i * delta    (and one party adds eps * delta)
#
# These add up to x * y, because c + eps * b + a * delta + eps * delta = x * y. Here is
# 5 * 7 between bob and alice, by hand, modulo 1000 so that the numbers stay readable:

# %%
steps = beaver_by_hand(5, 7)
draw_beaver(steps)

# %% [markdown]
# fedlab does exactly this with int64 tensors (modulo 2**64), once per multiplication;
# each triple is used once and deleted. Now name the crypto provider:

# %%
x = th.tensor([5]).share(bob, alice, crypto_provider=secure_worker)
y = th.tensor([7]).share(bob, alice, crypto_provider=secure_worker)
with sy.trace() as t:
    z = x * y
z

# %% [markdown]
# Every message is in the trace. `draw_flows` draws only those that carried a tensor:
# the triple's shares come from secure_worker, and between bob and alice travel only
# masked values (eps, delta). No message carried 5, 7 or 35:

# %%
draw_flows(t, "x * y with a Beaver triple")

# %%
print(sy.secure.carries(t, th.tensor([5])), sy.secure.carries(t, th.tensor([35])))
z.get()

# %% [markdown]
# The course's examples, on integers and on fixed-precision numbers:

# %%
x = th.tensor([1, 2, 3, 4]).share(bob, alice, crypto_provider=secure_worker)
y = th.tensor([2, -1, 1, 0]).share(bob, alice, crypto_provider=secure_worker)
print((x + y).get(), (x - y).get(), (x * y).get())

# %%
x = th.tensor([1.5, 2, 3, 4]).fix_precision().share(bob, alice, crypto_provider=secure_worker)
y = th.tensor([2, -1, 1, 0.25]).fix_precision().share(bob, alice, crypto_provider=secure_worker)
(x * y).get().float_precision()

# %% [markdown]
# A fixed-precision product is at twice the scale and must be truncated (lesson 17). On
# shares, dividing each share does not work for more than two parties, so fedlab asks
# the provider for one more random pair: r, and r divided by 1000. The parties reveal
# x + r to bob only (r hides x), bob divides it, and everyone subtracts their share of
# r / 1000. The result can be one thousandth off, like any rounding (but it is exact
# when the product has no more than 3 digits after the point, as above).
#
# ### Your turn
#
# Share `th.tensor([0.5, -1.25, 2.0])` as `my_x` and `th.tensor([4.0, 0.5, -0.75])` as
# `my_y`, both in fixed precision, between bob and alice, with secure_worker as crypto
# provider. Then, inside the `with` block, multiply them on the shares and decrypt only
# the product into `my_product` (floats, here on me). The check reads the shares in the
# workers' stores and the messages of `my_trace`.

# %%
my_x = ...  # th.tensor([0.5, -1.25, 2.0]), encoded and shared
my_y = ...  # th.tensor([4.0, 0.5, -0.75]), the same way
with sy.trace() as my_trace:
    my_product = ...  # my_x * my_y on the shares, then decrypted and decoded

# %%
from fedlab.viz import practice

practice.check("shared-product")

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# my_x = th.tensor([0.5, -1.25, 2.0]).fix_precision()
# my_x = my_x.share(bob, alice, crypto_provider=secure_worker)
# my_y = th.tensor([4.0, 0.5, -0.75]).fix_precision()
# my_y = my_y.share(bob, alice, crypto_provider=secure_worker)
# with sy.trace() as my_trace:
#     my_product = (my_x * my_y).get().float_precision()
# ```
#
# `draw_flows(my_trace, "my product")` shows the triple coming from secure_worker and
# only masked values between bob and alice. Neither `my_x` nor `my_y` was ever decrypted:
# their shares are still on bob and alice.
# </details>

# %% [markdown]
# ## Comparing two secrets
#
# `x > y` is the sign of y - x, and the sign is the top bit. The parties cannot look at
# the bits of their shares (the bits of a sum are not the sums of bits), so the provider
# deals a random r with its bits already shared; the parties reveal x + r (random to
# them), and compare it with r bit by bit, pairs of bits at a time, using Beaver
# multiplications. Nobody learns anything but their own random numbers; the result is a
# shared 0 or 1 (encoded as 0 or 1.0 in fixed precision).

# %%
with sy.trace() as t:
    bigger = x > y
print(len(t), "messages")
bigger.get().float_precision()

# %%
print((x < y).get().float_precision(), (x == y).get().float_precision())

# %% [markdown]
# Comparisons cost hundreds of messages: secure computation trades speed for privacy.
# The next lesson uses only additions, which are free.
#
# ## Summary
#
# - `x.share(bob, alice, crypto_provider=w)` keeps random int64 shares on the workers;
#   `+`, `-` and public scaling run share by share; `.get()` adds the shares up.
# - `x.fix_prec()` encodes floats as integers with 3 digits; `.float_prec()` decodes.
# - Products use a Beaver triple from the crypto provider, comparisons its random bits:
#   no message ever carries a secret, as long as the provider colludes with nobody.
#
# ## Check yourself
#
# **1.** Bob and alice revealed eps = x - a during the multiplication. Why does that not
# tell them x?
#
# <details><summary>Answer</summary>
#
# a is uniformly random and known only to the provider, so x - a is uniformly random too:
# it would look the same for any x.
#
# </details>
#
# **2.** What could secure_worker learn if alice told it what she saw during `x * y`?
#
# <details><summary>Answer</summary>
#
# x and y themselves: alice saw eps = x - a and delta = y - b, and the provider knows a
# and b. That is why the provider must not collude with any party.
#
# </details>
#
# **3.** `x + y` on two shared tensors sends no message between the parties; `x * y`
# does. Why?
#
# <details><summary>Answer</summary>
#
# A sum is the sum of the shares, so each party adds its own two (lesson 16). A product
# has cross terms, one party's share times another's, which the parties can only get
# from a Beaver triple and the masked values eps and delta.
#
# </details>
#
# **Graded exercise:** [exercise 8, secure aggregation](../exercises/08-secure-aggregation.ipynb)
# uses `fix_precision().share(..., crypto_provider=james)` and additions on shares to
# average three workers' models.
#
# ## What to try next
#
# - Share among three workers and multiply: count the messages with `sy.trace()`.
# - Compare `len(t)` for `x + y`, `x * y` and `x > y` on tensors of 10 and 1000 values.
# - Go on to [lesson 19](19-federated-learning-with-encrypted-gradient-aggregation.ipynb):
#   averaging models that nobody sees.
