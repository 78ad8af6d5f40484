"""The course's Section 3 and Section 4 (without its Keras client) and PySyft 0.2.9's
tutorials Parts 9 to 12 run with ``import fedlab as sy``.

Each test is the original code, cell after cell, with only the data replaced by offline
stand-ins (scikit-learn's digits for MNIST, its diabetes set for Boston housing) and
smaller loops; the comments name the cells. Results are checked against plain torch.
"""

from __future__ import annotations

import random
import string

import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_diabetes, load_digits
from torch import nn, optim

import fedlab as sy

th = torch


@pytest.fixture
def hook(me):
    return me.hook


def test_section_3_trusted_aggregator_and_secret_sharing_in_pysyft(hook):
    bob = sy.VirtualWorker(hook, id="bob")
    alice = sy.VirtualWorker(hook, id="alice")
    secure_worker = sy.VirtualWorker(hook, id="secure_worker")
    bob.add_workers([alice, secure_worker])
    alice.add_workers([bob, secure_worker])
    secure_worker.add_workers([alice, bob])
    data = th.tensor([[0, 0], [0, 1], [1, 0], [1, 1.0]], requires_grad=True)
    target = th.tensor([[0], [0], [1], [1.0]], requires_grad=True)
    bobs_data, bobs_target = data[0:2].send(bob), target[0:2].send(bob)
    alices_data, alices_target = data[2:].send(alice), target[2:].send(alice)
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    for _ in range(3):  # "Rinse and Repeat"
        bobs_model = model.copy().send(bob)
        alices_model = model.copy().send(alice)
        bobs_opt = optim.SGD(params=bobs_model.parameters(), lr=0.1)
        alices_opt = optim.SGD(params=alices_model.parameters(), lr=0.1)
        for _ in range(5):
            bobs_opt.zero_grad()
            bobs_loss = ((bobs_model(bobs_data) - bobs_target) ** 2).sum()
            bobs_loss.backward()
            bobs_opt.step()
            bobs_loss = bobs_loss.get().data
            alices_opt.zero_grad()
            alices_loss = ((alices_model(alices_data) - alices_target) ** 2).sum()
            alices_loss.backward()
            alices_opt.step()
            alices_loss = alices_loss.get().data
        alices_model.move(secure_worker)
        bobs_model.move(secure_worker)
        want = (alices_model.weight.copy().get() + bobs_model.weight.copy().get()) / 2
        new = ((alices_model.weight.data + bobs_model.weight.data) / 2).get()
        assert torch.allclose(new, want)
        model.weight.data.set_(new)  # (in torch 2, set_ on .data leaves the parameter as it is)
        model.bias.data.set_(((alices_model.bias.data + bobs_model.bias.data) / 2).get())
    assert secure_worker._objects  # the two models are there, the average came home

    # Lesson: Secret Sharing + Fixed Precision in PySyft
    bob = bob.clear_objects()
    alice = alice.clear_objects()
    secure_worker = secure_worker.clear_objects()
    x = th.tensor([1, 2, 3, 4, 5])
    x = x.share(bob, alice, secure_worker)
    assert len(bob._objects) == 1
    y = x + x
    assert "[AdditiveSharingTensor" in repr(y) and "secure_worker" in repr(y)
    assert torch.equal(y.get(), th.tensor([2, 4, 6, 8, 10]))
    x = th.tensor([0.1, 0.2, 0.3])
    x = x.fix_prec()
    assert torch.equal(x.child.child, th.tensor([100, 200, 300]))
    y = x + x
    y = y.float_prec()
    assert torch.allclose(y, th.tensor([0.2, 0.4, 0.6]))
    x = th.tensor([0.1, 0.2, 0.3])
    x = x.fix_prec().share(bob, alice, secure_worker)
    y = x + x
    assert torch.allclose(y.get().float_prec(), th.tensor([0.2, 0.4, 0.6]))


def test_section_4_add_worker_takes_one_worker(hook):
    # The course's first cell of "Encrypted Computation in PySyft": add_worker takes one worker.
    bob = sy.VirtualWorker(hook, id="bob").add_worker(sy.local_worker)
    assert bob.id == "bob"


