# %% [markdown]
# # 16. Additive secret sharing by hand
#
# **What you will learn**
#
# - how to split a number into *shares* that each look random, and how to put it back;
# - why the shares are taken modulo a large number `Q`;
# - that the owners of the shares can add shared numbers, subtract them and multiply
#   them by a public number, without anyone seeing them;
# - what one share tells about the secret: nothing at all.
#
# In lesson 11 a secure worker averaged the models, and saw every one of them. Secret
# sharing removes the need for that trust: a number is split among several people so
# that no one of them knows it, yet together they can still compute with it. This
# lesson does it with plain Python integers; the next ones move it onto workers.

# %%
import random

import matplotlib.pyplot as plt

random.seed(0)  # the "random" shares below are the same at every run

# %% [markdown]
# ## Two shares of a secret
#
# Take the number 5. Give bob the share 2 and alice the share 3: neither knows 5, but
# their shares add up to it.

# %%
x = 5
bob_x_share = 2
alice_x_share = 3

decrypted_x = bob_x_share + alice_x_share
decrypted_x

# %% [markdown]
# The remarkable part: they can compute with the hidden number. If each doubles their
# own share, the hidden number doubles:

# %%
bob_x_share = 2 * 2
alice_x_share = 3 * 2

decrypted_x = bob_x_share + alice_x_share
decrypted_x

# %% [markdown]
# And two hidden numbers can be added, each party adding the shares it holds:

# %%
# an encrypted 5
bob_x_share, alice_x_share = 2, 3
# an encrypted 7
bob_y_share, alice_y_share = 5, 2
# an encrypted 5 + 7
bob_z_share = bob_x_share + bob_y_share
alice_z_share = alice_x_share + alice_y_share

decrypted_z = bob_z_share + alice_z_share
decrypted_z

# %% [markdown]
# ## A share must not give the secret away
#
# With small positive shares, a share leaks: if bob holds 3, he knows the secret is at
# least 3. The fix is to count *modulo* a large number `Q` (the course's choice below):
# one share is a random number between 0 and Q, the other is whatever makes the sum
# come out right, and decryption adds them modulo Q.

# %%
Q = 23740629843760239486723

x = 5
bob_x_share = 23552870267  # <- a random number
alice_x_share = Q - bob_x_share + x
alice_x_share

# %%
(bob_x_share + alice_x_share) % Q

# %% [markdown]
# Both shares are now huge, and each one, on its own, could belong to any secret. Seeing
# is believing: we share 5 and then 1,000,000 two thousand times each, and look at all
# of alice's shares. If her share said anything about the secret, the two pictures
# would differ.


# %%
def two_shares(secret):
    """Bob's share is uniformly random; alice's makes the sum (mod Q) the secret."""
    bob = random.randrange(Q)
    return bob, (secret - bob) % Q


fig, axes = plt.subplots(1, 2, figsize=(8, 2.6), sharey=True)
for ax, secret in zip(axes, [5, 1_000_000]):
    alices = [two_shares(secret)[1] / Q for _ in range(2000)]
    ax.hist(alices, bins=20, color="#dc2626", alpha=0.8)
    ax.set(title=f"alice's share of {secret:,}", xlabel="share / Q")
axes[0].set_ylabel("how often")
plt.show()

# %% [markdown]
# Flat, and the same for both secrets: a single share is uniformly random whatever the
# secret, so it carries no information about it. Only all the shares together do.
#
# ## Encrypt, decrypt, add
#
# The course's project: general functions for any number of shares, stored in a tuple
# (one entry per party).


# %%
def encrypt(x, n_share=3):
    """Split x into n_share shares: all random but the last, which completes the sum."""
    shares = [random.randrange(Q) for _ in range(n_share - 1)]
    shares.append((x - sum(shares)) % Q)
    return tuple(shares)


def decrypt(shares):
    """Put a secret back together: the sum of its shares, modulo Q."""
    return sum(shares) % Q


def add(a, b):
    """Add two shared numbers: every party adds the two shares it holds."""
    return tuple((a_i + b_i) % Q for a_i, b_i in zip(a, b))


