#!/usr/bin/python3
"""Test images and torchvision's preprocessing of them, for tests/image/.

Run with Debian's python (PIL 9.4, torch 1.13, torchvision 0.14):
    /usr/bin/python3 tests/data/image/make_image_fixtures.py
Writes, next to this script:
  *.png / *.jpg        synthetic images (smooth gradients, sharp shapes, mild
                       noise: resampling and JPEG both have work to do), of
                       assorted sizes, odd ones included, and PIL modes L, P,
                       RGBA, 16-bit;
  expected/*.npy       torchvision's output for each case in cases.txt;
  cases.txt            file, resize, crop, kind, expected file.
Kinds: "tensor" = Compose([Resize(r), CenterCrop(c), ToTensor(), Normalize(
ImageNet mean/std)]) as float32 3xHxW; "pixels" = the PIL image after Resize
and CenterCrop, uint8 HxWx3 (for the full 256/224 case, to keep the files
small; ToTensor/Normalize are covered by the tensor cases); "decoded" = PIL's
decoded RGB pixels, uint8 HxWx3 (JPEG decoder comparison).
Also writes bad/*: the hostile corpus (see bad/expected.txt).
"""
import io
import os
import struct
import zlib

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.RandomState(20240611)


def synthetic(w, h, seed):
    r = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    img[..., 0] = 255 * x / max(w - 1, 1)
    img[..., 1] = 255 * y / max(h - 1, 1)
    img[..., 2] = 128 + 100 * np.sin(x / 7.0 + y / 11.0)
    for _ in range(6):  # sharp-edged discs and bars
        cx, cy, rad = r.uniform(0, w), r.uniform(0, h), r.uniform(3, max(w, h) / 4)
        col = r.uniform(0, 255, 3)
        img[(x - cx) ** 2 + (y - cy) ** 2 < rad ** 2] = col
        x0 = r.randint(0, w)
        img[:, x0:x0 + r.randint(1, 4)] = r.uniform(0, 255, 3)
    img[:, : w // 4] += r.normal(0, 4, img[:, : w // 4].shape)  # noise in one strip (keeps the PNGs small)
    return Image.fromarray(np.clip(img + 0.5, 0, 255).astype(np.uint8), "RGB")


def save(img, name, **kw):
    img.save(os.path.join(HERE, name), **kw)


def make_images():
    save(synthetic(339, 300, 1), "rgb_339x300.png")        # default pipeline: 300->256, long side 289, crop offset 32.5 -> 32
    save(synthetic(97, 131, 2), "rgb_97x131.png")          # portrait, odd, upsampled
    save(synthetic(250, 61, 3), "rgb_250x61.png")          # wide
    save(synthetic(64, 48, 4).convert("L"), "grey_64x48.png")
    save(synthetic(80, 60, 5).convert("P", palette=Image.ADAPTIVE, colors=32), "palette_80x60.png")
    rgba = synthetic(70, 50, 6).convert("RGBA")
    rgba.putalpha(Image.fromarray((np.arange(70 * 50) % 256).reshape(50, 70).astype(np.uint8)))
    save(rgba, "rgba_70x50.png")
    save(synthetic(161, 121, 7), "photo_161x121.jpg", quality=90)                  # 4:2:0
    save(synthetic(161, 121, 7), "photo444_161x121.jpg", quality=95, subsampling=0)
    save(synthetic(120, 90, 8), "progressive_120x90.jpg", quality=85, progressive=True)
    save(synthetic(75, 103, 9).convert("L"), "grey_75x103.jpg", quality=90)
    # 16-bit RGB PNG, written by hand (PIL cannot write it): high byte = the
    # 8-bit image, low byte noise; PIL and stb both keep the high byte.
    base = np.asarray(synthetic(33, 21, 10)).astype(np.uint16)
    wide = (base << 8) | rng.randint(0, 256, base.shape).astype(np.uint16)
    with open(os.path.join(HERE, "rgb16_33x21.png"), "wb") as f:
        f.write(png_bytes(wide.astype(">u2").tobytes(), 33, 21, 16, 2, 6))


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bytes(raw, w, h, depth, colour, bytes_per_pixel):
    rows = b"".join(b"\0" + raw[y * w * bytes_per_pixel:(y + 1) * w * bytes_per_pixel] for y in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


NORMALIZE = transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])

