# %% [markdown]
# # 14. Plans: the whole training step in one message
#
# **What you will learn**
#
# - how many messages a training step on pointers costs, and how a *plan* sends it as one;
# - what a plan is: your function run once, its torch operations written down to read;
# - that a plan computes exactly what plain torch computes, and runs a federated round;
# - what a plan cannot do, and what it does not change about privacy.
#
# Lesson 13 ended with a rule: every message costs time, so real systems send few, large
# messages. Plans are how fedlab (like PySyft) follows it.

# %%
import torch
import torch.nn.functional as F
from torch import nn

import fedlab as sy
from fedlab.federated.fedavg import aggregate

hook = sy.TorchHook(torch)
bob = sy.VirtualWorker(hook, id="bob")
alice = sy.VirtualWorker(hook, id="alice")
carol = sy.VirtualWorker(hook, id="carol")

# %% [markdown]
# ## The task and one training step
#
# Each worker holds 8 examples: 4 inputs and a target that is a linear function of them
# plus a little noise. Bob gets his now; the seed fixes every number below.

# %%
torch.manual_seed(0)
true_weight, true_bias = torch.tensor([[2.0, -1.0, 0.5, 3.0]]), torch.tensor([1.0])


def make_data(n=8):
    """``n`` examples of ``y = x . true_weight + true_bias``, plus a little noise."""
    x = torch.randn(n, 4)
    return x, F.linear(x, true_weight, true_bias) + 0.1 * torch.randn(n, 1)


x, y = make_data()
x_ptr, y_ptr = x.send(bob), y.send(bob)


# %% [markdown]
# One training step of a linear model in ordinary torch. As in lesson 6, the weights are
# plain tensors, and the function works on local tensors and on pointers alike.


# %%
def train_step(w, b, x, y):
    """One step of gradient descent on the mean squared error; returns the loss."""
    opt = torch.optim.SGD([w, b], lr=0.1)
    opt.zero_grad()
    loss = F.mse_loss(F.linear(x, w, b), y)
    loss.backward()
    opt.step()
    return loss.detach()


# %% [markdown]
# ## One operation at a time
#
# Run the step on pointers and count the messages it sends to bob (replies aside). A
# first step gives the weights their gradients; we count the second, which is what
# every later step of a training loop costs.

# %%
w_ptr = torch.zeros(1, 4, requires_grad=True).send(bob)
b_ptr = torch.zeros(1, requires_grad=True).send(bob)
train_step(w_ptr, b_ptr, x_ptr, y_ptr).get()

with sy.trace() as t:
    loss_ptr = train_step(w_ptr, b_ptr, x_ptr, y_ptr)
requests = [message for message in t if message.kind != "reply"]
print(f"{len(requests)} requests to bob, each with a reply ({t.nbytes} bytes in all):")
print(", ".join(f"{message.kind} {message.summary}" for message in requests))
print("loss:", loss_ptr.get())

# %% [markdown]
# Every torch call on a pointer is one message, and we wait for bob's reply before the
# next line runs: `zero_grad()` sets each gradient to `None`, the loss is `F.linear` and
# `F.mse_loss`, then `backward`, and `step()` reads each new gradient and updates each
# parameter (`add_`); each pointer that dies sends a delete. In lesson 13 a message
# between processes cost about a millisecond: 16 round trips per step add up fast.
#
# ## The same step as a plan
#
# `sy.Plan(train_step, name="train_plan")` makes a plan of the function, under the name
# its code and its messages will use (PySyft's decorator, `@sy.func2plan()` above the
# `def`, does the same, named after the function), and `build` traces it (or the first
# call does).

# %%
train_plan = sy.Plan(train_step, name="train_plan")
train_plan.build(w_ptr, b_ptr, x_ptr, y_ptr)
train_plan

# %% [markdown]
# `build` ran `train_step` once, here on `me`, on tensors of zeros shaped like the ones
# the pointers refer to, and wrote down each torch operation. Bob was not involved. Now
# call the plan with the pointers:

# %%
with sy.trace() as t:
    loss_ptr = train_plan(w_ptr, b_ptr, x_ptr, y_ptr)
print(t)
print("loss:", loss_ptr.get())

# %% [markdown]
# One message carried all 12 operations; bob ran them in order, updated his `w` and `b`
# in place, and stored the loss. The bytes are about those of the 32 messages before: a
# plan saves messages and their waiting, not bytes.
#
# ## What a plan is
#
# `train_plan.code` shows what `build` wrote down, as Python-like text:

# %%
print(train_plan.code)


