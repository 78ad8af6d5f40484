# %% [markdown]
# # 17. Fixed precision encoding by hand
#
# **What you will learn**
#
# - how to keep decimal numbers as integers, with a fixed number of digits after the
#   point, so that secret sharing can work on model weights;
# - how negative numbers live in the "top half" of the numbers modulo Q;
# - why a product needs one more step, the *truncation*;
# - how precise the encoding is, and where it runs out of room.
#
# Lesson 16 shared integers. Gradients and weights are decimals like 0.0371, so we need
# a way to write them as integers first.

# %%
import random

import matplotlib.pyplot as plt

random.seed(0)
Q = 23740629843760239486723


def encrypt(x, n_share=3):
    """Lesson 16's sharing: random shares, the last one completing the sum modulo Q."""
    shares = [random.randrange(Q) for _ in range(n_share - 1)]
    shares.append((x - sum(shares)) % Q)
    return tuple(shares)


def decrypt(shares):
    """The sum of the shares, modulo Q."""
    return sum(shares) % Q


def add(a, b):
    """Every party adds its two shares."""
    return tuple((a_i + b_i) % Q for a_i, b_i in zip(a, b))


# %% [markdown]
# ## Encode and decode
#
# Choose a base and a number of digits to keep after the point (the course's values):
# a decimal is stored as the integer `x * BASE**PRECISION`, taken modulo Q like every
# share.

# %%
BASE = 10
PRECISION = 4


def encode(x):
    """A decimal as the nearest integer with PRECISION digits after the point, modulo Q."""
    return round(x * BASE**PRECISION) % Q


def decode(x):
    """Back to a decimal; numbers in the top half of [0, Q) stand for negative ones."""
    return (x if x <= Q / 2 else x - Q) / BASE**PRECISION


encode(3.5)

# %%
decode(35000)

# %% [markdown]
# A negative number wraps around: -1.5 is stored as Q - 15000, a number in the top
# half, and `decode` brings it back. This is why the shares of lesson 16 could hide
# negative results: "Q - 2" simply means -2.

# %%
print(encode(-1.5))
print(decode(encode(-1.5)))

# %% [markdown]
# The course wrote `encode` as `int((x * BASE**PRECISION) % Q)`. That takes the modulo
# of a *float*, and a float cannot hold a number as large as Q exactly: for -1.5 it is
# off by thousands, and decodes to nonsense. Rounding to an integer first and taking
# the modulo in exact integer arithmetic, as above, avoids it.

# %%
course_encode = int((-1.5 * BASE**PRECISION) % Q)
print(course_encode, "->", decode(course_encode))

# %% [markdown]
# Encoded numbers can be shared and added like any integers: the course's example adds
# 5.5 and 2.3 without anyone seeing either.

# %%
x = encrypt(encode(5.5))
y = encrypt(encode(2.3))
z = add(x, y)
decode(decrypt(z))

# %% [markdown]
# ## How precise is it?
#
# Four digits after the point: every number becomes a multiple of 0.0001. Cutting the
# extra digits off (the course's `int`) errs by up to one step; rounding to the nearest
# multiple (our `encode`, and fedlab's `fix_precision`) by half a step. The picture shows
# the error of both for numbers between 0 and 0.0005:

# %%
xs = [i * 0.000_002 for i in range(251)]
cut = [int(v * BASE**PRECISION) / BASE**PRECISION - v for v in xs]
rounded = [decode(encode(v)) - v for v in xs]
fig, ax = plt.subplots(figsize=(7, 2.6))
ax.plot(xs, cut, label="cut off (the course's int)", color="#2563eb")
ax.plot(xs, rounded, label="rounded (encode, fix_precision)", color="#dc2626")
ax.axhline(0, color="#9ca3af", lw=0.8)
ax.set(xlabel="x", ylabel="decoded - x", title="The encoding error stays below one step")
ax.legend(loc="lower left", fontsize=8)
plt.show()

# %% [markdown]
# ## A product needs a truncation
#
# Adding two encoded numbers adds the integers, and the scale stays 10,000. Multiplying
# them multiplies the scales too: 1.5 * 2.5 becomes 15000 * 25000 = 375,000,000, which
# decodes to 37500 instead of 3.75.