# file, resize, crop, kind
CASES = [
    ("rgb_339x300.png", 256, 224, "pixels"),
    ("rgb_339x300.png", 64, 56, "tensor"),       # 4.7x downscale: wide antialiasing kernel
    ("rgb_97x131.png", 150, 140, "pixels"),      # upscale 1.5x
    ("rgb_97x131.png", 40, 33, "tensor"),
    ("rgb_250x61.png", 50, 48, "tensor"),
    ("rgb_250x61.png", 70, 66, "tensor"),        # slight upscale (61 -> 70)
    ("rgb_250x61.png", 61, 64, "tensor"),        # shorter side unchanged; crop wider than tall -> pads
    ("grey_64x48.png", 30, 27, "tensor"),
    ("palette_80x60.png", 45, 41, "tensor"),
    ("rgba_70x50.png", 37, 35, "tensor"),
    ("rgb16_33x21.png", 21, 21, "tensor"),
    ("photo_161x121.jpg", 0, 0, "decoded"),
    ("photo444_161x121.jpg", 0, 0, "decoded"),
    ("progressive_120x90.jpg", 0, 0, "decoded"),
    ("grey_75x103.jpg", 0, 0, "decoded"),
    ("photo_161x121.jpg", 64, 56, "tensor"),
    ("progressive_120x90.jpg", 80, 72, "tensor"),
    ("grey_75x103.jpg", 60, 52, "tensor"),
]