shares = encrypt(3)
print(shares)
print(decrypt(shares))

# %%
x = encrypt(5)
y = encrypt(7)
z = add(x, y)
decrypt(z)

# %% [markdown]
# Notice what `add` needs: each party uses only the shares it holds, and nobody sends
# anything to anybody. Additions are free.
#
# ## Subtraction and public multiplication
#
# Two more operations need no communication either (the course's *Encrypted Subtraction
# and Public/Scalar Multiplication*): to subtract, every party subtracts its share of b
# from its share of a; to multiply by a public number, every party multiplies its own
# share by it. Always modulo Q, so that every share stays between 0 and Q.
#
# ### Your turn
#
# Write `sub(a, b)`, the shares of a - b, and `imul(a, scalar)`, the shares of a times a
# public integer, both in the style of `add`: a tuple with one share per party, each
# computed from that party's own shares only. Then run the check: it shares numbers of
# its own and compares your shares with the ones each party should get.


# %%
def sub(a, b):
    """The shares of a - b."""
    # your code here


def imul(a, scalar):
    """The shares of a * scalar, for a public integer scalar."""
    # your code here


# %%
from fedlab.viz import practice

practice.check("share-arithmetic")

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def sub(a, b):
#     """The shares of a - b."""
#     return tuple((a_i - b_i) % Q for a_i, b_i in zip(a, b))
#
#
# def imul(a, scalar):
#     """The shares of a * scalar, for a public integer scalar."""
#     return tuple((a_i * scalar) % Q for a_i in a)
# ```
#
# A negative result, like `decrypt(sub(encrypt(5), encrypt(7)))`, comes out as `Q - 2`:
# the "top half" of the numbers modulo Q stands for the negative ones. Lesson 17 decodes
# them. (Decrypting a and b and sharing their difference again would give the right
# number too, but then someone has seen the secrets: the check refuses it.)
# </details>

# %% [markdown]
# ## Summary
#
# - A secret is split into shares that add up to it modulo Q; each share alone is
#   uniformly random, so it says nothing about the secret.
# - Adding, subtracting and multiplying by a public number work share by share, with no
#   message between the parties.
# - Decrypting needs *all* the shares: any one party, or any group missing one, learns
#   nothing.
#
# ## Check yourself
#
# **1.** Bob holds the share 17 of a secret shared among bob, alice and carol modulo Q.
# What can he say about the secret?
#
# <details><summary>Answer</summary>
#
# Nothing: for every possible secret there are shares for alice and carol that make the
# sum come out right, and they are all equally likely.
#
# </details>
#
# **2.** Why can't the parties multiply two *shared* numbers the same way, share by share?
#
# <details><summary>Answer</summary>
#
# (a1 + a2)(b1 + b2) = a1 b1 + a1 b2 + a2 b1 + a2 b2: the cross terms need one party's
# share of a with another party's share of b, which neither may see. Lesson 18 shows how
# a third party's random numbers (a "Beaver triple") solve it.
#
# </details>
#
# **3.** Why are the shares taken modulo Q, instead of being small positive numbers?
#
# <details><summary>Answer</summary>
#
# A small positive share gives the secret away in part: holding 3 of a sum means the
# secret is at least 3. Modulo Q, one share is uniformly random between 0 and Q whatever
# the secret (the two flat histograms above), so it tells nothing.
#
# </details>
#
# **Graded exercise:** [exercise 8, secure aggregation](../exercises/08-secure-aggregation.ipynb)
# averages three workers' models on shares: the additions it needs are this lesson's,
# done by fedlab on workers (lessons 18 and 19).
#
# ## What to try next
#
# - Share a secret among 10 parties and check that any 9 shares decrypt to garbage.
# - Replace `random.randrange(Q)` by `random.randrange(100)` in `two_shares` and redraw
#   the histograms: what does alice's share now reveal?
# - Go on to [lesson 17](17-fixed-precision-encoding.ipynb): shares are integers, but model
#   weights are not.
