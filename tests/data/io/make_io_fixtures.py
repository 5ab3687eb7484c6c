#!/usr/bin/python3
"""Regenerates the fixtures of tests/io (run with Debian's /usr/bin/python3, which has numpy).

Good files are written by independent writers: numpy.save / numpy.lib.format for .npy, the
stdlib json+struct safetensors writer from ecosystem.md, and -- when the `safetensors` package is
importable -- the reference (Rust) writer. Expected values come from numpy's own conversions and
are stored as float32 bit patterns, so the C++ tests never compare against the code under test.

The hostile corpus in bad/ is listed in bad/expected.txt as `file<TAB>substring`: loading the file
must raise ctnn::io::LoadError whose message contains the substring.

    /usr/bin/python3 tests/data/io/make_io_fixtures.py
"""
import json
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
BAD = os.path.join(HERE, "bad")

ST_NAMES = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16", np.dtype(np.float64): "F64",
            np.dtype(np.int64): "I64", np.dtype(np.int32): "I32", np.dtype(np.int16): "I16",
            np.dtype(np.int8): "I8", np.dtype(np.uint8): "U8", np.dtype(np.bool_): "BOOL"}


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def f32_bits(values):
    return ",".join("%08x" % b for b in np.asarray(values, dtype=np.float32).view(np.uint32).ravel())


# ---------------------------------------------------------------------------------------------
# safetensors: stdlib writer (tensors in the given order, Python's default json spacing and
# \u escapes for non-ASCII names) and the expected-values table.

