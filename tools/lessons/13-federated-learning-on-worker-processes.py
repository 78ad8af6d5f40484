# %% [markdown]
# # 13. Federated learning on worker processes
#
# **What you will learn**
#
# - how to run bob and alice as real processes instead of objects in this notebook;
# - that the code of lesson 8 runs unchanged on them, with the same results;
# - what a real process boundary costs: every message now crosses it.
#
# So far every worker lived in this notebook's Python process. fedlab already encoded
# every message to bytes, as a network would carry it, but the bytes never left the
# process. Here each worker is its own process, started with [Ray](https://www.ray.io)
# (`pip install "fedlab[ray]"`). The same calls also reach workers on other machines of a
# Ray cluster: there, each data owner runs `fedlab worker --id bob --data bob.pt` and
# the notebook calls `bob = sy.connect("bob")`.

# %%
import time
from statistics import median

import torch
from torch import nn, optim

import fedlab as sy

hook = sy.TorchHook(torch)
bob, alice = sy.spawn_workers("bob", "alice")
print(bob, alice)

# %% [markdown]
# `sy.spawn_workers` started a local Ray runtime and one process per worker. `bob` is a
# `RayWorker`: this notebook's handle on the process that *is* bob. You use it exactly
# like a `VirtualWorker`.
#
# ## Lesson 8, on two processes
#
# The same toy data, the same seed, the same model and optimizer as lesson 8. Bob holds
# the first two rows, alice the last two.

# %%
data = torch.tensor([[1.0, 1], [0, 1], [1, 0], [0, 0]])
target = torch.tensor([[1.0], [1], [0], [0]])

data_bob, target_bob = data[0:2].send(bob), target[0:2].send(bob)
data_alice, target_alice = data[2:4].send(alice), target[2:4].send(alice)
datasets = [(data_bob, target_bob), (data_alice, target_alice)]

torch.manual_seed(0)
model = nn.Linear(2, 1)
opt = optim.SGD(params=model.parameters(), lr=0.1)
print(bob, alice)


# %%
def train_federated(datasets, iterations=20):
    """Send the model to each worker in turn, train one step there, bring it back."""
    losses = {}
    for _ in range(iterations):
        for data_ptr, target_ptr in datasets:
            model.send(data_ptr.location)  # the model goes to the data
            opt.zero_grad()
            loss = ((model(data_ptr) - target_ptr) ** 2).sum()
            loss.backward()
            opt.step()
            model.get()  # the trained model comes back
            losses.setdefault(data_ptr.location.id, []).append(loss.get().item())
    return losses


losses = train_federated(datasets)
for name, values in losses.items():
    print(f"{name:5}: first loss {values[0]:.2e}, last loss {values[-1]:.2e}")
print(model.weight.data, model.bias.data)


# %% [markdown]
# These are the numbers lesson 8 printed: the workers ran the very same torch code,
# only in other processes. (fedlab gives each worker process as many torch threads as
# this notebook has, so even the rounding is the same.)
#
# ## What the process boundary costs
#
# Every `send`, operation, `get` and `delete` is now a message to another process. Let us
# count the messages of one training round and time them, then do the same round with
# in-process workers. The live views and `sy.trace` see remote workers too: their
# events travel back with each reply.


# %%
def one_round(datasets):
    """Record the messages of one federated round (both workers visited once)."""
    log = []
    with sy.subscribe(log.append):
        train_federated(datasets, iterations=1)
    return [e for e in log if isinstance(e, sy.events.Exchange)]


local_bob = sy.VirtualWorker(hook, id="local_bob")
local_alice = sy.VirtualWorker(hook, id="local_alice")
local_datasets = [
    (data[0:2].send(local_bob), target[0:2].send(local_bob)),
    (data[2:4].send(local_alice), target[2:4].send(local_alice)),
]
one_round(datasets), one_round(local_datasets)  # warm up both
remote = one_round(datasets)
local = one_round(local_datasets)
print("messages per round:", len(remote), "requests, each with a reply")
print("bytes per round:   ", sum(e.nbytes + e.reply_nbytes for e in remote))
print("same messages in process:", [e.kind for e in local] == [e.kind for e in remote])


