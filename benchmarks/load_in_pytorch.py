#!/usr/bin/python3
"""Loads a ctnn-written ResNet-20 file (ctnn-train --save, --best, or a
--checkpoint) into PyTorch with load_state_dict(strict=True) and reports its
Fashion-MNIST test accuracy, to compare with the accuracy ctnn printed.

    /usr/bin/python3 benchmarks/load_in_pytorch.py run.ckpt.safetensors [--train-images N] [--test-images N]
        [--shirt-head EPOCHS]

--shirt-head EPOCHS also does the article's head swap on that backbone in
PyTorch, with the recipe of `ctnn-train --train head --head sigmoid
--positive-class Shirt --optimizer adam --lr 3e-3 --batch 256 --schedule
constant --augment none --epochs EPOCHS`: the frozen backbone's features of
the (unaugmented) training images, a Linear(64, 1) + Sigmoid head with Xavier
weights and zero bias, BCE, Adam, batches in a seeded random order; it prints
the shirt-vs-rest test accuracy for the comparison with ctnn-train's.

The network is He et al.'s CIFAR ResNet-20 on one channel with torchvision
names (what ctnn writes): option B (1x1 projection, `downsample.*` tensors)
when the file has downsample tensors, option A (subsample + zero channels,
no tensors) otherwise. A checkpoint's trainer entries are left out as
docs/training.md says: not k.startswith(("optimizer.", "progress.")).
Normalisation: the training images' mean and std, as ctnn-train measures them
(pass the run's --train-images when it trained on a slice).
Needs torch and numpy (Debian: python3-torch); reads safetensors itself.
"""

import argparse
import json
import os
import struct
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_fashion_mnist import DATA, SHIRT, ResNet20, idx  # noqa: E402  (the same network, IDX reader, class)
DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "F16": np.float16}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[8 + n + a: 8 + n + b], dtype=DTYPES[t["dtype"]]).reshape(t["shape"]).copy())
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--train-images", type=int, default=60000)
    ap.add_argument("--test-images", type=int, default=10000)
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--shirt-head", type=int, default=0, metavar="EPOCHS")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    state = {k: v for k, v in read_safetensors(a.file).items() if not k.startswith(("optimizer.", "progress."))}
    option_b = any(".downsample." in k for k in state)
    model = ResNet20(state["fc.weight"].shape[0], option_b)
    model.load_state_dict(state, strict=True)  # raises on any missing or unexpected tensor
    model.eval()
    train = idx(f"{a.data}/train-images-idx3-ubyte.gz")[: a.train_images].astype(np.float64) / 255
    mean, std = train.mean(), train.std()
    images = idx(f"{a.data}/t10k-images-idx3-ubyte.gz")[: a.test_images]
    labels = idx(f"{a.data}/t10k-labels-idx1-ubyte.gz")[: a.test_images]
    x = torch.from_numpy(((images.astype(np.float32) / 255 - np.float32(mean)) / np.float32(std))[:, None])
    with torch.no_grad():
        predicted = torch.cat([model(x[i:i + 500]).argmax(1) for i in range(0, len(x), 500)]).numpy()
    print(f"load_state_dict(strict=True): {len(state)} tensors, option {'B' if option_b else 'A'}")
    print(f"test accuracy (PyTorch, {len(labels)} images): {100 * (predicted == labels).mean():.2f}%")
    if a.shirt_head:
        shirt_head(model, a, mean, std, x, labels)


def shirt_head(model, a, mean, std, x_test, labels, shirt=SHIRT, batch=256, lr=3e-3):
    torch.manual_seed(1)
    order_rng = np.random.default_rng(1)
    train = idx(f"{a.data}/train-images-idx3-ubyte.gz")[: a.train_images]
    train_labels = idx(f"{a.data}/train-labels-idx1-ubyte.gz")[: a.train_images]
    x_train = torch.from_numpy(((train.astype(np.float32) / 255 - np.float32(mean)) / np.float32(std))[:, None])
    start = time.perf_counter()
    with torch.no_grad():
        f_train = torch.cat([model.features(x_train[i:i + 500]) for i in range(0, len(x_train), 500)])
        f_test = torch.cat([model.features(x_test[i:i + 500]) for i in range(0, len(x_test), 500)])
    head = torch.nn.Linear(f_train.shape[1], 1)
    torch.nn.init.xavier_uniform_(head.weight)
    torch.nn.init.zeros_(head.bias)
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    target = torch.from_numpy((train_labels == shirt).astype(np.float32)).unsqueeze(1)
    for _ in range(a.shirt_head):
        order = torch.from_numpy(order_rng.permutation(len(f_train)))
        for i in range(0, len(f_train), batch):
            j = order[i:i + batch]
            opt.zero_grad()
            torch.nn.functional.binary_cross_entropy(torch.sigmoid(head(f_train[j])), target[j]).backward()
            opt.step()
    with torch.no_grad():
        right = ((torch.sigmoid(head(f_test)) >= 0.5).squeeze(1).numpy() == (labels == shirt)).mean()
    print(f"shirt vs rest (PyTorch head, {a.shirt_head} epochs, {time.perf_counter() - start:.1f} s): "
          f"test accuracy {100 * right:.2f}%")


if __name__ == "__main__":
    sys.exit(main())