def bf16_from(values):
    """bfloat16 as the upper half of float32 (numpy has no bfloat16): raw u16 bits, f32 values."""
    bits = (np.asarray(values, dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16)
    return bits, (bits.astype(np.uint32) << 16).view(np.float32)


def stdlib_safetensors(tensors, metadata=None, leading=b"", pad=8):
    """tensors: list of (name, dtype_name, shape, raw bytes)."""
    header, blobs, offset = {}, b"", 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        blobs += raw
        offset += len(raw)
    h = leading + json.dumps(header).encode()
    h += b" " * (-len(h) % pad)
    return struct.pack("<Q", len(h)) + h + blobs


def mixed_tensors():
    """(name, dtype, shape, raw bytes, float32 values or None) covering every supported dtype."""
    f16 = np.array([0.0, -0.0, 1.0, -2.0, 65504.0, 2.0**-14, 2.0**-24, 3 * 2.0**-24, np.inf, -np.inf,
                    np.nan, 0.1, 3.14159, -1e-3], dtype=np.float16)
    bf16_bits, bf16_vals = bf16_from([0.0, -0.0, 1.0, -3.5, 1e-40, 3.0e38, np.inf, -np.inf, np.nan,
                                      0.1, 123456.0, -7.25e-20])
    f64 = np.array([1 / 3, -2.5, 1e-40, 1e39, -1e39, np.nan, 0.0, 16777217.0], dtype=np.float64)
    f32 = (np.arange(6, dtype=np.float32) * np.float32(0.25) - np.float32(0.5)).reshape(2, 3)
    out = [
        ("conv.weight", "F32", f32.shape, f32.tobytes(), f32),
        ("half", "F16", f16.shape, f16.tobytes(), f16.astype(np.float32)),
        ("brain", "BF16", bf16_bits.shape, bf16_bits.tobytes(), bf16_vals),
        ("double", "F64", (2, 4), f64.tobytes(), f64.astype(np.float32)),
        ("scalar", "F32", (), np.float32(42.5).tobytes(), np.array([42.5], np.float32)),
        ("empty", "F32", (0, 3), b"", np.zeros(0, np.float32)),
        ("bn.num_batches_tracked", "I64", (), np.int64(-7).tobytes(), None),
        ("i32", "I32", (3,), np.array([-1, 0, 2**31 - 1], np.int32).tobytes(), None),
        ("i16", "I16", (2,), np.array([-32768, 5], np.int16).tobytes(), None),
        ("i8", "I8", (2,), np.array([-128, 127], np.int8).tobytes(), None),
        ("u8", "U8", (1, 2), np.array([[0, 255]], np.uint8).tobytes(), None),
        ("mask", "BOOL", (3,), np.array([True, False, True]).tobytes(), None),
        # Non-ASCII names: json.dumps escapes these as \u00e9 and a surrogate pair.
        ("poids.\u00e9t\u00e9.\U0001F600", "F32", (1,), np.float32(-1.0).tobytes(), np.array([-1.0], np.float32)),
        ("quote\"back\\slash/tab\t", "F32", (1,), np.float32(2.0).tobytes(), np.array([2.0], np.float32)),
    ]
    return out


def expected_table(tensors):
    lines = ["# name (UTF-8 hex)\tdtype\tshape\traw bytes (hex)\tfloat32 bits, or 'int' for integer dtypes"]
    for name, dtype, shape, raw, values in tensors:
        lines.append("\t".join([name.encode().hex(), dtype, ",".join(map(str, shape)), raw.hex(),
                                "int" if values is None else f32_bits(values)]))
    return "\n".join(lines) + "\n"


def make_safetensors_fixtures():
    tensors = mixed_tensors()
    write(os.path.join(HERE, "mixed.safetensors"),
          stdlib_safetensors([t[:4] for t in tensors], metadata={"format": "pt"}))
    write(os.path.join(HERE, "mixed.expected.txt"), expected_table(tensors).encode())
    # Leading whitespace and unaligned space padding: both allowed by the format.
    one = [("w", "F32", (2,), np.array([1.5, -0.25], np.float32).tobytes())]
    write(os.path.join(HERE, "padded.safetensors"), stdlib_safetensors(one, leading=b" \n\t", pad=13))
    # An empty file: no tensors, no data.
    write(os.path.join(HERE, "no_tensors.safetensors"), stdlib_safetensors([], metadata={}))

    # The reference writer, for byte-for-byte comparison with ctnn's writer.
    try:
        from safetensors.numpy import save
    except ImportError:
        print("safetensors not importable: keeping the committed reference_writer.safetensors")
        return
    ref = {
        "b.f16": np.array([1.0, -2.0, 0.5], np.float16), "a.f16": np.array([3.0], np.float16),
        "w": np.arange(6, dtype=np.float32).reshape(2, 3), "i32": np.array([7, -7], np.int32),
        "d": np.array([0.125], np.float64), "n": np.array(9, np.int64), "i16": np.array([1, 2, 3], np.int16),
        "u8": np.array([200], np.uint8), "i8": np.array([-3, 4], np.int8), "m": np.array([False, True]),
        "z": np.zeros((0, 4), np.float32), "\u00e9\U0001F600": np.array([1.0], np.float32),
    }
    write(os.path.join(HERE, "reference_writer.safetensors"), save(ref, metadata={"format": "pt"}))


# ---------------------------------------------------------------------------------------------
# .npy: numpy's own writer, every supported dtype, versions 1.0/2.0/3.0.

def make_npy_fixtures():
    from numpy.lib import format as npf
    cases = {
        "f4_2x3.npy": (np.arange(6, dtype=np.float32) * np.float32(0.37) - np.float32(1.5)).reshape(2, 3),
        "f4_scalar.npy": np.array(3.25, np.float32),
        "f4_0x3.npy": np.zeros((0, 3), np.float32),
        "f4_4d.npy": (np.arange(2 * 3 * 4 * 5, dtype=np.float32) / np.float32(7)).reshape(2, 3, 4, 5),
        "f8.npy": np.array([1 / 3, -1e39, 1e-45, np.nan, 2.0**60 + 1], np.float64),
        "f2.npy": np.array([[0.1, -0.0], [65504.0, 2.0**-24]], np.float16),
        "i8.npy": np.array([-(2**62), 2**53 + 1, 0], np.int64),
        "i4.npy": np.array([-(2**31), 2**31 - 1, 5], np.int32),
        "i2.npy": np.array([-32768, 32767], np.int16),
        "i1.npy": np.array([-128, 127, 0], np.int8),
        "u1.npy": np.array([0, 1, 255], np.uint8),
    }
    lines = ["# file\tshape\tfloat32 bits"]
    for fname, arr in cases.items():
        np.save(os.path.join(HERE, fname), arr)
        lines.append("\t".join([fname, ",".join(map(str, arr.shape)), f32_bits(arr.astype(np.float32))]))
    v = np.arange(5, dtype=np.float32) - np.float32(2)
    for version in [(2, 0), (3, 0)]:
        fname = "f4_v%d.npy" % version[0]
        with open(os.path.join(HERE, fname), "wb") as f:
            npf.write_array(f, v, version=version)
        lines.append("\t".join([fname, "5", f32_bits(v)]))
    # Hand-written headers numpy's reader accepts: double quotes, no trailing comma, odd spacing,
    # and fortran_order=True where it does not change the element order.
    for fname, header in [("hand_quotes.npy", '{"shape":(5,),"fortran_order":False,"descr":"<f4"}'),
                          ("hand_fortran_1d.npy", "{'descr': '<f4', 'fortran_order': True, 'shape': (5,), }"),
                          ("hand_fortran_1x5.npy", "{'descr': '<f4', 'fortran_order': True, 'shape': (1, 5), }")]:
        write(os.path.join(HERE, fname), npy_bytes(header, v.tobytes()))
        loaded = np.load(os.path.join(HERE, fname))
        lines.append("\t".join([fname, ",".join(map(str, loaded.shape)), f32_bits(loaded)]))
    write(os.path.join(HERE, "npy.expected.txt"), ("\n".join(lines) + "\n").encode())


def npy_bytes(header, data, version=(1, 0), header_len=None, pad=True):
    h = header.encode("latin1")
    if pad:
        h += b" " * (-(10 + len(h) + 1) % 64) + b"\n"
    fmt = "<H" if version[0] == 1 else "<I"
    n = len(h) if header_len is None else header_len
    return b"\x93NUMPY" + bytes(version) + struct.pack(fmt, n) + h + data


# ---------------------------------------------------------------------------------------------
# Hostile corpus.

def st_raw(header_text, data=b"", n=None):
    h = header_text.encode() if isinstance(header_text, str) else header_text
    return struct.pack("<Q", len(h) if n is None else n) + h + data


def entry(dtype="F32", shape=(1,), offsets=(0, 4)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


def st_json(header, data):
    return st_raw(json.dumps(header, separators=(",", ":")), data)


def bad_safetensors():
    ok = '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    four = b"\0" * 4
    deep = "[" * 2000 + "]" * 2000
    cases = {
        # Rules 1-2: the length prefix.
        "empty": (b"", "file too small for a safetensors header: expected at least 8 bytes, found 0"),
        "truncated_prefix": (b"\x10\0\0\0\0", "expected at least 8 bytes, found 5"),
        "header_past_end": (st_raw(ok, four, n=1000), "header length 1000 runs past the end of the file"),
        "header_past_end_by_one": (st_raw(ok, b"", n=len(ok) + 1), "runs past the end of the file"),
        "header_len_2pow63": (st_raw(ok, four, n=2**63), "header length 9223372036854775808 exceeds the limit"),
        "header_len_max_u64": (st_raw(ok, four, n=2**64 - 1), "exceeds the limit of 100000000 bytes"),
        "header_len_cap_plus_one": (st_raw(ok, four, n=100_000_001), "header length 100000001 exceeds the limit"),
        "header_empty": (st_raw("", four), "expected the header to be an object, found the end of the text"),
        # Rule 3: UTF-8 and JSON.
        "invalid_utf8_name": (st_raw(b'{"a\xff":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', four),
                              "invalid UTF-8 (at byte 3"),
        "overlong_utf8": (st_raw(b'{"\xc0\xaf":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', four),
                          "invalid UTF-8"),
        "utf8_surrogate": (st_raw(b'{"\xed\xa0\x80":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', four),
                           "invalid UTF-8"),
        "utf8_truncated": (st_raw(b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}\xe2\x82', four),
                           "invalid UTF-8"),
        "bom": (st_raw(b"\xef\xbb\xbf" + ok.encode(), four), "expected the header to be an object, found byte 0xef"),
        "bad_escape": (st_raw(r'{"a\x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', four),
                       "invalid escape \\x in string"),
        "lone_high_surrogate": (st_raw(r'{"\ud800":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', four),
                                "unpaired high surrogate"),
        "high_surrogate_then_bmp": (st_raw(r'{"\ud800\u0041":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}',
                                           four), "unpaired high surrogate"),
        "lone_low_surrogate": (st_raw(r'{"\udc00":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', four),
                               "unpaired low surrogate"),
        "bad_hex_escape": (st_raw(r'{"\u12G4":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', four),
                           "invalid hex digit 'G'"),
        "truncated_escape": (st_raw(r'{"\u12', four), "truncated \\u escape"),
        "control_char_in_string": (st_raw('{"a\nb":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', four),
                                   "unescaped control character byte 0x0a"),
        "unterminated_string": (st_raw('{"abc', four), "unterminated string"),
        "unterminated_object": (st_raw('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}', four),
                                "expected ',' or '}', found the end of the text"),
        "trailing_comma": (st_raw('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},}', four),
                           "trailing comma before '}'"),
        "trailing_comma_in_shape": (st_raw('{"a":{"dtype":"F32","shape":[1,],"data_offsets":[0,4]}}', four),
                                    "tensor 'a': trailing comma before ']'"),
        "missing_colon": (st_raw('{"a" {"dtype":"F32"}}', four), "expected ':', found an object"),
        "garbage_after_header": (st_raw(ok + " x", four), "expected only whitespace after the top-level value, found 'x'"),
        "nul_padding": (st_raw(ok.encode() + b"\0\0", four), "after the top-level value, found byte 0x00"),
        "two_objects": (st_raw(ok + ok, four), "after the top-level value"),
        "header_is_array": (st_raw("[]", four), "expected the header to be an object, found an array"),
        "deep_nesting_top": (st_raw(deep, four), "expected the header to be an object, found an array"),
        "deep_nesting_shape": (st_raw('{"a":{"dtype":"F32","shape":' + deep + ',"data_offsets":[0,4]}}', four),
                               "tensor 'a': expected a non-negative integer, found an array"),
        "deep_nesting_entry": (st_raw('{"a":' + deep + '}', four),
                               "tensor 'a': expected the entry to be an object, found an array"),
        "deep_nesting_metadata": (st_raw('{"__metadata__":{"k":' + "{\"k\":" * 1000 + '""' + "}" * 1000 + "}}"),
                                  "__metadata__: expected metadata value \"k\" to be a string, found an object"),
        # Duplicate keys at every level.
        "duplicate_tensor": (st_raw('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                                    '"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', b"\0" * 8),
                             "duplicate key \"a\""),
        "duplicate_tensor_via_escape": (st_raw('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                                               '"\\u0061":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
                                               b"\0" * 8), "duplicate key \"a\""),
        "duplicate_field": (st_raw('{"a":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}}', four),
                            "tensor 'a': duplicate key \"dtype\""),
        "duplicate_metadata_key": (st_raw('{"__metadata__":{"k":"1","k":"2"}}'),
                                   "__metadata__: duplicate key \"k\""),
        "duplicate_metadata": (st_raw('{"__metadata__":{},"__metadata__":{}}'), "duplicate key \"__metadata__\""),
        # Entry schema.
        "metadata_non_string": (st_raw('{"__metadata__":{"k":1}}'),
                                "expected metadata value \"k\" to be a string, found a number"),
        "metadata_not_object": (st_raw('{"__metadata__":"pt"}'),
                                "expected \"__metadata__\" to be an object, found a string"),
        "missing_data_offsets": (st_json({"a": {"dtype": "F32", "shape": [1]}}, four),
                                 "tensor 'a': missing \"data_offsets\""),
        "missing_dtype": (st_json({"a": {"shape": [1], "data_offsets": [0, 4]}}, four), "missing \"dtype\""),
        "missing_shape": (st_json({"a": {"dtype": "F32", "data_offsets": [0, 4]}}, four), "missing \"shape\""),
        "extra_field": (st_json({"a": dict(entry(), extra=1)}, four), "unexpected key \"extra\""),
        "offsets_three": (st_json({"a": entry(offsets=(0, 4, 8))}, four),
                          "expected \"data_offsets\" to be [BEGIN, END], found more than 2 entries"),
        "offsets_one": (st_json({"a": entry(offsets=(0,))}, four),
                        "expected \"data_offsets\" to be [BEGIN, END], found 1 entry"),
        "dtype_not_string": (st_json({"a": entry(dtype=1)}, four),
                             "expected \"dtype\" to be a string, found a number"),
        "shape_not_array": (st_raw('{"a":{"dtype":"F32","shape":4,"data_offsets":[0,4]}}', four),
                            "expected \"shape\" to be an array, found a number"),
        "shape_true": (st_raw('{"a":{"dtype":"F32","shape":[true],"data_offsets":[0,4]}}', four),
                       "expected a non-negative integer, found true/false/null"),
        "shape_null": (st_raw('{"a":{"dtype":"F32","shape":null,"data_offsets":[0,4]}}', four),
                       "expected \"shape\" to be an array, found true/false/null"),
        "too_many_dims": (st_json({"a": entry(shape=[1] * 65)}, four), "shape has more than 64 dimensions"),
        # Rule 4: dtype names and numbers.
        "unknown_dtype": (st_json({"a": entry(dtype="F33")}, four),
                          "tensor 'a': unknown dtype \"F33\"; expected one of F32, F16, BF16"),
        "lowercase_dtype": (st_json({"a": entry(dtype="f32")}, four), "unknown dtype \"f32\""),
        "unsupported_dtype_f8": (st_json({"a": entry(dtype="F8_E4M3")}, b"\0"),
                                 "tensor 'a': dtype F8_E4M3 is not supported; expected one of F32, F16, BF16, F64, "
                                 "I64, I32, I16, I8, U8, BOOL"),
        "unsupported_dtype_u64": (st_json({"a": entry(dtype="U64", offsets=(0, 8))}, b"\0" * 8),
                                  "dtype U64 is not supported"),
        "negative_offset": (st_raw('{"a":{"dtype":"F32","shape":[1],"data_offsets":[-1,3]}}', four),
                            "negative number; expected a non-negative integer"),
        "negative_dim": (st_raw('{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', four),
                         "tensor 'a': negative number"),
        "float_dim": (st_raw('{"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}', four),
                      "floating-point number; expected a non-negative integer"),
        "exponent_offset": (st_raw('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4e0]}}', four),
                            "floating-point number"),
        "plus_sign": (st_raw('{"a":{"dtype":"F32","shape":[+1],"data_offsets":[0,4]}}', four),
                      "expected a non-negative integer, found '+'"),
        "leading_zero": (st_raw('{"a":{"dtype":"F32","shape":[01],"data_offsets":[0,4]}}', four),
                         "number with a leading zero"),
        "hex_number": (st_raw('{"a":{"dtype":"F32","shape":[0x1],"data_offsets":[0,4]}}', four),
                       "expected ',' or ']', found 'x'"),
        "u64_overflow": (st_raw('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551616]}}',
                                four), "integer does not fit in 64 bits"),
        # Rule 5: sizes.
        "shape_overflow": (st_json({"a": entry(shape=[2**32, 2**32])}, four),
                           "shape [4294967296, 4294967296] has more elements than fit in 64 bits"),
        "shape_bytes_overflow": (st_json({"a": entry(shape=[2**62])}, four),
                                 "shape [4611686018427387904] needs more bytes than fit in 64 bits"),
        "size_mismatch": (st_json({"a": entry(shape=[3], offsets=(0, 8))}, b"\0" * 8),
                          "tensor 'a': data_offsets [0, 8] cover 8 bytes, but F32 [3] needs 12"),
        "end_before_begin": (st_json({"a": entry(offsets=(8, 4))}, b"\0" * 8), "end before they begin"),
        "bf16_odd_bytes": (st_json({"a": entry(dtype="BF16", shape=[2], offsets=(0, 3))}, b"\0" * 3),
                           "cover 3 bytes, but BF16 [2] needs 4"),
        # Rules 6-7: layout of the data buffer.
        "offsets_out_of_range": (st_json({"a": entry(shape=[2**38], offsets=(0, 2**40))}, four),
                                 "data_offsets end at 1099511627776, past the end of the data buffer (4 bytes)"),
        "truncated_data": (st_json({"a": entry(shape=[2], offsets=(0, 8))}, four),
                           "past the end of the data buffer (4 bytes)"),
        "overlap": (st_json({"a": entry(shape=[2], offsets=(0, 8)), "b": entry(shape=[2], offsets=(4, 12))},
                            b"\0" * 12), "tensor 'b': overlaps the previous tensor: data starts at offset 4, "
                                         "expected 8 (where 'a' ends)"),
        "duplicate_offsets": (st_json({"a": entry(), "b": entry()}, four), "overlaps the previous tensor"),
        "gap": (st_json({"a": entry(shape=[2], offsets=(0, 8)), "b": entry(shape=[2], offsets=(12, 20))},
                        b"\0" * 20), "tensor 'b': leaves a gap: data starts at offset 12, expected 8"),
        "not_from_zero": (st_json({"a": entry(offsets=(4, 8))}, b"\0" * 8),
                          "leaves a gap: data starts at offset 4, expected 0 (the start of the data)"),
        "trailing_bytes": (st_json({"a": entry()}, b"\0" * 5),
                           "the data buffer has 5 bytes but the tensors cover 4; trailing bytes are not allowed"),
        "no_tensors_trailing_bytes": (st_raw("{}", b"x"), "the data buffer has 1 bytes but the tensors cover 0"),
    }
    return cases


def bad_npy():
    v = np.zeros(6, np.float32).tobytes()
    hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }"
    good = npy_bytes(hdr % "(2, 3)", v)
    cases = {
        "npy_empty": (b"", "file too small for a .npy header: 0 bytes"),
        "npy_truncated_preamble": (good[:9], "file too small for a .npy header: 9 bytes"),
        "npy_v2_truncated_length": (b"\x93NUMPY\x02\x00\x10\x00", "file ends inside the header length"),
        "npy_bad_magic": (b"\x93NUMPZ" + good[6:], "not a .npy file"),
        "npy_pickle": (b"\x80\x04\x95" + good[3:], "not a .npy file"),
        "npy_version_4": (good[:6] + b"\x04\x00" + good[8:], "unsupported .npy format version 4.0"),
        "npy_version_1_1": (good[:6] + b"\x01\x01" + good[8:], "unsupported .npy format version 1.1"),
        "npy_header_past_end": (npy_bytes(hdr % "(2, 3)", b"", header_len=5000),
                                "header length 5000 runs past the end of the file"),
        "npy_header_huge_v2": (npy_bytes(hdr % "(2, 3)", v, version=(2, 0), header_len=0xFFFFFFFF),
                               "header length 4294967295 exceeds the limit of 10000 bytes"),
        "npy_big_endian": (npy_bytes("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", v),
                           "big-endian data ('>f4') is not supported"),
        "npy_object": (npy_bytes("{'descr': '|O', 'fortran_order': False, 'shape': (2, 3), }", v),
                       "unsupported dtype '|O'; expected one of <f4"),
        "npy_complex": (npy_bytes("{'descr': '<c8', 'fortran_order': False, 'shape': (3,), }", v),
                        "unsupported dtype '<c8'"),
        "npy_uint32": (npy_bytes("{'descr': '<u4', 'fortran_order': False, 'shape': (6,), }", v),
                       "unsupported dtype '<u4'"),
        "npy_bool": (npy_bytes("{'descr': '|b1', 'fortran_order': False, 'shape': (6,), }", v[:6]),
                     "unsupported dtype '|b1'"),
        "npy_structured": (npy_bytes("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,), }", v),
                           "structured dtypes"),
        "npy_fortran_2d": (npy_bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", v),
                           "fortran_order=True with shape [2, 3] is not supported"),
        "npy_shape_overflow": (npy_bytes(hdr % "(4294967296, 4294967296)", v),
                               "has more elements than fit in 64 bits"),
        "npy_bytes_overflow": (npy_bytes(hdr % "(4611686018427387904,)", v), "needs more bytes than fit in 64 bits"),
        "npy_dim_overflow": (npy_bytes(hdr % "(18446744073709551616,)", v), "dimension does not fit in 64 bits"),
        "npy_data_short": (good[:-4], "shape [2, 3] of '<f4' needs 24 data bytes, but the file has 20"),
        "npy_data_trailing": (good + b"\0" * 4, "needs 24 data bytes, but the file has 28"),
        "npy_negative_dim": (npy_bytes(hdr % "(-1, 3)", v), "negative dimension"),
        "npy_missing_shape": (npy_bytes("{'descr': '<f4', 'fortran_order': False, }", v), "missing key 'shape'"),
        "npy_extra_key": (npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'x': 1, }", v),
                          "unexpected key 'x'"),
        "npy_duplicate_key": (npy_bytes("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", v),
                              "duplicate key 'descr'"),
        "npy_shape_list": (npy_bytes(hdr % "[2, 3]", v), "expected '('"),
        "npy_shape_int": (npy_bytes(hdr % "(6)", v), "shape (n) is not a tuple"),
        "npy_shape_float": (npy_bytes(hdr % "(2.5, 3)", v), "expected ',' or ')' in shape"),
        "npy_shape_leading_zero": (npy_bytes(hdr % "(06,)", v), "integer with a leading zero"),
        "npy_shape_empty_item": (npy_bytes(hdr % "(2,,3)", v), "expected a non-negative integer"),
        "npy_fortran_not_bool": (npy_bytes("{'descr': '<f4', 'fortran_order': 1, 'shape': (6,), }", v),
                                 "expected True or False"),
        "npy_unclosed_dict": (npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), ", v),
                              "malformed header: expected a quoted string"),
        "npy_code": (npy_bytes("__import__('os').system('true')", v), "malformed header: expected '{'"),
        "npy_escape_in_string": (npy_bytes("{'descr': '<f\\x34', 'fortran_order': False, 'shape': (6,), }", v),
                                 "unsupported character in string"),
        "npy_text_after_dict": (npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), } x", v),
                                "unexpected text after the dict"),
        "npy_too_many_dims": (npy_bytes(hdr % ("(" + "1, " * 65 + ")"), v[:4]), "more than 64 dimensions"),
    }
    return cases


def make_bad_corpus():
    os.makedirs(BAD, exist_ok=True)
    for f in os.listdir(BAD):
        if f.endswith((".safetensors", ".npy")):
            os.remove(os.path.join(BAD, f))
    lines = ["# file\tsubstring that the LoadError message must contain"]
    for cases, ext in [(bad_safetensors(), ".safetensors"), (bad_npy(), ".npy")]:
        for name, (data, expected) in cases.items():
            assert "\t" not in expected and "\n" not in expected
            write(os.path.join(BAD, name + ext), data)
            lines.append(name + ext + "\t" + expected)
    write(os.path.join(BAD, "expected.txt"), ("\n".join(lines) + "\n").encode())


if __name__ == "__main__":
    np.seterr(over="ignore")  # float64 -> float32 overflow to inf is part of the fixtures
    make_safetensors_fixtures()
    make_npy_fixtures()
    make_bad_corpus()
    print("fixtures written to", HERE, file=sys.stderr)
