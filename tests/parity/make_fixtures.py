#!/usr/bin/python3
"""Generates the PyTorch parity fixtures in tests/data/parity/.

Run:  cd tests/parity && /usr/bin/python3 make_fixtures.py [TAG...]
Needs torch + torchvision (Debian python3-torch 1.13 / python3-torchvision 0.14)
and numpy. The C++ test suite does not need any of them: it reads the files
written here.

Why the fixtures are split the way they are
-------------------------------------------
Conv and linear weights (every tensor of rank >= 2) and the input images are
not stored: they are regenerated from a tiny counter-based PRNG that is
implemented identically here (numpy) and in C++ (tests/support/fixture_rng.hpp).
Everything of rank <= 1 (BatchNorm weight/bias/running_mean/running_var after
calibration, linear biases) and the expected outputs and pooled features are
stored, one small safetensors file per fixture. That keeps ResNet-50 parity at
a few kilobytes instead of 100 MB.

The PRNG (also written into every file's __metadata__)
------------------------------------------------------
  fnv1a64(s)   : h = 0xcbf29ce484222325; for each UTF-8 byte b: h = (h ^ b) * 0x100000001b3 mod 2^64
  seed(name)   : fnv1a64(name) ^ base_seed
  splitmix64   : z_i = mix(seed + (i + 1) * 0x9e3779b97f4a7c15 mod 2^64), i = 0, 1, ... (flat
                 row-major index); mix(z): z = (z ^ z>>30) * 0xbf58476d1ce4e5b9;
                 z = (z ^ z>>27) * 0x94d049bb133111eb; z ^ z>>31
  k_i          : z_i >> 40                     (24 bits, 0 .. 2^24-1)
  s_i          : (k_i - 2^23) / 2^23           (exactly representable, in [-1, 1))
  weight       : float32(double(k_i - 2^23) * (sqrt(6 / fan_in) / 2^23)),  fan_in = prod(shape[1:])
                 (He-uniform bound; the product is rounded once, in double, then to float32)
  input        : float32(double(k_i - 2^23) * (2 / 2^23) + offset[n][c])
                 with offset[n][c] = float32(double(j - 2^23) * (1 / 2^23)) where j are the
                 24-bit draws of the stream named "input.offset" (flat index n * C + c).
The per-image, per-channel offset gives the images different global
statistics, so pooled features (and outputs) differ clearly across the batch:
pure i.i.d. noise would average out in the global pooling.
"""

import copy
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision.models.resnet import BasicBlock, Bottleneck, conv1x1

BASE_SEED = 0x63746E6E70617269  # "ctnnpari"
OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "parity")

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
GAMMA = np.uint64(0x9E3779B97F4A7C15)
M1 = np.uint64(0xBF58476D1CE4E5B9)
M2 = np.uint64(0x94D049BB133111EB)
MASK64 = (1 << 64) - 1


# ---------------------------------------------------------------------------
# PRNG (mirrors tests/support/fixture_rng.hpp)

def fnv1a64(name: str) -> int:
    h = FNV_OFFSET
    for b in name.encode("utf-8"):
        h = ((h ^ b) * FNV_PRIME) & MASK64
    return h


def draws24(name: str, n: int, base_seed: int = BASE_SEED) -> np.ndarray:
    """The first n 24-bit draws (as int64) of the stream named `name`."""
    seed = np.uint64(fnv1a64(name) ^ base_seed)
    with np.errstate(over="ignore"):
        z = seed + np.arange(1, n + 1, dtype=np.uint64) * GAMMA
        z = (z ^ (z >> np.uint64(30))) * M1
        z = (z ^ (z >> np.uint64(27))) * M2
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(40)).astype(np.int64)


def symmetric(name: str, n: int, bound: float) -> np.ndarray:
    """float32(double(k - 2^23) * (bound / 2^23)): uniform in [-bound, bound)."""
    k = draws24(name, n) - (1 << 23)
    return (k.astype(np.float64) * (bound / float(1 << 23))).astype(np.float32)


def weight(name: str, shape) -> np.ndarray:
    n = int(np.prod(shape))
    fan_in = int(np.prod(shape[1:]))
    return symmetric(name, n, math.sqrt(6.0 / fan_in)).reshape(shape)


def image(name: str, shape) -> np.ndarray:
    n, c, h, w = shape
    noise = (draws24(name, n * c * h * w) - (1 << 23)).astype(np.float64) * (2.0 / float(1 << 23))
    offset = symmetric(name + ".offset", n * c, 1.0).astype(np.float64)
    x = noise.reshape(n, c, h * w) + offset.reshape(n, c, 1)
    return x.astype(np.float32).reshape(shape)


