#!/usr/bin/python3
"""Whole-network training step, ctnn against PyTorch, interleaved in one run.

    /usr/bin/python3 benchmarks/train_peers.py --bench build/benchmarks/ctnn-bench
        [--models resnet20,resnet18,resnet50] [--threads 2] [--rounds 5] [--runs 6]
        [--warmup 2] [--compile] [--settle 1] [--json FILE]

Each round times, for every model, ctnn (`ctnn-bench --train --json`, a
separate process) and then PyTorch in this process: eager NCHW, eager
channels_last and, with --compile, torch.compile. Every measurement is the
median step time of --runs steps after --warmup steps, all with the same
network, input size, batch, loss (cross-entropy, 10 classes) and optimiser
(SGD lr 0.01, momentum 0.9, Nesterov, weight decay 5e-4) on --threads
threads. The table gives the median over rounds and ctnn's step time as a
fraction of PyTorch's best variant (below 1: ctnn is faster). Shared machines
are noisy: use several rounds and read the medians, never one run.

Networks as ctnn-bench trains them: resnet20 (He et al.'s CIFAR ResNet-20,
option B, 1x28x28, batch 128), resnet18 (torchvision's, 3x64x64, batch 64),
resnet50 (3x64x64, batch 32). Reported, never asserted.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_fashion_mnist import ResNet20  # noqa: E402  (the same network as ctnn's ResNet20, option B)

SHAPES = {  # model: (channels, size, batch)
    "resnet20": (1, 28, 128),
    "resnet18": (3, 64, 64),
    "resnet50": (3, 64, 32),
}


def torch_model(name):
    if name == "resnet20":
        return ResNet20(10)
    import torchvision
    return getattr(torchvision.models, name)(num_classes=10)


def torch_step_ms(model, x, y, runs, warmup):
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    loss = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss(model(x), y).backward()
        opt.step()

    for _ in range(warmup):
        step()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        step()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def torch_variants(name, threads, runs, warmup, compile_too):
    torch.set_num_threads(threads)
    c, s, b = SHAPES[name]
    torch.manual_seed(0)
    x = torch.randn(b, c, s, s)
    y = torch.arange(b) % 10
    out = {}
    out["torch eager NCHW"] = torch_step_ms(torch_model(name), x, y, runs, warmup)
    m = torch_model(name).to(memory_format=torch.channels_last)
    out["torch eager channels_last"] = torch_step_ms(m, x.to(memory_format=torch.channels_last), y, runs, warmup)
    if compile_too and hasattr(torch, "compile"):
        out["torch.compile"] = torch_step_ms(torch.compile(torch_model(name)), x, y, runs, max(warmup, 3))
    return out


def ctnn_step_ms(bench, name, threads, runs, warmup):
    c, s, b = SHAPES[name]
    cmd = [bench, "--train", "--model", name, "--batch", str(b), "--size", str(s), "--threads", str(threads),
           "--runs", str(runs), "--warmup", str(warmup), "--json"]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"train_peers.py: {' '.join(cmd)} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])["median_ms"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bench", required=True, help="path of the ctnn-bench executable")
    ap.add_argument("--models", default="resnet20")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (slow to warm up)")
    ap.add_argument("--settle", type=float, default=1.0, help="seconds of idle before each ctnn run")
    ap.add_argument("--json", help="write every measurement to this file")
    a = ap.parse_args()
    models = a.models.split(",")
    for m in models:
        if m not in SHAPES:
            sys.exit(f"train_peers.py: unknown model {m}; expected one of {', '.join(SHAPES)}")
    if not os.access(a.bench, os.X_OK):
        sys.exit(f"train_peers.py: {a.bench} is not an executable (build the ctnn-bench target)")

    samples = {}  # (model, variant) -> [ms per round]
    for r in range(a.rounds):
        for m in models:
            # PyTorch's OpenMP workers spin for a while after their last parallel region;
            # let them go to sleep before ctnn runs on the same cores.
            time.sleep(a.settle)
            samples.setdefault((m, "ctnn cpu"), []).append(ctnn_step_ms(a.bench, m, a.threads, a.runs, a.warmup))
            for variant, ms in torch_variants(m, a.threads, a.runs, a.warmup, a.compile).items():
                samples.setdefault((m, variant), []).append(ms)
        print(f"round {r + 1}/{a.rounds} done", file=sys.stderr)

    print(f"whole-network training step, {a.threads} threads, torch {torch.__version__}, "
          f"medians of {a.rounds} rounds x {a.runs} steps")
    print(f"{'model':<9} {'input':<12} {'variant':<27} {'ms/step':>9} {'images/s':>9} {'ctnn/this':>9}")
    for m in models:
        c, s, b = SHAPES[m]
        med = {v: statistics.median(t) for (mm, v), t in samples.items() if mm == m}
        for v, ms in med.items():
            print(f"{m:<9} {f'{c}x{s}x{s} b{b}':<12} {v:<27} {ms:9.1f} {b / ms * 1e3:9.0f} {med['ctnn cpu'] / ms:9.2f}")
        best = min((ms, v) for v, ms in med.items() if v != "ctnn cpu")
        print(f"{m}: ctnn / best PyTorch ({best[1]}) = {med['ctnn cpu'] / best[0]:.2f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump([{"model": m, "variant": v, "ms": t} for (m, v), t in samples.items()], f, indent=1)


if __name__ == "__main__":
    main()