def test_section_4_encrypted_computation_and_database(hook):
    bob = sy.VirtualWorker(hook, id="bob").add_worker(sy.local_worker)
    alice = sy.VirtualWorker(hook, id="alice").add_worker(sy.local_worker)
    secure_worker = sy.VirtualWorker(hook, id="secure_worker").add_worker(sy.local_worker)
    x = th.tensor([1, 2, 3, 4])
    y = th.tensor([2, -1, 1, 0])
    x = x.share(bob, alice, crypto_provider=secure_worker)
    y = y.share(bob, alice, crypto_provider=secure_worker)
    assert (x + y).get().tolist() == [3, 1, 4, 4]
    assert (x - y).get().tolist() == [-1, 3, 2, 4]
    assert (x * y).get().tolist() == [2, -2, 3, 0]
    assert (x > y).get().tolist() == [0, 1, 1, 1]
    assert (x < y).get().tolist() == [1, 0, 0, 0]
    assert (x == y).get().tolist() == [0, 0, 0, 0]
    x = th.tensor([1, 2, 3, 4])
    y = th.tensor([2, -1, 1, 0])
    x = x.fix_precision().share(bob, alice, crypto_provider=secure_worker)
    y = y.fix_precision().share(bob, alice, crypto_provider=secure_worker)
    assert (x + y).get().float_precision().tolist() == [3.0, 1.0, 4.0, 4.0]
    assert (x * y).get().float_precision().tolist() == [2.0, -2.0, 3.0, 0.0]
    assert (x > y).get().float_precision().tolist() == [0.0, 1.0, 1.0, 1.0]
    assert (x == y).get().float_precision().tolist() == [0.0, 0.0, 0.0, 0.0]

    # Project: Build an Encrypted Database (the course's code)
    char2index, index2char = {}, {}
    for i, char in enumerate(" " + string.ascii_lowercase + "0123456789" + string.punctuation):
        char2index[char] = i
        index2char[i] = char

    def string2values(str_input, max_len=8):
        str_input = str_input[:max_len].lower()
        if len(str_input) < max_len:
            str_input = str_input + "." * (max_len - len(str_input))
        return th.tensor([char2index[c] for c in str_input]).long()

    def values2string(input_values):
        return "".join(index2char[int(v)] for v in input_values)

    def strings_equal(str_a, str_b):
        vect = (str_a * str_b).sum(1)
        x = vect[0]
        for i in range(vect.shape[0] - 1):
            x = x * vect[i + 1]
        return x

    def one_hot(index, length):
        vect = th.zeros(length).long()
        vect[index] = 1
        return vect

    def string2one_hot_matrix(str_input, max_len=8):
        str_input = str_input[:max_len].lower()
        if len(str_input) < max_len:
            str_input = str_input + "." * (max_len - len(str_input))
        char_vectors = [one_hot(char2index[c], len(char2index)).unsqueeze(0) for c in str_input]
        return th.cat(char_vectors, dim=0)

    class EncryptedDB:
        def __init__(self, *owners, max_key_len=8, max_val_len=8):
            self.max_key_len, self.max_val_len = max_key_len, max_val_len
            self.keys, self.values, self.owners = [], [], owners

        def add_entry(self, key, value):
            self.keys.append(string2one_hot_matrix(key).share(*self.owners))
            value = string2values(value, max_len=self.max_val_len)
            self.values.append(value.share(*self.owners))

        def query(self, query_str):
            query_matrix = string2one_hot_matrix(query_str).share(*self.owners)
            key_matches = [strings_equal(key, query_matrix) for key in self.keys]
            result = self.values[0] * key_matches[0]
            for i in range(len(self.values) - 1):
                result += self.values[i + 1] * key_matches[i + 1]
            result = result.get()
            return values2string(result).replace(".", "")

    db = EncryptedDB(bob, alice, secure_worker, max_val_len=256)
    db.add_entry("Bob", "(123) 456 7890")
    db.add_entry("Bill", "(234) 567 8901")
    db.add_entry("Sam", "(345) 678 9012")
    db.add_entry("Key", "really big json value")
    assert db.query("Bob") == "(123) 456 7890"
    assert db.query("Key") == "really big json value"


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(2, 20)
        self.fc2 = nn.Linear(20, 1)

    def forward(self, x):
        x = self.fc1(x)
        x = F.relu(x)
        x = self.fc2(x)
        return x


def test_section_4_encrypted_deep_learning_in_pytorch(hook):
    alice = sy.VirtualWorker(hook, id="alice")
    bob = sy.VirtualWorker(hook, id="bob")
    secure_worker = sy.VirtualWorker(hook, id="secure_worker")
    data = th.tensor([[0, 0], [0, 1], [1, 0], [1, 1.0]], requires_grad=True)
    target = th.tensor([[0], [0], [1], [1.0]], requires_grad=True)
    torch.manual_seed(0)
    model = Net()
    opt = optim.SGD(params=model.parameters(), lr=0.1)
    for _ in range(20):
        opt.zero_grad()
        loss = ((model(data) - target) ** 2).sum()
        loss.backward()
        opt.step()
    plain = model(data).detach()
    encrypted_model = model.fix_precision().share(alice, bob, crypto_provider=secure_worker)
    assert len(list(encrypted_model.parameters())) == 4
    encrypted_data = data.fix_precision().share(alice, bob, crypto_provider=secure_worker)
    encrypted_prediction = encrypted_model(encrypted_data)
    assert (encrypted_prediction.get().float_precision() - plain).abs().max() < 0.02


