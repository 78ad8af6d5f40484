# %% [markdown]
# # 1. Introducing federated learning
#
# **What you will learn**
#
# - the one-sentence idea: bring the model to the data, and let only updates travel;
# - where this is used today;
# - why the data usually cannot simply be copied to one place.
#
# This lesson has almost no code. The next ones put the idea into practice.

# %% [markdown]
# ## The idea
#
# Ordinary deep learning starts by collecting every example on one machine and training
# there. Federated learning turns this around. The data stays on the devices or servers
# that produced it. A model is sent to each of them, trains for a little while on the
# local data, and only the *change* to the model (an update: new weights or gradients)
# is sent back. A coordinator combines the updates into a better model and sends it out
# again. The raw examples never leave home.
#
# The figure below draws both ways of working.

# %%
from fedlab.viz.lesson_figures import data_or_model

data_or_model()

# %% [markdown]
# ## Where it is used
#
# - **Keyboard prediction.** A phone keyboard learns which word you will type next from
#   what people actually type, without the messages leaving the phones.
# - **Predictive maintenance.** Engines, turbines and cars record sensor data that shows
#   when a part is about to fail. Each operator keeps its logs; a shared model learns from
#   all fleets.
# - **Wearable medical devices.** Heart-rate or glucose readings are very personal. A model
#   can learn from thousands of patients while each reading stays on the patient's device.
# - **Browsers.** Ranking address-bar suggestions or spotting trackers can be learned from
#   browsing behaviour that never leaves the browser.

# %% [markdown]
# ## Why not pool the data?
#
# | reason | what stops the copy |
# | --- | --- |
# | privacy | people do not want their messages or health records on a stranger's server |
# | law | rules such as the GDPR or HIPAA limit moving personal data, even across borders |
# | competition | rivals will not share their data, yet all gain from a better model |
# | bandwidth and storage | the raw data can be far larger than a model update |
#
# The last point is easy to put numbers on. Take a keyboard model with 1.4 million
# parameters, and a million phones that each hold 20 MB of typed text and other signals.
# Pooling uploads all the data once. Federated learning uploads one update per phone
# that takes part, in every *round* (a round: the model goes out, is trained, and the
# updates come back to be combined), and training takes many rounds:

# %%
phones = 1_000_000
data_per_phone = 20e6  # bytes of raw data on one phone
update = 1_400_000 * 4  # one float32 per parameter: bytes of one update

pooled = phones * data_per_phone
everyone = phones * update  # a round in which every phone takes part
print(f"pooling the data, once:            {pooled / 1e12:7.1f} TB")
print(f"one round with every phone:        {everyone / 1e12:7.1f} TB")
print(f"  more than pooling after {pooled / everyone:.1f} such rounds")

sampled, rounds = 1_000, 1_000  # phones asked to take part in a round; rounds of training
print(f"one round with {sampled:,} sampled phones: {sampled * update / 1e12:7.4f} TB")
print(f"{rounds:,} such rounds:                {rounds * sampled * update / 1e12:7.1f} TB")

# %% [markdown]
# So bandwidth alone is no clear win. If every phone joined every round, the updates
# would outweigh the data after a handful of rounds. Real systems therefore *sample*:
# each round asks only a few thousand of the phones that are idle, charging and on
# Wi-Fi: a thousand rounds of a thousand phones send less than pooling would, each phone
# uploads a few megabytes now and then, and no server ever has to
# store, secure and keep up to date 20 TB of people's typing (which also grows every
# day). The decisive reasons are usually the first three rows of the table.
#
# An update is smaller, but it is not automatically private either: an update can
# reveal something about the data it was computed from. Later lessons show who gets to
# see which update, and how to hide the individual ones.

# %% [markdown]
# ## Summary
#
# - Federated learning brings the model to the data; only updates travel back.
# - It is used where data is personal, regulated, competitive, or too big to gather.
# - Updates are not free (they are sent every round) and not automatically private.
#
# ## Check yourself
#
# **1.** In federated learning, what leaves a phone: its examples, or something else?
#
# <details><summary>Answer</summary>
#
# Only an update to the model (new weights or gradients), computed on the phone from
# its examples. The examples themselves stay on the phone.
#
# </details>
#
# **2.** Why can federated learning send *more* bytes in total than pooling the data once?
#
# <details><summary>Answer</summary>
#
# An update is sent in every round, and training takes many rounds. With every phone in
# every round, the updates outweigh the pooled data after a few rounds; sampling a few
# thousand phones per round keeps the traffic small.
#
# </details>
#
# **3.** A hospital cannot send patient scans abroad. Which row of the table applies?
#
# <details><summary>Answer</summary>
#
# Law (and privacy): rules such as the GDPR limit moving personal data across borders.
#
# </details>
#
# The graded exercises start after lesson 4: [exercise 1, remote tensors](../exercises/01-remote-tensors.ipynb).
#
# ## What to try next
#
# - Change `sampled` to 10,000. After how many rounds have the updates outweighed
#   pooling the data once?
# - Think of one dataset you know that could not be pooled. Which reason in the table
#   applies?
# - Go on to [lesson 2](02-setting-up.ipynb) to set up fedlab and meet your first worker.