# %% [markdown]
# Each line is one operation, in the order it ran while tracing; `_4`, `_5`, ... name the
# results. Read it against `train_step`: `opt.zero_grad()` became "read `w.grad`, set it
# to `None`" for each parameter; `loss.backward()` is `backward`; `opt.step()` reads each
# gradient and calls `add_` on its parameter with `alpha=-0.1`, minus the learning rate.
# `# no grad` marks steps that ran under `torch.no_grad()`, as the optimizer's update does.
#
# Only torch operations on the plan's inputs (and on what they produced) are recorded.
# The optimizer object, its loop over the parameters, the lookup of its learning rate:
# that Python ran once, while tracing, and only its effect on the tensors remains. A
# `for` loop is unrolled the same way. Five steps in one plan:


# %%
def train_steps(w, b, x, y):
    """Five steps of ``train_step``; returns the last loss."""
    for _ in range(5):
        loss = train_step(w, b, x, y)
    return loss


five_steps = sy.Plan(train_steps).build(w_ptr, b_ptr, x_ptr, y_ptr)
five_steps

# %% [markdown]
# Five times the operations, still one message per call.
#
# ## Exactly the numbers of plain torch
#
# fedlab's oracle is plain torch on local tensors. Train fresh weights on bob with the
# plan for 20 steps, and the same weights here with the ordinary function:

# %%
w_ptr = torch.zeros(1, 4, requires_grad=True).send(bob)
b_ptr = torch.zeros(1, requires_grad=True).send(bob)
remote_losses = [train_plan(w_ptr, b_ptr, x_ptr, y_ptr).get() for _ in range(20)]

w = torch.zeros(1, 4, requires_grad=True)
b = torch.zeros(1, requires_grad=True)
local_losses = [train_step(w, b, x, y) for _ in range(20)]

print(f"loss from {local_losses[0]:.3f} to {local_losses[-1]:.4f}")
print("losses equal:", torch.equal(torch.stack(remote_losses), torch.stack(local_losses)))
print("weights equal:", torch.equal(w_ptr.get(), w), torch.equal(b_ptr.get(), b))


# %% [markdown]
# Equal to the last bit: bob replayed the very float operations that plain torch ran,
# in the same order. (Called with local tensors, `train_plan(w, b, x, y)` replays them
# here, on `me`.)
#
# ### Your turn
#
# Make a plan, `my_plan`, of `scale_and_shift` below, build it for bob's tensor `u`,
# then run it on `u` inside the `with` block and bring the result back into `result`.
# The check reads the trace: bob should get exactly one plan message.


# %%
def scale_and_shift(t):
    """Twice ``t``, plus one."""
    return t * 2 + 1


# %%
u = torch.tensor([1.0, 2.0, 3.0]).send(bob)
my_plan = ...
with sy.trace() as plan_trace:
    result = ...

# %%
from fedlab.viz import practice

practice.check("plan-one-message")

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# u = torch.tensor([1.0, 2.0, 3.0]).send(bob)
# my_plan = sy.Plan(scale_and_shift, name="my_plan").build(u)
# with sy.trace() as plan_trace:
#     result = my_plan(u).get()
# ```
#
# `print(my_plan.code)` shows its two operations, `mul` and `add`. The trace has the plan
# message, the fetch of the result, and their replies.
#
# </details>
#
# ## A federated round with plans
#
# Alice and carol get 8 examples each too. In a round, every worker receives a copy of
# the model's parameters (`p.send(worker)` sends a copy and returns a pointer), runs
# `five_steps` on them in one message, and we fetch the trained copies and average them
# with `aggregate`, weighted by their numbers of examples, as in lesson 12.

# %%
shards = {bob: (x_ptr, y_ptr)}
for worker in (alice, carol):
    xs, ys = make_data()
    shards[worker] = (xs.send(worker), ys.send(worker))


def federated_round(model, local_training):
    """Train a copy of ``model`` on every worker, then load their average into ``model``."""
    results, losses = [], {}
    for worker, (x_ptr, y_ptr) in shards.items():
        w_ptr, b_ptr = (p.send(worker) for p in model.parameters())
        losses[worker.id] = local_training(w_ptr, b_ptr, x_ptr, y_ptr).get().item()
        results.append(([w_ptr.get(), b_ptr.get()], len(y_ptr)))
    with torch.no_grad():
        for p, new in zip(model.parameters(), aggregate(results)):
            p.copy_(new)
    return losses


# %% [markdown]
# `local_training` can be the plan or the ordinary function. Run one round each way,
# from the same starting model, and compare:

# %%
torch.manual_seed(1)
model = nn.Linear(4, 1)
twin = model.copy()  # the same weights, to train op by op

