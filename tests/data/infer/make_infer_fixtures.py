#!/usr/bin/python3
"""Fixtures for ctnn-infer's parity tests (tests/infer/).

Run with Debian's python (torch 1.13, torchvision 0.14, PIL 9.4):
    /usr/bin/python3 tests/data/infer/make_infer_fixtures.py

Builds the CIFAR ResNet-20 in torch with torchvision's names (conv1 3x3 16ch,
bn1, relu, layer1..3 of three BasicBlocks with 16/32/64 planes, stride 2 in
the first block of layers 2 and 3 with a projection shortcut downsample.0
(1x1 conv) + downsample.1 (BN), avgpool, fc), gives it random weights and
BatchNorm statistics calibrated by training-mode forwards, and saves it in
every format ctnn-infer reads:

  resnet20_fc10_p2.pth          torch.save(state_dict), pickle protocol 2 (the default)
  resnet20_fc10_p4.pth          torch.save(state_dict, pickle_protocol=4)
  resnet20_fc10_state_dict.pth  torch.save({'state_dict': sd})
  resnet20_fc10_checkpoint.pth  torch.save({'model': sd, 'epoch': 3, 'best_acc': 0.5, ...})
  resnet20_fc10.safetensors     written by write_safetensors below (stdlib only)
  resnet20_sigmoid.pth          fc = Sequential(Linear(64, 1), Sigmoid())
  resnet20_dropout_softmax7.pth fc = Sequential(Linear(64, 7), Dropout(0.5), Softmax(dim=1))

and the inputs and torch's outputs (eval mode, float32):

  input_3x3x29x35.npy           a batch of 3 at an odd, non-square size
  expected_fc10.npy, expected_sigmoid.npy, expected_dropout_softmax7.npy   (N x K)
  expected_images_fc10.npy      the fc10 model on tests/data/image/rgb_97x131.png and
                                rgb_250x61.png through torchvision's Resize(40),
                                CenterCrop(32), ToTensor, ImageNet Normalize

Size: the conv weights of every model are windows into one shared bank
tensor (nn.Parameter views at different storage offsets). torch.save writes a
shared storage once, so each .pth holds 40000 bank floats instead of 270k
weights, and the reader's storage_offset path is exercised on every conv.
The bank's values are exactly representable in float16, so the safetensors
file stores the conv weights as F16 (half the size) with identical values,
and one expected output serves every fc10 file.
"""
import json
import os
import struct
import sys

import numpy as np
import torch
from PIL import Image
from torch import nn
from torchvision import transforms
from torchvision.models.resnet import BasicBlock

HERE = os.path.dirname(os.path.abspath(__file__))
IMAGE_DIR = os.path.join(HERE, "..", "image")
BANK_SIZE = 40000


