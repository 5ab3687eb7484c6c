#!/usr/bin/python3
"""Seed corpora for the libFuzzer targets: tests/fuzz/corpus/<target>/.

    /usr/bin/python3 tests/fuzz/make_corpus.py

Small, valid (plus a few nearly valid) inputs of every shape the parsers
know, so that the fuzzers start deep in each format rather than at its magic
number: copies of small fixtures from tests/data/{io,pth,idx} and images made
here (every PNG colour type and bit depth, Adam7 interlacing, baseline,
4:4:4 and progressive JPEG). Everything stays under 20 kB per file.
"""
import io
import os
import shutil
import struct
import zlib

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data")
OUT = os.path.join(HERE, "corpus")


def copy(target, src_dir, names):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    for n in names:
        shutil.copy(os.path.join(DATA, src_dir, n), os.path.join(d, n.replace("/", "_")))


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(raw_rows, w, h, depth, colour, extra=b"", interlace=0):
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, interlace)) +
            extra + chunk(b"IDAT", zlib.compress(raw_rows)) + chunk(b"IEND", b""))


def adam7(pixels, bpp):
    """Interlaced scanlines (filter 0) of an h x w x bpp uint8 array."""
    h, w = pixels.shape[:2]
    out = b""
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)):
        sub = pixels[y0::dy, x0::dx]
        if sub.size:
            out += b"".join(b"\0" + row.tobytes() for row in sub)
    return out


def images():
    d = os.path.join(OUT, "image")
    os.makedirs(d, exist_ok=True)
    r = np.random.RandomState(3)
    rgb = (r.rand(9, 11, 3) * 255).astype(np.uint8)

    def save(name, data):
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)

    def pil(img, fmt, **kw):
        b = io.BytesIO()
        img.save(b, fmt, **kw)
        return b.getvalue()

    im = Image.fromarray(rgb, "RGB")
    save("rgb8.png", pil(im, "PNG"))
    save("grey.png", pil(im.convert("L"), "PNG"))
    save("grey_alpha.png", pil(im.convert("LA"), "PNG"))
    save("palette.png", pil(im.convert("P", palette=Image.ADAPTIVE, colors=8), "PNG"))
    save("palette_trns.png", pil(im.convert("P", palette=Image.ADAPTIVE, colors=4), "PNG", transparency=1))
    save("rgba.png", pil(im.convert("RGBA"), "PNG"))
    save("bilevel.png", pil(im.convert("1"), "PNG"))
    rows16 = b"".join(b"\0" + row.astype(">u2").tobytes() for row in (rgb.astype(np.uint16) * 257))
    save("rgb16.png", png(rows16, 11, 9, 16, 2))
    save("grey2bit.png", png(b"".join(b"\0" + bytes([0x1B, 0xE4, 0x40]) for _ in range(5)), 11, 5, 2, 0))
    save("rgb_adam7.png", png(adam7(rgb, 3), 11, 9, 8, 2, interlace=1))
    save("rgb_trns.png", png(b"".join(b"\0" + row.tobytes() for row in rgb), 11, 9, 8, 2,
                             extra=chunk(b"tRNS", b"\0\x10\0\x20\0\x30")))
    save("baseline.jpg", pil(im, "JPEG", quality=80))
    save("baseline444.jpg", pil(Image.fromarray((r.rand(17, 19, 3) * 255).astype(np.uint8)), "JPEG", quality=90,
                                subsampling=0))
    save("grey.jpg", pil(im.convert("L"), "JPEG", quality=70))
    save("progressive.jpg", pil(Image.fromarray((r.rand(24, 20, 3) * 255).astype(np.uint8)), "JPEG",
                                progressive=True, quality=75))
    save("truncated.jpg", pil(im, "JPEG")[:-40])


def idx():
    d = os.path.join(OUT, "idx")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "u8_3x2.idx.gz"), "wb") as f:
        f.write(__import__("gzip").compress(b"\0\0\x08\x02\0\0\0\x03\0\0\0\x02" + bytes(range(6)), mtime=0))


if __name__ == "__main__":
    shutil.rmtree(OUT, ignore_errors=True)
    copy("safetensors", "io", ["mixed.safetensors", "no_tensors.safetensors", "padded.safetensors",
                               "bad/gap.safetensors", "bad/duplicate_offsets.safetensors", "bad/lone_high_surrogate.safetensors"])
    copy("npy", "io", ["f4_2x3.npy", "f4_v2.npy", "f4_v3.npy", "f4_scalar.npy", "f2.npy", "i1.npy", "u1.npy",
                       "hand_fortran_1x5.npy", "hand_quotes.npy", "bad/npy_shape_int.npy"])
    copy("pth", "pth", ["views.pth", "views_p4.pth", "net_f16.pth", "net_zip64.pth", "bad/deflated.pth",
                        "bad/big_endian.pth"])
    copy("idx", "idx", ["u8_2x3x4.idx", "f32.idx", "f64.idx", "i16.idx", "i32.idx", "i8.idx", "u8_2x3x4.idx.gz",
                        "u8_2x3x4_two_members.idx.gz", "bad_truncated.idx.gz"])
    images()
    idx()
    for t in sorted(os.listdir(OUT)):
        files = os.listdir(os.path.join(OUT, t))
        print(t, len(files), "files,", sum(os.path.getsize(os.path.join(OUT, t, f)) for f in files), "bytes")