# ---------------------------------------------------------------------------
# safetensors writer (stdlib + numpy; Debian has no python3-safetensors)

def write_safetensors(path: str, tensors: dict, metadata: dict) -> None:
    header = {"__metadata__": {k: str(v) for k, v in metadata.items()}}
    blobs, offset = [], 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr, dtype="<f4")
        data = arr.tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


# ---------------------------------------------------------------------------
# Networks

class CifarResNet(nn.Module):
    """He et al. (2016) CIFAR ResNet, option B shortcuts, torchvision names."""

    def __init__(self, blocks_per_stage, num_classes=10, in_channels=3):
        super().__init__()
        self.inplanes = 16
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(16, blocks_per_stage, 1)
        self.layer2 = self._make_layer(32, blocks_per_stage, 2)
        self.layer3 = self._make_layer(64, blocks_per_stage, 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64, num_classes)

    def _make_layer(self, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes:  # exactly torchvision's rule
            downsample = nn.Sequential(conv1x1(self.inplanes, planes, stride), nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def features(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x):
        return self.fc(self.features(x))


class PadShortcut(nn.Module):
    """Option A: x[:, :, ::2, ::2] with planes // 4 zero channels on each side (the common CIFAR code)."""

    def __init__(self, planes, stride):
        super().__init__()
        self.pad, self.stride = planes // 4, stride

    def forward(self, x):
        return F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, self.pad, self.pad))


class BasicBlockA(BasicBlock):
    """torchvision's BasicBlock with the option A shortcut where the shape changes."""

    def __init__(self, inplanes, planes, stride):
        super().__init__(inplanes, planes, stride, None)
        self.pad_shortcut = PadShortcut(planes, stride) if stride != 1 or inplanes != planes else None

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + (x if self.pad_shortcut is None else self.pad_shortcut(x)))


class CifarResNetA(CifarResNet):
    """The same network with option A shortcuts: no projection parameters (269,722 for 3 channels)."""

    def _make_layer(self, planes, blocks, stride):
        layers = [BasicBlockA(self.inplanes, planes, stride)]
        self.inplanes = planes
        layers += [BasicBlockA(planes, planes, 1) for _ in range(1, blocks)]
        return nn.Sequential(*layers)


def tv_features(model, x):
    """Pooled backbone features of a torchvision ResNet (everything before fc)."""
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    x = model.layer4(model.layer3(model.layer2(model.layer1(x))))
    return torch.flatten(model.avgpool(x), 1)


HEADS = {
    # fixture suffix -> (constructor of the fc head, C++ head type)
    "fc1000": (lambda: nn.Linear(512, 1000), "ctnn::Linear<512, 1000>"),
    "fc10": (lambda: nn.Linear(512, 10), "ctnn::Linear<512, 10>"),
    "sigmoid": (lambda: nn.Sequential(nn.Linear(512, 1), nn.Sigmoid()),
                "ctnn::Sequential<ctnn::Linear<512, 1>, ctnn::Sigmoid>"),
    "dropout_softmax": (lambda: nn.Sequential(nn.Linear(512, 1000), nn.Dropout(0.5), nn.Softmax(dim=1)),
                        "ctnn::Sequential<ctnn::Linear<512, 1000>, ctnn::Dropout<0.5>, ctnn::Softmax>"),
}


# ---------------------------------------------------------------------------
# Parameter filling and BatchNorm calibration

