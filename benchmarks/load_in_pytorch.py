#!/usr/bin/python3
"""Loads a ctnn-written ResNet-20 file (ctnn-train --save, --best, or a
--checkpoint) into PyTorch with load_state_dict(strict=True) and reports its
Fashion-MNIST test accuracy, to compare with the accuracy ctnn printed.

    /usr/bin/python3 benchmarks/load_in_pytorch.py run.ckpt.safetensors [--test-images N]

The network is He et al.'s CIFAR ResNet-20 on one channel with torchvision
names (what ctnn writes): option B (1x1 projection, `downsample.*` tensors)
when the file has downsample tensors, option A (subsample + zero channels,
no tensors) otherwise. A checkpoint's trainer entries are left out as
docs/training.md says: not k.startswith(("optimizer.", "progress.")).
Normalisation: the training set's mean and std, as ctnn-train measures them.
Needs torch and numpy (Debian: python3-torch); reads safetensors itself.
"""

import argparse
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_fashion_mnist import DATA, idx  # noqa: E402  (the same IDX reader)
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


class Block(nn.Module):
    def __init__(self, cin, planes, stride, option_b):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        self.pad = 0
        if stride != 1 or cin != planes:
            if option_b:
                self.downsample = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
            else:
                self.pad = (planes - cin) // 2
        self.stride = stride

    def shortcut(self, x):
        if self.downsample is not None:
            return self.downsample(x)
        if self.pad or self.stride != 1:
            return F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, self.pad, self.pad))
        return x

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class ResNet20(nn.Module):
    def __init__(self, classes, option_b):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, cin = [], 16
        for planes, stride in [(16, 1), (32, 2), (64, 2)]:
            layers.append(nn.Sequential(*[Block(cin if i == 0 else planes, planes, stride if i == 0 else 1, option_b)
                                          for i in range(3)]))
            cin = planes
        self.layer1, self.layer2, self.layer3 = layers
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--test-images", type=int, default=10000)
    ap.add_argument("--data", default=DATA)
    a = ap.parse_args()
    state = {k: v for k, v in read_safetensors(a.file).items() if not k.startswith(("optimizer.", "progress."))}
    option_b = any(".downsample." in k for k in state)
    model = ResNet20(state["fc.weight"].shape[0], option_b)
    model.load_state_dict(state, strict=True)  # raises on any missing or unexpected tensor
    model.eval()
    train = idx(f"{a.data}/train-images-idx3-ubyte.gz").astype(np.float64) / 255
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
