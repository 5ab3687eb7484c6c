#!/usr/bin/python3
"""Writes the IDX test fixtures with Python's struct and gzip modules: an
encoder independent of ctnn's reader. Run from anywhere; writes next to itself.
The expected values are restated in tests/idx/test_idx.cpp."""
import gzip
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CODES = {"B": 0x08, "b": 0x09, "h": 0x0B, "i": 0x0C, "f": 0x0D, "d": 0x0E}


def idx(fmt, shape, values):
    n = 1
    for d in shape:
        n *= d
    assert n == len(values)
    head = struct.pack(">BBBB", 0, 0, CODES[fmt], len(shape)) + struct.pack(">" + "I" * len(shape), *shape)
    return head + struct.pack(">" + fmt * n, *values)


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


def gz(data):
    return gzip.compress(data, compresslevel=9, mtime=0)


# u8 images: value (i * 7) % 256 at flat index i, shape [2, 3, 4].
u8 = idx("B", [2, 3, 4], [(i * 7) % 256 for i in range(24)])
write("u8_2x3x4.idx", u8)
write("u8_2x3x4.idx.gz", gz(u8))
# Two gzip members (gzip(1) concatenates them; readers must too).
write("u8_2x3x4_two_members.idx.gz", gz(u8[:10]) + gz(u8[10:]))
# Multi-byte types are big-endian on disk.
write("i16.idx", idx("h", [5], [-2, -1, 0, 1, 300]))
write("i32.idx", idx("i", [2], [-100000, 123456789]))
write("f32.idx", idx("f", [2, 2], [1.5, -2.25, 300000.0, -0.0]))
write("f64.idx", idx("d", [3], [0.1, -1e10, 2.5]))
write("i8.idx", idx("b", [3], [-128, -1, 127]))
write("labels_10.idx.gz", gz(idx("B", [10], [9, 2, 1, 1, 6, 1, 4, 6, 5, 7])))
# Broken gzip streams.
good = gz(u8)
write("bad_truncated.idx.gz", good[: len(good) - 12])
crc = bytearray(good)
crc[-8] ^= 0xFF  # CRC-32 of the uncompressed data
write("bad_crc.idx.gz", bytes(crc))
write("bad_trailing.idx.gz", good + b"junk")
# A valid gzip stream whose content is not IDX (the text of this line).
write("bad_not_idx.gz", gz(b"hello, this is not an IDX file\n"))