class CifarResNet20(nn.Module):
    def __init__(self, fc):
        super().__init__()
        self.inplanes = 16
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(16, 3, 1)
        self.layer2 = self._make_layer(32, 3, 2)
        self.layer3 = self._make_layer(64, 3, 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = fc

    def _make_layer(self, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def build(make_fc, seed):
    torch.manual_seed(seed)
    model = CifarResNet20(make_fc())
    bank = (torch.randn(BANK_SIZE) * 0.08).half().float()
    offset = 0
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            n = m.weight.numel()
            start = (offset * 997) % (BANK_SIZE - n + 1)  # overlapping windows, all different
            offset += 1
            # He-like scaling cannot be applied without breaking the view, so
            # the bank's std (0.08) is a compromise; BN calibration below
            # normalises each layer's output anyway.
            m.weight = nn.Parameter(bank[start:start + n].view(m.weight.shape))
        elif isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.2)
    # Calibrate BN statistics on data: momentum=None keeps a cumulative
    # average over the training-mode forwards.
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None
    model.train()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for _ in range(6):
            model(torch.randn(8, 3, 32, 32, generator=g) * 1.2 + 0.1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 0.1
    model.eval()
    return model


def write_safetensors(path, sd, half_convs):
    """The safetensors layout by hand: u64 header length, JSON header, bytes."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    dtypes = {torch.float32: ("F32", "<f4"), torch.float16: ("F16", "<f2"), torch.int64: ("I64", "<i8")}
    for name, t in sd.items():
        t = t.detach().contiguous()
        if half_convs and t.dim() == 4:
            assert torch.equal(t.half().float(), t), f"{name} is not exactly representable in float16"
            t = t.half()
        tag, np_dtype = dtypes[t.dtype]
        data = t.numpy().astype(np_dtype).tobytes()
        header[name] = {"dtype": tag, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def check_informative(tag, y):
    y = y.numpy()
    assert np.isfinite(y).all(), tag
    assert y.std(0).mean() > 1e-3, f"{tag}: outputs do not vary across the batch: {y}"
    if y.shape[1] > 1:
        assert y.std(1).mean() > 1e-3, f"{tag}: outputs do not vary across classes"
    print(f"{tag}: output {list(y.shape)}, range [{y.min():.4f}, {y.max():.4f}], std over batch {y.std(0).mean():.4f}")


def main():
    torch.set_num_threads(1)
    # Items differ in brightness, contrast and structure, so that outputs
    # differ across the batch after global average pooling.
    r = np.random.RandomState(7)
    yy, xx = np.mgrid[0:29, 0:35]
    x = np.stack([r.normal(0, 0.3 + 0.4 * i, (3, 29, 35)) + r.normal(0, 0.8, (3, 1, 1)) +
                  np.sin(xx / (2.0 + 3 * i) + yy / (3.0 + i)) * (1.0 - 0.4 * i) for i in range(3)])
    x = torch.from_numpy(x.astype(np.float32))
    np.save(os.path.join(HERE, "input_3x3x29x35.npy"), x.numpy())

    fc10 = build(lambda: nn.Linear(64, 10), seed=1)
    sd = fc10.state_dict()
    assert len(sd) == 1 + 5 + 9 * (2 + 2 * 5) + 2 * (1 + 5) + 2, len(sd)  # stem, blocks, downsamples, fc
    with torch.no_grad():
        y = fc10(x)
    check_informative("fc10", y)
    np.save(os.path.join(HERE, "expected_fc10.npy"), y.numpy())
    torch.save(sd, os.path.join(HERE, "resnet20_fc10_p2.pth"))
    torch.save(sd, os.path.join(HERE, "resnet20_fc10_p4.pth"), pickle_protocol=4)
    torch.save({"state_dict": sd}, os.path.join(HERE, "resnet20_fc10_state_dict.pth"))
    torch.save({"model": sd, "epoch": 3, "best_acc": 0.5, "arch": "resnet20", "lr": [0.1, 0.01]},
               os.path.join(HERE, "resnet20_fc10_checkpoint.pth"))
    write_safetensors(os.path.join(HERE, "resnet20_fc10.safetensors"), sd, half_convs=True)

    # The same model on two PNGs through torchvision's ImageNet-style transform.
    t = transforms.Compose([transforms.Resize(40), transforms.CenterCrop(32), transforms.ToTensor(),
                            transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])
    imgs = torch.stack([t(Image.open(os.path.join(IMAGE_DIR, f)).convert("RGB"))
                        for f in ("rgb_97x131.png", "rgb_250x61.png")])
    with torch.no_grad():
        yi = fc10(imgs)
    check_informative("images fc10", yi)
    np.save(os.path.join(HERE, "expected_images_fc10.npy"), yi.numpy())

    for tag, fc, seed in (("sigmoid", lambda: nn.Sequential(nn.Linear(64, 1), nn.Sigmoid()), 2),
                          ("dropout_softmax7",
                           lambda: nn.Sequential(nn.Linear(64, 7), nn.Dropout(0.5), nn.Softmax(dim=1)), 3)):
        m = build(fc, seed=seed)
        with torch.no_grad():
            y = m(x)
        check_informative(tag, y)
        np.save(os.path.join(HERE, f"expected_{tag}.npy"), y.numpy())
        torch.save(m.state_dict(), os.path.join(HERE, f"resnet20_{tag}.pth"))

    # Round trip through torch.load, as a sanity check of the files themselves.
    for f in ("resnet20_fc10_p2.pth", "resnet20_fc10_p4.pth"):
        sd2 = torch.load(os.path.join(HERE, f))
        assert all(torch.equal(sd[k], sd2[k]) for k in sd), f
    print("done")


if __name__ == "__main__":
    sys.exit(main())
