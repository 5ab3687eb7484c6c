#!/usr/bin/python3
"""PyTorch run of ctnn-demo's recipe, for comparison (examples/demo.cpp).

    /usr/bin/python3 benchmarks/pytorch_fashion_mnist.py [--epochs 2] [--threads 2]

Trains the same ResNet-20 (He et al.'s CIFAR network, option B projection
shortcuts, torchvision-style names, one input channel) from scratch on
Fashion-MNIST with the demo's settings: batch 128, SGD lr 0.1 momentum 0.9
Nesterov weight decay 5e-4, cosine annealing per step over the run,
RandomCrop(28, padding=2) + RandomHorizontalFlip, normalised with mean 0.2860
and std 0.3530. Then, like the demo, it swaps the head for Linear(64, 1) +
Sigmoid ("is it a shirt?", class 6), keeps the backbone frozen, caches its
features and trains only the head with Adam (lr 3e-3, batch 256, 20 epochs,
BCE). Prints both test accuracies and the training time. Needs torch and
numpy (Debian: python3-torch); reads Debian's dataset-fashion-mnist files.
"""

import argparse
import gzip
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = "/usr/share/datasets/fashion-mnist"
MEAN, STD = 0.2860, 0.3530
SHIRT = 6


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


class Block(nn.Module):
    """A basic block; where it changes shape, the shortcut is a 1x1 projection
    (option B, `downsample.*`) or, with option_b=False, He et al.'s option A:
    stride-2 subsampling and zero channels on each side, no tensors."""

    def __init__(self, cin, planes, stride, option_b=True):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        self.stride, self.pad = stride, 0
        if stride != 1 or cin != planes:
            if option_b:
                self.downsample = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
            else:
                self.pad = (planes - cin) // 2

    def shortcut(self, x):
        if self.downsample is not None:
            return self.downsample(x)
        if self.pad or self.stride != 1:
            return F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, self.pad, self.pad))
        return x

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


class ResNet20(nn.Module):
    def __init__(self, out, option_b=True):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, cin = [], 16
        for planes, stride in [(16, 1), (32, 2), (64, 2)]:
            layers.append(nn.Sequential(Block(cin, planes, stride, option_b), Block(planes, planes, 1, option_b),
                                        Block(planes, planes, 1, option_b)))
            cin = planes
        self.layer1, self.layer2, self.layer3 = layers
        self.fc = nn.Linear(64, out)
        for m in self.modules():  # torchvision's initialisation, as ctnn's Init::torchvision
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def features(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, x):
        return self.fc(self.features(x))


def augment(batch, rng):
    """RandomCrop(28, padding=2) on the raw pixels, then a flip with probability 0.5."""
    n = batch.shape[0]
    padded = np.pad(batch, ((0, 0), (2, 2), (2, 2)))
    out = np.empty_like(batch)
    for i in range(n):
        dy, dx = rng.integers(0, 5, 2)
        img = padded[i, dy:dy + 28, dx:dx + 28]
        out[i] = img[:, ::-1] if rng.random() < 0.5 else img
    return out


def tensor(pixels):
    return ((torch.from_numpy(np.array(pixels)).float() / 255 - MEAN) / STD).unsqueeze(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", default=DATA)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    rng = np.random.default_rng(1)
    xtr, ytr = idx(os.path.join(a.data, "train-images-idx3-ubyte.gz")), idx(os.path.join(a.data, "train-labels-idx1-ubyte.gz"))
    xte, yte = idx(os.path.join(a.data, "t10k-images-idx3-ubyte.gz")), idx(os.path.join(a.data, "t10k-labels-idx1-ubyte.gz"))
    model = ResNet20(10)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    steps_per_epoch = (len(xtr) + 127) // 128
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, a.epochs * steps_per_epoch)
    start = time.perf_counter()
    for epoch in range(a.epochs):
        model.train()
        order = rng.permutation(len(xtr))
        for b in range(steps_per_epoch):
            i = order[b * 128:(b + 1) * 128]
            x, y = tensor(augment(xtr[i], rng)), torch.from_numpy(ytr[i].astype(np.int64))
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            sched.step()
        print(f"epoch {epoch + 1}: last loss {loss.item():.4f}, {time.perf_counter() - start:.1f} s", flush=True)
    train_seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(tensor(xte[i:i + 250])).argmax(1) for i in range(0, len(xte), 250)])
    ten = (pred.numpy() == yte).mean() * 100
    print(f"trained in {train_seconds:.1f} s\ntest accuracy (10 classes): {ten:.2f}%")

    with torch.no_grad():
        ftr = torch.cat([model.features(tensor(xtr[i:i + 250])) for i in range(0, len(xtr), 250)])
        fte = torch.cat([model.features(tensor(xte[i:i + 250])) for i in range(0, len(xte), 250)])
    head = nn.Linear(64, 1)
    nn.init.xavier_uniform_(head.weight)
    nn.init.zeros_(head.bias)
    hopt = torch.optim.Adam(head.parameters(), lr=3e-3)
    target = torch.from_numpy((ytr == SHIRT).astype(np.float32)).unsqueeze(1)
    for _ in range(20):
        for i in range(0, len(ftr), 256):
            hopt.zero_grad()
            F.binary_cross_entropy(torch.sigmoid(head(ftr[i:i + 256])), target[i:i + 256]).backward()
            hopt.step()
    with torch.no_grad():
        shirts = ((torch.sigmoid(head(fte)) >= 0.5).squeeze(1).numpy() == (yte == SHIRT)).mean() * 100
    print(f"test accuracy (shirt vs rest): {shirts:.2f}%")


if __name__ == "__main__":
    sys.exit(main())