def fill_parameters(model: nn.Module, rank1: np.random.Generator) -> None:
    """Rank >= 2 from the shared PRNG; rank <= 1 from numpy (they are stored)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.copy_(torch.from_numpy(weight(name, tuple(p.shape))))
            elif name.endswith(".weight"):  # BatchNorm gamma: keep it away from 0
                p.copy_(torch.from_numpy(rank1.uniform(0.5, 1.5, p.shape).astype(np.float32)))
            else:  # BatchNorm beta, linear biases
                p.copy_(torch.from_numpy(rank1.uniform(-0.2, 0.2, p.shape).astype(np.float32)))


def calibrate_batchnorm(model: nn.Module, input_shape, batches: int) -> None:
    """Replaces the initial running statistics by statistics measured on data.

    momentum=None makes PyTorch keep a cumulative average over the calibration
    batches. Each BatchNorm then normalises with the batch statistics, so the
    layers behind it see well-scaled activations while their own statistics
    are gathered, and the eval-mode network sees statistics of the same input
    distribution it will be evaluated on.
    """
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        for b in range(batches):
            model(torch.from_numpy(image(f"calibration.{b}", input_shape)).double())
    model.eval()
    # Store-and-reload rounding: the fixture keeps float32 statistics, so the
    # reference output must be computed from exactly those values.
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.copy_(t.float().double())


# ---------------------------------------------------------------------------
# Sanity checks: fixtures must be informative (nothing exploded, vanished or
# saturated, and the batch elements must be told apart).

def check_informative(tag, features, output, head_kind):
    f = features.numpy().astype(np.float64)
    y = output.numpy().astype(np.float64)
    assert np.all(np.isfinite(f)) and np.all(np.isfinite(y)), f"{tag}: non-finite values"
    fmean = np.abs(f).mean()
    assert 1e-2 < fmean < 1e2, f"{tag}: pooled features mean |f| = {fmean}"
    # Features must differ across the batch relative to their magnitude.
    fspread = np.abs(f[0] - f[1]).mean() / fmean
    assert fspread > 0.05, f"{tag}: features barely differ across the batch ({fspread})"
    if head_kind == "sigmoid":
        assert np.all((y > 0.02) & (y < 0.98)), f"{tag}: saturated sigmoid {y.ravel()}"
        assert np.abs(y[0] - y[1]).max() > 0.02, f"{tag}: sigmoid outputs equal across batch {y.ravel()}"
    elif head_kind == "softmax":
        assert np.allclose(y.sum(1), 1.0, atol=1e-5)
        assert y.max() < 0.5, f"{tag}: softmax nearly one-hot (max {y.max()})"
        assert y.max() / y.min() > 3.0, f"{tag}: softmax nearly uniform"
        d = np.abs(y[0] - y[1]).max() / y.max()
        assert d > 0.05, f"{tag}: softmax outputs equal across batch ({d})"
    else:
        std_batch = y.std(0).mean()
        std_class = y.std(1).mean()
        assert std_class > 0.1, f"{tag}: logits std over classes {std_class}"
        assert std_batch > 0.05 * std_class, f"{tag}: logits std across batch {std_batch} vs {std_class}"
        assert np.abs(y).max() < 1e3, f"{tag}: logits exploded"
    return {
        "features_mean_abs": fmean,
        "features_batch_spread": fspread,
        "output_min": y.min(),
        "output_max": y.max(),
        "output_std_across_batch": y.std(0).mean(),
    }


def fixture_tensors(model, features, output, x):
    tensors = {}
    sd = model.state_dict()
    for name, t in sd.items():
        if name.endswith("num_batches_tracked"):
            continue  # bookkeeping, not a parameter of the forward pass
        if t.dim() <= 1:
            tensors[name] = t.numpy()
    # Probes: a few PRNG values of every generated tensor, so a C++ generator
    # mismatch is reported by tensor name rather than as a vague parity error.
    for name, t in sd.items():
        if t.dim() >= 2:
            flat = t.numpy().ravel()
            tensors["prng_probe." + name] = flat[probe_indices(flat.size)]
    flat = x.numpy().ravel()
    tensors["prng_probe.input"] = flat[probe_indices(flat.size)]
    tensors["expected.features"] = features.numpy()
    tensors["expected.output"] = output.numpy()
    return tensors


def probe_indices(n):
    return np.array([0, 1, n // 2, n - 1], dtype=np.int64)


PRNG_DOC = ("splitmix64 stream per tensor, seed = fnv1a64(name) ^ base_seed, z_i = mix(seed + (i+1)*0x9e3779b97f4a7c15), "
            "k_i = z_i >> 40; weight = float32(double(k_i - 2^23) * (sqrt(6/fan_in) / 2^23)), fan_in = prod(shape[1:]); "
            "input = float32(double(k_i - 2^23) * (2/2^23) + offset[n][c]), offset = float32(double(j - 2^23) * (1/2^23)) "
            "from stream 'input.offset' (index n*C+c); probes at flat indices [0, 1, n/2, n-1]; see tests/parity/make_fixtures.py")


def make(tag, model, cpp_type, input_shape, head_kind, features_fn, calib_batches=8, rank1_seed=0,
         center_sigmoid=False, stats=None):
    if len(sys.argv) > 1 and tag not in sys.argv[1:]:
        return  # `make_fixtures.py TAG...` regenerates only those
    torch.manual_seed(0)
    rng = np.random.default_rng(rank1_seed)
    fill_parameters(model, rng)
    calibrate_batchnorm(model, input_shape, calib_batches)
    x = torch.from_numpy(image("input", input_shape)).double()
    block_std = []
    hooks = [m.register_forward_hook(lambda _m, _i, o: block_std.append(o.std().item()))
             for m in model.modules() if isinstance(m, (BasicBlock, Bottleneck))]
    with torch.no_grad():
        feats = features_fn(model, x)
    for h in hooks:
        h.remove()
    # Residual streams grow with depth; anything far outside this band would
    # make the fixture test rounding noise or a dead network instead of ctnn.
    assert block_std and 0.2 < min(block_std) and max(block_std) < 20, f"{tag}: block output std {block_std}"
    with torch.no_grad():
        if center_sigmoid:
            # Centre the binary head on this batch so the sigmoid works in its
            # sensitive range (bias is stored, so any value is allowed).
            lin = model.fc[0]
            logits = feats @ lin.weight.T
            lin.bias.copy_((-logits.mean(0) + 0.25).float().double())
        out = model(x)
        # torch's own float32 error against this float64 reference, for docs/parity.md.
        m32 = copy.deepcopy(model).float()
        out32 = m32(x.float()).double()
        torch_f32_err = ((out32 - out).abs().max() / out.abs().max()).item()
    info = check_informative(tag, feats, out, head_kind)
    info["block_std_min"] = min(block_std)
    info["block_std_max"] = max(block_std)
    info["torch_f32_rel_err"] = torch_f32_err
    tensors = fixture_tensors(model, feats, out, x)
    meta = {
        "fixture": tag,
        "cpp_type": cpp_type,
        "input_shape": "x".join(str(d) for d in input_shape),
        "base_seed": f"0x{BASE_SEED:016x}",
        "prng": PRNG_DOC,
        "bn_calibration": f"{calib_batches} training-mode batches of stream 'calibration.<b>', momentum=None",
        "generator": f"torch {torch.__version__}, torchvision {torchvision.__version__}, tests/parity/make_fixtures.py",
        "parameters": str(sum(p.numel() for p in model.parameters())),
    }
    path = os.path.join(OUT_DIR, tag + ".safetensors")
    write_safetensors(path, tensors, meta)
    print(f"{tag:28s} {os.path.getsize(path):8d} B  " +
          "  ".join(f"{k}={v:.4g}" for k, v in info.items()))
    if stats is not None:
        stats[tag] = info


def main():
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    # Double precision in torch for the reference: the fixture is then the
    # exact answer for the float32 weights, and the tolerance measures only
    # ctnn's own float32 rounding.
    torch.set_default_dtype(torch.float64)
    os.makedirs(OUT_DIR, exist_ok=True)
    tv = torchvision.models

    def r18(head):
        m = tv.resnet18()
        m.fc = HEADS[head][0]()
        return m

    make("resnet18_fc1000", r18("fc1000"), "ctnn::ResNet18<>", (2, 3, 224, 224), "logits", tv_features)
    make("resnet18_fc10", r18("fc10"), "ctnn::ResNet18<ctnn::Linear<512, 10>>", (2, 3, 224, 224), "logits",
         tv_features)
    make("resnet18_sigmoid", r18("sigmoid"), f"ctnn::ResNet18<{HEADS['sigmoid'][1]}>", (2, 3, 224, 224),
         "sigmoid", tv_features, center_sigmoid=True)
    make("resnet18_dropout_softmax", r18("dropout_softmax"), f"ctnn::ResNet18<{HEADS['dropout_softmax'][1]}>",
         (2, 3, 224, 224), "softmax", tv_features)
    make("resnet34_160x208", tv.resnet34(), "ctnn::ResNet34<>", (2, 3, 160, 208), "logits", tv_features)
    make("resnet50", tv.resnet50(), "ctnn::ResNet50<>", (2, 3, 224, 224), "logits", tv_features)
    make("resnext50_32x4d_64x80", tv.resnext50_32x4d(), "ctnn::ResNeXt50_32x4d<>", (2, 3, 64, 80), "logits",
         tv_features)
    make("wide_resnet50_2_64x64", tv.wide_resnet50_2(), "ctnn::WideResNet50_2<>", (2, 3, 64, 64), "logits",
         tv_features)
    r20 = CifarResNet(3, 10, in_channels=1)
    make("resnet20_1x28x28", r20, "ctnn::ResNet20<ctnn::Linear<64, 10>, ctnn::Image<1, 28, 28>>",
         (2, 1, 28, 28), "logits", lambda m, x: m.features(x))
    r20a = CifarResNetA(3, 10, in_channels=1)
    make("resnet20a_1x28x28", r20a, "ctnn::ResNet20A<ctnn::Linear<64, 10>, ctnn::Image<1, 28, 28>>",
         (2, 1, 28, 28), "logits", lambda m, x: m.features(x))
    na = sum(p.numel() for p in CifarResNetA(3, 10, in_channels=3).parameters())
    assert na == 269722, f"ResNet-20 option A (3 channels, 10 classes) has {na} parameters, expected 269722"
    n3 = sum(p.numel() for p in CifarResNet(3, 10, in_channels=3).parameters())
    assert n3 == 272474, f"ResNet-20 (3 channels, 10 classes) has {n3} parameters, expected 272474"


if __name__ == "__main__":
    sys.exit(main())