# %% [markdown]
# The messages are the same, byte for byte. Only their journey differs. Each event is one
# *exchange*, a request and its reply, and carries `elapsed`, the time from the request
# leaving here to the reply arriving; here are the medians (your numbers will differ, so
# this cell's output is not checked):


# %% tags=["nbval-ignore-output"]
def median_ms(events):
    return 1000 * median(e.elapsed for e in events)


remote_ms, local_ms = median_ms(remote), median_ms(local)
print(f"median message, in this process : {local_ms:8.3f} ms")
print(f"median message, worker processes: {remote_ms:8.3f} ms")
print(f"a process boundary makes a message about {remote_ms / local_ms:.0f} times slower")

start = time.perf_counter()
train_federated(datasets, iterations=10)
print(f"10 rounds on worker processes: {time.perf_counter() - start:.2f} s")
start = time.perf_counter()
train_federated(local_datasets, iterations=10)
print(f"10 rounds in this process:     {time.perf_counter() - start:.2f} s")

# %% [markdown]
# A message between processes costs around a millisecond, tens of times more than in
# one process, because the bytes go through Ray to another process's memory and back,
# and each side must wake up. Federated learning pays this for every small operation, so
# real systems send few, large messages: a whole local training epoch per visit, not
# one operation at a time. Lesson 12's FedAvg does exactly that.
#
# The workers still hold only their data; the model is back here:

# %%
print(bob, alice)
print("model.location:", model.location)

# %% [markdown]
# ### Your turn
#
# Bob is a process now, but you talk to him exactly as before. Send
# `torch.tensor([1.0, 2.0, 3.0])` to him, double it there, and bring the result back
# into `doubled`.

# %%
doubled = ...

# %%
from fedlab.viz import practice

practice.check("process-round-trip")

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# doubled = (torch.tensor([1.0, 2.0, 3.0]).send(bob) * 2).get()
# ```
#
# Three messages to bob's process and back: the send, the multiplication, and the
# fetch (and a delete when the pointer to the first tensor dies).
#
# </details>
#
# ## Stopping the workers
#
# `sy.shutdown_workers()` stops the processes this notebook started (and the local Ray
# runtime). It also happens by itself when the kernel stops, so no process is left behind.
# If a worker process dies while you use it, the next message to it raises
# `WorkerDiedError` naming the worker, within a bounded time; the other workers keep
# their objects, and `sy.spawn_workers("bob")` starts bob again, with an empty store.

# %%
sy.shutdown_workers()
print([w.id for w in sy.all_workers()])

# %% [markdown]
# ## Summary
#
# - `sy.spawn_workers("bob", "alice")` starts each worker as its own process (Ray).
# - The same code runs unchanged on them, with the same results, bit for bit.
# - Every message now crosses a process boundary: fewer, larger messages pay off.
#
# ## Check yourself
#
# **1.** Lesson 8's code gave the same losses on worker processes. Why is that expected?
#
# <details><summary>Answer</summary>
#
# The workers run the same torch operations on the same values, in the same order, with
# the same number of threads; only where the bytes travel changed.
#
# </details>
#
# **2.** Why does a training step cost much more on worker processes than in one process?
#
# <details><summary>Answer</summary>
#
# Each of its dozens of messages now crosses to another process and back (about a
# millisecond each) instead of a function call inside one process.
#
# </details>
#
# **Graded exercise:** the exercises run on in-process workers; [exercise 3, federated
# learning](../exercises/03-federated.ipynb) is the same algorithm as this lesson's.
#
# ## What to try next
#
# - Spawn four workers and split the data four ways. How does the time per round grow?
# - Kill bob's process in the middle of training (`import os, signal;
#   os.kill(bob.ping()[0], signal.SIGKILL)`) and read the error. What does alice still hold?
# - On a cluster: `ray start --head` on one machine, `ray start --address=...` and
#   `fedlab worker --id bob --data bob.pt` on another, then `sy.connect("bob")` and
#   `bob.data()` in the notebook.
# - Go on to [lesson 14](14-plans.ipynb): plans, which send a whole training step to a
#   worker as one message.
