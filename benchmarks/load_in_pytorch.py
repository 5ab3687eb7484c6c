#!/usr/bin/python3
"""Loads a ctnn-written ResNet-20 file (ctnn-train --save, --best, or a
--checkpoint) into PyTorch with load_state_dict(strict=True) and reports its
Fashion-MNIST test accuracy, to compare with the accuracy ctnn printed.

    /usr/bin/python3 benchmarks/load_in_pytorch.py run.ckpt.safetensors [--train-images N] [--test-images N]

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

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_fashion_mnist import DATA, ResNet20, idx  # noqa: E402  (the same network and IDX reader)
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
    a = ap.parse_args()
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


if __name__ == "__main__":
    sys.exit(main())
