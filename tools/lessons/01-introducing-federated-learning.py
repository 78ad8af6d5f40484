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
import matplotlib.pyplot as plt

owners = {"phone": 1.5, "hospital": 5.0, "car": 8.5}
server_box = {"boxstyle": "round", "fc": "#dde8f5", "ec": "#3366aa"}
owner_box = {"boxstyle": "round", "fc": "#f5ecd9", "ec": "#aa7a22"}
ways = [
    ("Centralised: the data travels", [("raw data", "#aa3333", "up")]),
    ("Federated: the model travels", [("model", "#337733", "down"), ("update", "#aa3333", "up")]),
]

fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
for ax, (title, flows) in zip(axes, ways):
    ax.set(title=title, xlim=(0, 10), ylim=(0, 6.2))
    ax.axis("off")
    ax.text(5, 5.3, "server", ha="center", va="center", bbox=server_box)
    for name, x in owners.items():
        ax.text(x, 0.8, f"{name}\n(its data)", ha="center", va="center", bbox=owner_box)
        for i, (_, colour, direction) in enumerate(flows):
            shift = 0.35 * (i - (len(flows) - 1) / 2)  # side by side when two things travel
            low, high = (x + shift, 1.5), (5 + shift / 2, 4.8)
            start, end = (low, high) if direction == "up" else (high, low)
            ax.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "-|>", "color": colour})
    ax.legend(
        handles=[plt.Line2D([], [], color=colour, label=label) for label, colour, _ in flows],
        loc="upper left",
        frameon=False,
        fontsize=9,
    )
fig.tight_layout()
plt.show()

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
# parameters, and phones that each hold 20 MB of typed text and other signals:

# %%
phones = 1_000_000
data_per_phone = 20e6  # bytes of raw data on one phone
model_parameters = 1_400_000
update = model_parameters * 4  # one float32 per parameter

print(f"pooling the data uploads   {phones * data_per_phone / 1e12:6.1f} TB")
print(f"one round of updates sends {phones * update / 1e12:6.1f} TB")
print(f"an update is {data_per_phone / update:.1f} times smaller than one phone's data")

# %% [markdown]
# An update is smaller, but it is not free, and it is not automatically private either:
# an update can reveal something about the data it was computed from. Later lessons
# show who gets to see which update, and how to hide the individual ones.
#
# ## What to try next
#
# - Change `data_per_phone` to the size of a photo library and compare again.
# - Think of one dataset you know that could not be pooled. Which reason in the table
#   applies?
# - Go on to [lesson 2](02-setting-up.ipynb) to set up fedlab and meet your first worker.