def test_pysyft_part_09_intro_to_encrypted_programs(hook):
    Q = 1234567891011

    def encrypt(x):
        share_a = random.randint(-Q, Q)
        share_b = random.randint(-Q, Q)
        return (share_a, share_b, (x - share_a - share_b) % Q)

    def decrypt(*shares):
        return sum(shares) % Q

    assert decrypt(*encrypt(25)) == 25
    bob = sy.VirtualWorker(hook, id="bob")
    alice = sy.VirtualWorker(hook, id="alice")
    bill = sy.VirtualWorker(hook, id="bill")
    x = torch.tensor([25])
    encrypted_x = x.share(bob, alice, bill)
    assert torch.equal(encrypted_x.get(), x) and bob._objects == {}
    x = torch.tensor([25]).share(bob, alice, bill)
    bobs_share = list(bob._objects.values())[0]  # noqa: RUF015 (the tutorial's code)
    alices_share = list(alice._objects.values())[0]  # noqa: RUF015 (the tutorial's code)
    bills_share = list(bill._objects.values())[0]  # noqa: RUF015 (the tutorial's code)
    assert torch.equal(bobs_share + alices_share + bills_share, torch.tensor([25]))
    x = torch.tensor([25]).share(bob, alice)
    y = torch.tensor([5]).share(bob, alice)
    assert (x + y).get().tolist() == [30] and (x - y).get().tolist() == [20]
    crypto_provider = sy.VirtualWorker(hook, id="crypto_provider")
    x = torch.tensor([25]).share(bob, alice, crypto_provider=crypto_provider)
    y = torch.tensor([5]).share(bob, alice, crypto_provider=crypto_provider)
    assert (x * y).get().tolist() == [125]
    x = torch.tensor([[1, 2], [3, 4]]).share(bob, alice, crypto_provider=crypto_provider)
    y = torch.tensor([[2, 0], [0, 2]]).share(bob, alice, crypto_provider=crypto_provider)
    assert x.mm(y).get().tolist() == [[2, 4], [6, 8]]
    x = torch.tensor([25]).share(bob, alice, crypto_provider=crypto_provider)
    y = torch.tensor([5]).share(bob, alice, crypto_provider=crypto_provider)
    assert (x > y).get().tolist() == [1] and (x <= y).get().tolist() == [0]
    assert (x == y).get().tolist() == [0] and (x == y + 20).get().tolist() == [1]
    x = torch.tensor([2, 3, 4, 1]).share(bob, alice, crypto_provider=crypto_provider)
    assert x.max().get().item() == 4
    x = torch.tensor([[2, 3], [4, 1]]).share(bob, alice, crypto_provider=crypto_provider)
    max_values, max_ids = x.max(dim=0)
    assert max_values.get().tolist() == [4, 3] and max_ids.get().tolist() == [1, 0]


def test_pysyft_part_10_federated_learning_with_secure_aggregation(hook):
    X, y = load_diabetes(return_X_y=True)  # for the Boston housing pickle
    X = torch.tensor(X[:, :10] * 10, dtype=torch.float32)
    y = torch.tensor(y / 100, dtype=torch.float32)
    train = torch.utils.data.TensorDataset(X[:64], y[:64])
    train_loader = torch.utils.data.DataLoader(train, batch_size=8, shuffle=False)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(10, 32)
            self.fc2 = nn.Linear(32, 24)
            self.fc3 = nn.Linear(24, 1)

        def forward(self, x):
            x = x.view(-1, 10)
            x = F.relu(self.fc1(x))
            x = F.relu(self.fc2(x))
            return self.fc3(x)

    bob = sy.VirtualWorker(hook, id="bob")
    alice = sy.VirtualWorker(hook, id="alice")
    james = sy.VirtualWorker(hook, id="james")
    compute_nodes = [bob, alice]
    remote_dataset = (list(), list())
    for batch_idx, (data, target) in enumerate(train_loader):
        data = data.send(compute_nodes[batch_idx % len(compute_nodes)])
        target = target.send(compute_nodes[batch_idx % len(compute_nodes)])
        remote_dataset[batch_idx % len(compute_nodes)].append((data, target))

    def update(data, target, model, optimizer):
        model.send(data.location)
        optimizer.zero_grad()
        pred = model(data)
        loss = F.mse_loss(pred.view(-1), target)
        loss.backward()
        optimizer.step()
        return model

    torch.manual_seed(1)
    bobs_model, alices_model = Net(), Net()
    alices_model.load_state_dict(bobs_model.state_dict())
    bobs_optimizer = optim.SGD(bobs_model.parameters(), lr=0.001)
    alices_optimizer = optim.SGD(alices_model.parameters(), lr=0.001)
    models = [bobs_model, alices_model]
    params = [list(bobs_model.parameters()), list(alices_model.parameters())]
    optimizers = [bobs_optimizer, alices_optimizer]

    for data_index in range(len(remote_dataset[0]) - 1):
        for remote_index in range(len(compute_nodes)):
            data, target = remote_dataset[remote_index][data_index]
            models[remote_index] = update(
                data, target, models[remote_index], optimizers[remote_index]
            )
        plain = [(a.copy().get() + b.copy().get()) / 2 for a, b in zip(*params)]
        new_params = list()
        for param_i in range(len(params[0])):
            spdz_params = list()
            for remote_index in range(len(compute_nodes)):
                copy_of_parameter = params[remote_index][param_i].copy()
                fixed_precision_param = copy_of_parameter.fix_precision()
                encrypted_param = fixed_precision_param.share(bob, alice, crypto_provider=james)
                param = encrypted_param.get()
                spdz_params.append(param)
            new_param = (spdz_params[0] + spdz_params[1]).get().float_precision() / 2
            new_params.append(new_param)
        with torch.no_grad():
            for model in params:
                for param in model:
                    param *= 0
            for model in models:
                model.get()
            for remote_index in range(len(compute_nodes)):
                for param_index in range(len(params[remote_index])):
                    params[remote_index][param_index].set_(new_params[param_index])
        for new, want in zip(new_params, plain):
            assert (new - want).abs().max() <= 0.001
    assert james._objects == {}