def make_expected():
    os.makedirs(os.path.join(HERE, "expected"), exist_ok=True)
    lines = ["# file\tresize\tcrop\tkind\texpected (written by make_image_fixtures.py)"]
    for name, resize, crop, kind in CASES:
        img = Image.open(os.path.join(HERE, name)).convert("RGB")
        stem = os.path.splitext(name)[0]
        if kind == "decoded":
            out, arr = f"{stem}.decoded.npy", np.asarray(img)
        else:
            t = transforms.CenterCrop(crop)(transforms.Resize(resize)(img))
            if kind == "pixels":
                out, arr = f"{stem}.r{resize}c{crop}.pixels.npy", np.asarray(t)
            else:
                out = f"{stem}.r{resize}c{crop}.npy"
                arr = NORMALIZE(transforms.ToTensor()(t)).numpy().astype(np.float32)
        np.save(os.path.join(HERE, "expected", out), np.ascontiguousarray(arr))
        lines.append(f"{name}\t{resize}\t{crop}\t{kind}\texpected/{out}")
    with open(os.path.join(HERE, "cases.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


# ---- hostile corpus --------------------------------------------------------------

def make_bad():
    d = os.path.join(HERE, "bad")
    os.makedirs(d, exist_ok=True)
    png = open(os.path.join(HERE, "rgb_97x131.png"), "rb").read()
    jpg = open(os.path.join(HERE, "photo_161x121.jpg"), "rb").read()
    prog = open(os.path.join(HERE, "progressive_120x90.jpg"), "rb").read()
    small = png_bytes(bytes(3 * 4 * 3), 4, 3, 8, 2, 3)
    rows = []

    def bad(name, data, expected):
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        rows.append((name, expected))

    def ihdr(w, h, depth=8, colour=2, tail=(0, 0, 0)):
        return chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour, *tail))

    sig = b"\x89PNG\r\n\x1a\n"
    idat = chunk(b"IDAT", zlib.compress(b"\0" * 13))
    iend = chunk(b"IEND", b"")
    bad("empty.png", b"", "empty file (0 bytes)")
    bad("text.png", b"hello, this is not an image\n", "not a PNG or JPEG image (first bytes 68 65")
    bad("gif.png", b"GIF89a" + bytes(20), "it looks like a GIF image")
    bad("bmp.jpg", b"BM" + bytes(60), "it looks like a BMP image")
    bad("webp.png", b"RIFF\x10\0\0\0WEBPVP8 " + bytes(8), "it looks like a WebP image")
    bad("npy.png", b"\x93NUMPY\x01\x00" + bytes(8), "it looks like a NumPy .npy file")
    bad("signature_only.png", sig, "truncated PNG: the file ends at byte 8 before the IHDR chunk")
    bad("png_truncated_half.png", png[:len(png) // 2], "truncated PNG: chunk 'IDAT'")
    bad("png_no_iend.png", png[:-12], "before the IEND chunk")
    bad("png_truncated_in_crc.png", png[:-2], "truncated PNG: chunk 'IEND' at byte 10376 claims 0 bytes of data")
    flipped = bytearray(png)
    flipped[len(png) // 2] ^= 0x40
    bad("png_bit_flip.png", bytes(flipped), "corrupt PNG: CRC mismatch in chunk 'IDAT'")
    bad("png_first_not_ihdr.png", sig + idat + iend, "the first chunk must be a 13-byte IHDR, found 'IDAT'")
    bad("png_huge_dimensions.png", sig + ihdr(100000, 100000) + idat + iend,
        "PNG header claims 100000x100000 pixels, above the limit")
    bad("png_2pow31_width.png", sig + ihdr(0x7FFFFFFF, 0x7FFFFFFF) + idat + iend,
        "PNG header claims 2147483647x2147483647 pixels")
    bad("png_too_many_pixels.png", sig + ihdr(30000, 30000) + idat + iend, "PNG header claims 30000x30000 pixels")
    bad("png_zero_width.png", sig + ihdr(0, 10) + idat + iend, "PNG header claims an empty image (0x10)")
    bad("png_bad_depth.png", sig + ihdr(4, 4, depth=7) + idat + iend, "invalid bit depth 7 for colour type 2")
    bad("png_interlace_2.png", sig + ihdr(4, 4, tail=(0, 0, 2)) + idat + iend, "unknown compression, filter or interlace")
    bad("png_no_idat.png", sig + ihdr(4, 3) + iend, "no IDAT (image data) chunk")
    bad("png_two_ihdr.png", sig + ihdr(4, 3) + ihdr(4, 3) + idat + iend, "a second IHDR chunk")
    bad("png_chunk_length_2pow31.png", sig + ihdr(4, 3) + struct.pack(">I", 0x80000000) + b"IDAT" + bytes(8),
        "claims 2147483648 bytes (at most 2^31-1 allowed)")
    bad("png_bad_zlib.png", sig + ihdr(4, 3) + chunk(b"IDAT", b"\x78\x9c\xff\xff\xff\xff") + iend,
        "corrupt PNG: the decoder failed")
    bad("png_short_pixels.png", sig + ihdr(40, 30) + chunk(b"IDAT", zlib.compress(b"\0" * 20)) + iend,
        "corrupt PNG: the decoder failed")
    bad("png_palette_missing.png", sig + ihdr(4, 3, colour=3) + chunk(b"IDAT", zlib.compress(b"\0" * 15)) + iend,
        "corrupt PNG: the decoder failed")
    bad("jpeg_soi_only.jpg", b"\xff\xd8\xff", "truncated JPEG")
    bad("jpeg_truncated_headers.jpg", jpg[:200], "truncated JPEG")
    bad("jpeg_truncated_half.jpg", jpg[:len(jpg) // 2], "truncated JPEG: the data ends inside the compressed data")
    bad("jpeg_no_eoi.jpg", jpg[:-2], "truncated JPEG: the data ends inside the compressed data")
    bad("jpeg_progressive_truncated.jpg", prog[:len(prog) * 2 // 3], "truncated JPEG")
    sof = jpg.find(b"\xff\xc0")
    huge = bytearray(jpg)
    huge[sof + 5:sof + 9] = struct.pack(">HH", 65000, 65000)
    bad("jpeg_huge_dimensions.jpg", bytes(huge), "JPEG header claims 65000x65000 pixels, above the limit")
    zero = bytearray(jpg)
    zero[sof + 5:sof + 7] = b"\0\0"
    bad("jpeg_height_zero_dnl.jpg", bytes(zero), "height is defined later by a DNL marker")
    lossless = bytearray(jpg)
    lossless[sof + 1] = 0xC3
    bad("jpeg_lossless.jpg", bytes(lossless), "unsupported JPEG coding process (frame marker FF C3)")
    arith = bytearray(jpg)
    arith[sof + 1] = 0xC9
    bad("jpeg_arithmetic.jpg", bytes(arith), "unsupported JPEG coding process (frame marker FF C9)")
    bad("jpeg_garbage_after_soi.jpg", b"\xff\xd8" + b"garbage", "not a PNG or JPEG image (first bytes FF D8 67")
    bad("jpeg_garbage_after_segment.jpg", b"\xff\xd8\xff\xe0\x00\x04ab" + b"garbage",
        "corrupt JPEG: expected a marker (FF xx) at byte 8, found 67")
    bad("jpeg_eoi_only.jpg", b"\xff\xd8\xff\xd9", "end-of-image marker before any image data")
    bad("jpeg_segment_past_end.jpg", b"\xff\xd8\xff\xe0\xff\xf0" + bytes(10), "inside segment FF E0")
    sos = jpg.find(b"\xff\xda")
    bad("jpeg_scan_before_frame.jpg", b"\xff\xd8" + jpg[sos:], "a scan (SOS) before the frame header")
    bad("jpeg_length_one.jpg", b"\xff\xd8\xff\xdb\x00\x01" + bytes(10), "marker FF DB has length 1")
    # Huffman tables: 16 x 255 code lengths claim 4080 symbols (stb_image 2.27
    # writes them past its 256-entry table: found by fuzz_image); 3 codes of
    # length 1 fit the segment but no code space (stb refuses those itself).
    dht = jpg.find(b"\xff\xc4")
    broken = bytearray(jpg)
    broken[dht + 5:dht + 21] = b"\xff" * 16
    bad("jpeg_huffman_4080_symbols.jpg", bytes(broken), "corrupt JPEG: Huffman table with 4080 symbols (at most 256)")
    n = sum(jpg[dht + 5:dht + 21])
    overfull = bytearray(jpg)
    overfull[dht + 5:dht + 21] = bytes([3] + [0] * 14 + [n - 3])
    bad("jpeg_huffman_bad_code_lengths.jpg", bytes(overfull), "corrupt JPEG: the decoder failed (bad code lengths)")
    bad_id = bytearray(jpg)
    bad_id[dht + 4] = 0x24
    bad("jpeg_huffman_bad_id.jpg", bytes(bad_id), "corrupt JPEG: Huffman table class/id 24")
    dqt = jpg.find(b"\xff\xdb")
    q = bytearray(jpg)
    q[dqt + 4] = 0x25
    bad("jpeg_quant_bad_id.jpg", bytes(q), "corrupt JPEG: quantisation table precision/id 25")
    comps = bytearray(jpg)
    comps[sof + 9] = 2
    bad("jpeg_two_components.jpg", bytes(comps), "unsupported JPEG: 2 colour components")
    samp = bytearray(jpg)
    samp[sof + 11] = 0x50
    bad("jpeg_sampling_5.jpg", bytes(samp), "corrupt JPEG: component 0 has sampling factors 50")
    scan = bytearray(jpg)
    scan[sos + 4] = 5
    bad("jpeg_scan_5_components.jpg", bytes(scan), "corrupt JPEG: scan header of 12 bytes for 5 components")
    bad("png_in_jpg_name_truncated.jpg", png[:100], "truncated PNG")

    def without_segments(data, marker):
        """The JPEG with every segment of one marker type removed."""
        out, i = bytearray(data[:2]), 2
        while True:
            m = data[i + 1]
            length = struct.unpack(">H", data[i + 2:i + 4])[0]
            if m != marker:
                out += data[i:i + 2 + length]
            i += 2 + length
            if m == 0xDA:
                return bytes(out + data[i:])
    # Tables never defined: stb_image 2.27 would read its uninitialised
    # tables (an out-of-bounds read found by fuzz_image).
    bad("jpeg_no_huffman_tables.jpg", without_segments(jpg, 0xC4), "uses Huffman table DC 0, which no DHT segment defined")
    bad("jpeg_no_quant_tables.jpg", without_segments(jpg, 0xDB), "uses quantisation table 0, which no DQT segment defined")
    other = bytearray(jpg)
    other[sos + 5] = 9
    bad("jpeg_scan_unknown_component.jpg", bytes(other), "uses component 9, which the frame does not have")
    with open(os.path.join(d, "expected.txt"), "w") as f:
        f.write("# file\texpected substring of the LoadError (written by make_image_fixtures.py)\n")
        for name, exp in rows:
            f.write(f"{name}\t{exp}\n")


if __name__ == "__main__":
    make_images()
    make_expected()
    make_bad()
    print("done")