with sy.trace() as with_plan:
    federated_round(model, five_steps)
with sy.trace() as op_by_op:
    federated_round(twin, train_steps)

for worker in shards:
    plan_kinds = [m.kind for m in with_plan if m.receiver == worker.id]
    op_count = len([m for m in op_by_op if m.receiver == worker.id])
    print(f"{worker.id:5}: op by op {op_count} requests; with the plan", ", ".join(plan_kinds))
print("same model:", all(torch.equal(p, q) for p, q in zip(model.parameters(), twin.parameters())))

# %% [markdown]
# 85 requests per worker become 6: two sends, the plan, and three fetches (the loss and
# the two trained parameters). The averaged model is the same, bit for bit.
#
# This is also how fedlab's scale benchmark can run a round on 1,000 workers in under a
# second: with one training step per worker, op by op is 15 messages per worker, a plan
# 5. Nine more rounds:

# %%
for _ in range(9):
    losses = federated_round(model, five_steps)
print("last losses:", {name: round(loss, 4) for name, loss in losses.items()})
print("learned:", model.weight.data, model.bias.data)
print("true:   ", true_weight, true_bias)
print(bob, alice, carol, sep="\n")


# %% [markdown]
# The model found the true weights, and each worker still holds only its two tensors of
# data.
#
# ## What a plan cannot do
#
# **A plan cannot depend on values.** It is traced once, on example tensors, and must do
# the same for any values. So it cannot read them: no `.item()`, no printing, no `if` on
# a tensor's value. `build` refuses such a function and names the call:


# %% tags=["raises-exception"]
@sy.func2plan()
def train_until_good(w, b, x, y):
    loss = train_step(w, b, x, y)
    if loss.item() > 0.01:  # not good enough yet: one more step
        loss = train_step(w, b, x, y)
    return loss


w_ptr, b_ptr = (p.send(bob) for p in model.parameters())
train_until_good.build(w_ptr, b_ptr, x_ptr, y_ptr)

# %% [markdown]
# Decide outside the plan instead: fetch the loss it returns, and call it again if
# needed. (An `if` on a *shape*, such as `if x.dim() == 1:`, is fine: shapes are fixed,
# so the answer is the same for every call.)
#
# **A plan is fixed to its inputs' shapes.** `train_plan` was built for 8 examples; give
# it 5 and it says so:

# %% tags=["raises-exception"]
train_plan(w, b, x[:5], y[:5])

# %% [markdown]
# A worker with another number of examples needs its own plan, built with its pointers
# (real systems often use batches of a fixed size instead).
#
# **A plan hides nothing from the worker.** Bob receives exactly the operations that
# `train_plan.code` shows, checks every one against his allowlist before running any,
# and if one fails, puts back whatever the plan had changed. A plan is not encrypted or
# secret code: it is the same requests as before, in one envelope.
#
# **Privacy is unchanged.** The data never left the workers, with or without plans. And
# what came back is what we asked for: each worker's loss and trained copy of the model,
# so the server still sees every individual model (lesson 8's shortcoming; lesson 11's
# trusted aggregator works with plans too). Plans save messages; they protect nothing
# more.
#
# ## Summary
#
# - A plan is a function traced once into torch operations, sent to a worker as one message.
# - It computes exactly what plain torch computes, and saves messages, not bytes.
# - It cannot depend on values, is fixed to its inputs' shapes, and hides nothing from the worker.
#
# ## Check yourself
#
# **1.** Why can a plan not contain `if loss.item() > 0.01:`?
#
# <details><summary>Answer</summary>
#
# The plan is traced once, on example tensors, and then replayed for any values: the
# decision would be frozen at tracing time. Decide outside the plan, on what it returns.
#
# </details>
#
# **2.** Does sending a plan instead of operations protect bob's data any better?
#
# <details><summary>Answer</summary>
#
# No. The data never left bob either way, and what comes back (the loss, the trained
# model) is the same. A plan only saves messages.
#
# </details>
#
# **Graded exercise:** [exercise 7, plans](../exercises/07-plans.ipynb).
#
# ## What to try next
#
# - Make `train_steps` do 20 steps. How many operations does its plan have, and how many
#   messages does a round send, op by op and with the plan?
# - Give carol 5 examples instead of 8 and build a second plan for her. How does
#   `federated_round` have to change?
# - Rewrite `train_until_good` so that the `if` runs here, on the loss the plan returns.
#   How many messages does a call cost now?
# - Back to the [course index](00-index.ipynb); graded exercises are in `exercises/`.