def test_pysyft_part_11_secure_deep_learning_classification(hook):
    X, y = load_digits(return_X_y=True)  # 8x8 digits for 28x28 MNIST
    X = torch.tensor(X, dtype=torch.float32) / 16
    y = torch.tensor(y)
    client = sy.VirtualWorker(hook, id="client")  # noqa: F841 (as in the tutorial)
    bob = sy.VirtualWorker(hook, id="bob")
    alice = sy.VirtualWorker(hook, id="alice")
    crypto_provider = sy.VirtualWorker(hook, id="crypto_provider")
    test_loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(X[-40:], y[-40:]), batch_size=20
    )
    private_test_loader = []
    for data, target in test_loader:
        private_test_loader.append(
            (
                data.fix_precision().share(alice, bob, crypto_provider=crypto_provider),
                target.fix_precision().share(alice, bob, crypto_provider=crypto_provider),
            )
        )

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(64, 32)
            self.fc2 = nn.Linear(32, 10)

        def forward(self, x):
            x = x.view(-1, 64)
            x = self.fc1(x)
            x = F.relu(x)
            return self.fc2(x)

    torch.manual_seed(2)
    model = Net()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(60):
        optimizer.zero_grad()
        loss = F.nll_loss(F.log_softmax(model(X[:-40]), dim=1), y[:-40])
        loss.backward()
        optimizer.step()
    plain_correct = (model(X[-40:]).argmax(1) == y[-40:]).sum().item()
    model.fix_precision().share(alice, bob, crypto_provider=crypto_provider)
    model.eval()
    n_correct_priv = 0
    with torch.no_grad():
        for data, target in private_test_loader:
            output = model(data)
            pred = output.argmax(dim=1)
            n_correct_priv += pred.eq(target.view_as(pred)).sum()
    n_correct = n_correct_priv.copy().get().float_precision().long().item()
    assert abs(n_correct - plain_correct) <= 1


def test_pysyft_part_12_train_an_encrypted_network_on_encrypted_data(hook):
    alice = sy.VirtualWorker(id="alice", hook=hook)
    bob = sy.VirtualWorker(id="bob", hook=hook)
    james = sy.VirtualWorker(id="james", hook=hook)
    data = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1.0]])
    target = torch.tensor([[0], [0], [1], [1.0]])

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(2, 2)
            self.fc2 = nn.Linear(2, 1)

        def forward(self, x):
            x = self.fc1(x)
            x = F.relu(x)
            return self.fc2(x)

    torch.manual_seed(3)
    model = Net()
    data = data.fix_precision().share(bob, alice, crypto_provider=james, requires_grad=True)
    target = target.fix_precision().share(bob, alice, crypto_provider=james, requires_grad=True)
    model = model.fix_precision().share(bob, alice, crypto_provider=james, requires_grad=True)
    opt = optim.SGD(params=model.parameters(), lr=0.1).fix_precision()
    losses = []
    for _ in range(10):
        opt.zero_grad()
        pred = model(data)
        loss = ((pred - target) ** 2).sum()
        loss.backward()
        opt.step()
        losses.append(loss.get().float_precision().item())
    assert losses[-1] < losses[0]
