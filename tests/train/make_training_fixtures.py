#!/usr/bin/python3
"""Generates the PyTorch training-step fixtures in tests/data/train/.

Run:  cd tests/train && /usr/bin/python3 make_training_fixtures.py
Needs torch + torchvision (Debian python3-torch 1.13 / python3-torchvision 0.14)
and numpy; the C++ tests read the files written here and need none of them.

Each fixture trains one network for a few optimiser steps from the same
float32 starting point twice: in float64 (the truth) and in float32 (what
PyTorch itself achieves in single precision). After one step, float32 is up
to a few percent off float64 on the convolutions before a BatchNorm (its
scale invariance makes their gradient a small difference of large sums), so
ctnn is compared with the float64 run, and held to being at least as close to
it as PyTorch float32 is (or within 1e-3 of the tensor's largest update,
where PyTorch float32 is that close).

Starting point: rank >= 2 tensors and the input from the shared PRNG
(tests/parity/make_fixtures.py, tests/support/fixture_rng.hpp); rank <= 1
tensors drawn here and stored, BatchNorm statistics calibrated on data.

Stored per fixture (besides the starting tensors and prng_probe.*):
  expected.loss                 [steps] float64 losses (before each step), as float32
  expected.update.<name>        float64 run's update (after - before) at the probe indices
  expected.err32.<name>         [1] max |update32 - update64| over those probes
  expected.max_update.<name>    [1] max |update64| over the whole tensor
  expected.final.<bn stats>     float64 run's running_mean / running_var after the last step
Probe indices of a tensor of n elements: i * (n - 1) // (P - 1) for i < P, P = min(n, 64).
Metadata: input_shape, labels, steps, scope, optimizer.
"""

import copy
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "parity"))
from make_fixtures import (PRNG_DOC, CifarResNet, calibrate_batchnorm, fill_parameters, image,  # noqa: E402
                           probe_indices, write_safetensors)

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "train")
PROBES = 64


def update_probes(n):
    p = min(n, PROBES)
    return np.array([i * (n - 1) // (p - 1) if p > 1 else 0 for i in range(p)], dtype=np.int64)


def train(model, x, target, loss_fn, make_opt, steps, head_only, dtype):
    m = copy.deepcopy(model).to(dtype)
    if head_only:
        for name, p in m.named_parameters():
            p.requires_grad_(name.startswith("fc."))
        m.eval()      # the frozen backbone normalises with its running statistics
        m.fc.train()
    else:
        m.train()
    opt = make_opt([p for p in m.parameters() if p.requires_grad])
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(m(x.to(dtype)), target.to(dtype) if target.is_floating_point() else target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return {k: v.detach().double() for k, v in m.state_dict().items()}, losses


def make(tag, model, input_shape, labels, loss_fn, make_opt, opt_doc, steps, head_only=False, rank1_seed=0):
    torch.manual_seed(0)
    fill_parameters(model, np.random.default_rng(rank1_seed))
    calibrate_batchnorm(model, input_shape, 4)  # leaves the model in double, with float32-exact values
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 0.1  # calibration used a cumulative average; training uses PyTorch's default
    start = {k: v.detach().clone() for k, v in model.state_dict().items()}
    x = torch.from_numpy(image("input", input_shape)).double()
    target = torch.tensor(labels, dtype=torch.float64 if isinstance(labels[0], float) else torch.int64)
    if target.is_floating_point():
        target = target.reshape(-1, 1)

    after64, loss64 = train(model, x, target, loss_fn, make_opt, steps, head_only, torch.float64)
    after32, loss32 = train(model, x, target, loss_fn, make_opt, steps, head_only, torch.float32)

    tensors = {}
    for name, t in start.items():
        if name.endswith("num_batches_tracked"):
            continue
        if t.dim() <= 1:
            tensors[name] = t.float().numpy()
        else:
            flat = t.float().numpy().ravel()
            tensors["prng_probe." + name] = flat[probe_indices(flat.size)]
    flat = x.float().numpy().ravel()
    tensors["prng_probe.input"] = flat[probe_indices(flat.size)]
    tensors["expected.loss"] = np.array(loss64, dtype=np.float32)
    worst = 0.0
    for name, p in model.named_parameters():
        u64 = (after64[name] - start[name]).numpy().ravel()
        u32 = (after32[name] - start[name]).numpy().ravel()
        idx = update_probes(u64.size)
        tensors["expected.update." + name] = u64[idx].astype(np.float32)
        tensors["expected.err32." + name] = np.array([np.abs(u32[idx] - u64[idx]).max()], dtype=np.float32)
        scale = np.abs(u64).max()
        tensors["expected.max_update." + name] = np.array([scale], dtype=np.float32)
        if scale > 0:
            worst = max(worst, np.abs(u32 - u64).max() / scale)
    for name, t in after64.items():
        if name.endswith("running_mean") or name.endswith("running_var"):
            tensors["expected.final." + name] = t.float().numpy()
    metadata = {
        "input_shape": "x".join(str(d) for d in input_shape),
        "labels": ",".join(str(v) for v in labels),
        "steps": steps,
        "scope": "head_only" if head_only else "whole_network",
        "optimizer": opt_doc,
        "loss32": ",".join(f"{v:.9g}" for v in loss32),
        "float32_worst_relative_update_error": f"{worst:.3g}",
        "prng": PRNG_DOC,
        "made_by": "tests/train/make_training_fixtures.py, torch " + torch.__version__,
    }
    path = os.path.join(OUT_DIR, tag + ".safetensors")
    write_safetensors(path, tensors, metadata)
    print(f"{tag}: losses {['%.6f' % v for v in loss64]}, float32's worst update error {worst:.3g} "
          f"of the tensor's largest update, {os.path.getsize(path) // 1024} KiB")


def main():
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    torch.set_default_dtype(torch.float64)
    os.makedirs(OUT_DIR, exist_ok=True)

    ce = nn.CrossEntropyLoss()
    make("resnet20_sgd_nesterov", CifarResNet(3, 10, in_channels=1), (8, 1, 13, 11), [3, 1, 4, 1, 5, 9, 2, 6], ce,
         lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4),
         "SGD lr=0.1 momentum=0.9 nesterov weight_decay=5e-4", steps=3)

    r18 = torchvision.models.resnet18(num_classes=10)
    make("resnet18_adam_37x45", r18, (3, 3, 37, 45), [7, 0, 3], ce,
         lambda p: torch.optim.Adam(p, lr=1e-3, eps=1e-3),  # eps: see ../shared training notes, sign noise
         "Adam lr=1e-3 eps=1e-3", steps=2, rank1_seed=1)

    make("resnext50_sgd_96x96", torchvision.models.resnext50_32x4d(num_classes=5), (2, 3, 96, 96), [4, 1], ce,
         lambda p: torch.optim.SGD(p, lr=1e-3, momentum=0.9, weight_decay=1e-4),
         "SGD lr=1e-3 momentum=0.9 weight_decay=1e-4", steps=1, rank1_seed=3)  # one: see pytorch_steps.cpp

    binary = CifarResNet(3, 1, in_channels=1)
    binary.fc = nn.Sequential(nn.Linear(64, 1), nn.Sigmoid())
    make("resnet20_head_bce", binary, (8, 1, 13, 11), [1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0], nn.BCELoss(),
         lambda p: torch.optim.SGD(p, lr=0.2, momentum=0.9), "SGD lr=0.2 momentum=0.9", steps=3, head_only=True,
         rank1_seed=2)


if __name__ == "__main__":
    sys.exit(main())
