# %% [markdown]
# # Federated learning with fedlab
#
# **Federated learning** trains a model on data that you are not allowed to collect. Instead
# of bringing the data to the model, you bring the model to the data: each owner trains
# it on their own machine, and only the updated model (never the examples) travels back
# to be combined with the others.
#
# In this course you learn it by doing. fedlab lets you hold *pointers* to tensors that
# live on other workers (`bob`, `alice`, ...), run ordinary PyTorch code on them where
# they are, and see, live, what each worker holds and which messages travel.
#
# ## A taste
#
# Run the next cell (Shift+Enter). A panel appears that shows bob's store, below the cell
# and in JupyterLab's right-hand side area; the cell after it sends him a tensor, and
# the panel follows.

# %%
import torch

import fedlab as sy

hook = sy.TorchHook(torch)
bob = sy.VirtualWorker(hook, id="bob")
sy.watch(bob, side=True)

# %%
x = torch.tensor([1, 2, 3, 4, 5]).send(bob)  # x is now a pointer to bob's tensor
y = (x * 10).get()  # bob multiplies; we fetch the result
print(x)
print(y)

# %% [markdown]
# ## The course
#
# Work through the lessons in order; each one starts its own workers, so you can also
# open any of them directly. A lesson takes a few minutes to read and a few seconds to
# run (*Run > Run All Cells*).
#
# | # | lesson | the idea |
# | --- | --- | --- |
# | 1 | [Introducing federated learning](01-introducing-federated-learning.ipynb) | bring the model to the data |
# | 2 | [Setting up](02-setting-up.ipynb) | the hook, `me`, a first worker |
# | 3 | [Basic remote execution](03-basic-remote-execution.ipynb) | `send`, pointers, `get` |
# | 4 | [Remote tensors on several workers](04-remote-tensors-on-several-workers.ipynb) | multi-pointers, `sum_results` |
# | 5 | [Remote arithmetic and autograd](05-remote-arithmetic-and-autograd.ipynb) | operations and `backward()` run on bob |
# | 6 | [A linear model on bob's machine](06-learning-a-linear-model-on-bob.ipynb) | training with only tensors; zeroing gradients |
# | 7 | [Garbage collection and common errors](07-garbage-collection-and-common-errors.ipynb) | what frees a remote object, what keeps it |
# | 8 | [Toy federated learning](08-toy-federated-learning.ipynb) | a model visits bob's and alice's data |
# | 9 | [Advanced remote execution](09-advanced-remote-execution.ipynb) | pointers to pointers |
# | 10 | [Pointer chain operations](10-pointer-chain-operations.ipynb) | `move` and `remote_get` |
# | 11 | [A trusted aggregator](11-federated-learning-with-a-trusted-aggregator.ipynb) | only the average reaches the server |
# | 12 | [Federated averaging on real data](12-federated-averaging-on-real-data.ipynb) | FedAvg on handwritten digits, IID and non-IID |
# | 13 | [Federated learning on worker processes (Ray)](13-federated-learning-on-worker-processes.ipynb) | workers in their own processes |
# | 14 | [Plans: the whole training step in one message](14-plans.ipynb) | a function traced once, run on a worker in one message |
# | 15 | [Federated datasets](15-federated-datasets.ipynb) | `federate`, a loader that makes batches on the workers, `Optims` |
# | 16 | [Additive secret sharing by hand](16-additive-secret-sharing.ipynb) | shares that look random, yet add up |
# | 17 | [Fixed precision encoding by hand](17-fixed-precision-encoding.ipynb) | decimals as integers; the truncation |
# | 18 | [Secret sharing and fixed precision in fedlab](18-secret-sharing-and-fixed-precision-in-fedlab.ipynb) | `share`, `fix_prec`, Beaver multiplication, comparisons |
# | 19 | [Federated learning with encrypted gradient aggregation](19-federated-learning-with-encrypted-gradient-aggregation.ipynb) | averaging models that nobody sees |
# | 20 | [Encrypted inference with a shared model](20-encrypted-inference-with-a-shared-model.ipynb) | a shared model on shared digits; training on shares |
#
# Lessons 16 to 20 secure federated learning: **secure aggregation** averages the models
# without anyone, even the aggregator, seeing an individual one.
#
# Every lesson from 3 on has a **Your turn** task: try it, run the check cell under it
# (it says what is right and what is missing), and unfold the solution only if you are
# stuck. Each lesson ends with a summary, questions to check yourself, and a link to the
# graded exercise that practises it; the exercises are in the `exercises/` folder.

# %% [markdown]
# ## Seeing what happens
#
# Four tools show what your code does to the workers. Each lesson uses them where they
# help.
#
# | tool | what it shows |
# | --- | --- |
# | `sy.watch(bob, alice)` | a live panel of the workers' stores: new objects are marked, deleted ones fade |
# | `with sy.trace() as t: ...` | every message of the block: `t` is a table, `t.draw()` a sequence diagram |
# | `sy.draw(x)` | the pointer graph: who points to what, along chains |
# | `sy.explain(x)` or `sy.explain("bob:1")` | who keeps a remote object alive, and how to free it |
#
# **Keep the panel in view.** It updates while cells run. `sy.watch(bob, alice, side=True)`
# also opens it in JupyterLab's side area, where it stays in sight while the notebook
# scrolls; the lessons open it there.
#
# **Magics.** After `%load_ext fedlab`, `%fedlab watch bob alice`, `%fedlab why bob:1`,
# `%fedlab draw x`, `%fedlab forget` and `%%fedlab trace` (on a cell's first line) do
# the same from a single line.

# %% [markdown]
# ## The words
#
# The course keeps the words of the PySyft course it re-creates, so its code runs
# unchanged. The right-hand column names the same idea in PyTorch's own remote
# references (`torch.distributed.rpc.RRef`), for readers who know them.
#
# | word | meaning | in PyTorch RRef |
# | --- | --- | --- |
# | **worker** | a party that holds objects: `me` (this notebook), `bob`, `alice` | worker |
# | **location** (`x.location`) | the worker that holds the object a pointer refers to | owner |
# | **owner** (`x.owner`) | the worker that holds the pointer itself, usually `me` | user |
# | **id_at_location** | the object's key in its location's store | RRefId |
# | **send** / **get** | copy an object to a worker / bring it back and delete it there | `remote` / `to_here` + delete |
# | **move** | the object goes from its location straight to another worker | - |
# | **remote_get** | the middle worker of a chain pulls the object to itself | - |
# | **garbage collection** | a dying pointer tells its location to delete the object | UserRRef deletion |
#
# Note the one trap: what PyTorch calls the *owner* of a remote value, fedlab (like
# PySyft) calls its *location*; fedlab's *owner* is the holder of the pointer.
#
# Ready? Start with [lesson 1](01-introducing-federated-learning.ipynb).