# %%
a, b = encode(1.5), encode(2.5)
decode(a * b % Q)

# %% [markdown]
# The product is at scale 10,000 * 10,000, so dividing it by 10,000 once brings it back
# to our scale. That division, which drops the extra digits, is the *truncation*. Which
# way does it drop them? Like fedlab, we take the *floor* (Python's `//`), the nearest
# step below: 7.5 steps become 7, and -7.5 steps become -8.
#
# ### Your turn
#
# Write `mul(a, b)`: from two encoded (not shared) numbers, positive or negative, the
# encoding of their product. Careful with negative numbers: turn them back into signed
# integers first (a number above Q / 2 stands for that number minus Q). Then multiply,
# truncate with `// BASE**PRECISION`, and take the result modulo Q. Stay with integers
# throughout: the check tries large numbers too, where a float would round.


# %%
def mul(a, b):
    """The encoding of decode(a) * decode(b), from two encoded numbers."""
    # your code here


# %%
from fedlab.viz import practice

practice.check("fixed-precision-product")

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def mul(a, b):
#     """The encoding of decode(a) * decode(b), from two encoded numbers."""
#     signed_a = a if a <= Q / 2 else a - Q  # back to signed integers
#     signed_b = b if b <= Q / 2 else b - Q
#     product = signed_a * signed_b  # at scale BASE**(2 * PRECISION)
#     return (product // BASE**PRECISION) % Q  # back to our scale, then modulo Q
# ```
#
# On *shared* numbers the truncation is harder: the parties cannot divide their shares
# one by one and expect the sum to be right (the sum wraps around Q). Lesson 18 shows how
# fedlab does it with help from the crypto provider.
# </details>

# %% [markdown]
# ## The room left
#
# Modulo Q, numbers up to Q/2 / 10^4 (about 10^18) fit. fedlab keeps shares in 64-bit
# integers instead, modulo 2**64, with 3 digits by default: values up to about 9 * 10^15,
# but a product must fit before its truncation, so |a * b| must stay below about
# 9 * 10^12. Model weights, gradients and normalised data are far from that.
#
# ## Summary
#
# - A decimal is stored as the integer x * BASE**PRECISION; negative numbers are the top
#   half of the ring, and decoding is sign-aware.
# - Sums need nothing more; a product is at twice the scale and must be truncated back.
# - Precision is one unit in the last kept digit (half of it when rounding).
#
# ## Check yourself
#
# **1.** With BASE 10 and PRECISION 2, what integers stand for 0.5, -0.5 and 0.125?
#
# <details><summary>Answer</summary>
#
# 50, Q - 50, and 12: 0.125 is exactly halfway between 0.12 and 0.13, and both cutting
# off and Python's `round` (which sends halves to the even neighbour) give 12.
#
# </details>
#
# **2.** Why is `encode(0.1) * encode(0.1)` not the encoding of 0.01?
#
# <details><summary>Answer</summary>
#
# It is 1000 * 1000 = 10^6, the encoding of 0.01 at scale 10^8 (twice the digits): it
# must be divided by 10^4 to be at our scale again.
#
# </details>
#
# **3.** Why does `mul` decode nothing to floats, not even at the end?
#
# <details><summary>Answer</summary>
#
# A float keeps about 16 significant digits: beyond that it rounds, and the product of
# two encoded numbers quickly has more (the course's float `encode` lost -1.5 the same
# way). Integers in Python are exact at any size, and on shares there is nothing to
# decode anyway: only the owner of all the shares could.
#
# </details>
#
# **Graded exercise:** [exercise 8, secure aggregation](../exercises/08-secure-aggregation.ipynb)
# averages three workers' models on shares; the models are encoded with
# `fix_precision()`, this lesson's encoding, before they are shared.
#
# ## What to try next
#
# - Encode with PRECISION 1 and add 0.05 to itself ten times: what happens to the sum?
# - Find the largest number whose square can be computed with `mul` before the product
#   overflows Q / 2.
# - Go on to [lesson 18](18-secret-sharing-and-fixed-precision-in-fedlab.ipynb): both
#   encodings on real workers, and multiplication of two secrets.
