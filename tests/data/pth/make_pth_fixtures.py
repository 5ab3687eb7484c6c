#!/usr/bin/python3
"""Generates the torch.save fixtures for tests/pth (run with Debian's /usr/bin/python3, torch 1.13).

Good fixtures: one small CIFAR-style net (torchvision naming: conv1/bn1/layerX.Y.convZ/downsample/fc)
saved in the ways real checkpoints come (protocol 2 and 4, wrapped in a checkpoint dict, with a
DataParallel prefix, to a buffer, in float16, as a crafted ZIP64 archive), plus a dict of strided and
storage-sharing views. The expected values are exported by torch itself, independently of the file
format, as <set>.bin (each tensor's contiguous little-endian bytes) and <set>.txt
(name<TAB>dtype<TAB>shape<TAB>byte offset<TAB>byte length). cases.txt maps each fixture to its set.

Hostile fixtures go to bad/, with bad/expected.txt listing file<TAB>expected error substring.

Usage: /usr/bin/python3 tests/data/pth/make_pth_fixtures.py   (rewrites the folder's contents)
"""
import argparse
import collections
import copy
import io
import os
import pickle
import struct
import zipfile
import zlib

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
BAD = os.path.join(HERE, "bad")

DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.float64: "F64", torch.int64: "I64",
          torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}


# ----------------------------------------------------------------------------- the network
class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.layer1 = nn.Sequential(BasicBlock(4, 4, 1))
        self.layer2 = nn.Sequential(BasicBlock(4, 8, 2))
        self.fc = nn.Linear(8, 10)


def make_net():
    torch.manual_seed(0)
    net = TinyNet()
    with torch.no_grad():
        for i, m in enumerate(net.modules()):
            if isinstance(m, nn.BatchNorm2d):  # non-default statistics, so every value is distinctive
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_()
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(100 + i)
    return net


def write_expected(stem, sd):
    blob = bytearray()
    lines = []
    for name, t in sd.items():
        t = t.detach().contiguous()
        data = t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes()
        shape = ",".join(str(d) for d in t.shape)
        lines.append(f"{name}\t{DTYPES[t.dtype]}\t{shape}\t{len(blob)}\t{len(data)}")
        blob += data
    with open(os.path.join(HERE, stem + ".bin"), "wb") as f:
        f.write(blob)
    with open(os.path.join(HERE, stem + ".txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


# ----------------------------------------------------------------------------- a ZIP64 writer
def write_zip64(path, records):
    """A stored ZIP whose classic size/offset/count fields are all saturated, so a reader must use
    the ZIP64 end-of-central-directory record and the 0x0001 extra fields (torch only needs them
    past 4 GiB or 65535 entries; this exercises the same path in a few kilobytes)."""
    out = bytearray()
    central = bytearray()
    for name, data in records:
        name_b = name.encode()
        crc = zlib.crc32(data)
        offset = len(out)
        local_extra = struct.pack("<HHQQ", 1, 16, len(data), len(data))
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0, crc, 0xFFFFFFFF, 0xFFFFFFFF,
                           len(name_b), len(local_extra)) + name_b + local_extra + data
        extra = struct.pack("<HHQQQ", 1, 24, len(data), len(data), offset)
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0, crc, 0xFFFFFFFF,
                               0xFFFFFFFF, len(name_b), len(extra), 0, 0, 0, 0, 0xFFFFFFFF) + name_b + extra
    cd_offset = len(out)
    out += central
    z64 = len(out)
    out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, len(records), len(records),
                       len(central), cd_offset)
    out += struct.pack("<IIQI", 0x07064B50, 0, z64, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    with open(path, "wb") as f:
        f.write(out)


def records_of(path):
    with zipfile.ZipFile(path) as z:
        return [(i.filename, z.read(i.filename)) for i in z.infolist()]


def rename_prefix(records, prefix):
    return [(prefix + "/" + n.split("/", 1)[1], d) for n, d in records]


# ----------------------------------------------------------------------------- good fixtures
def make_good():
    net = make_net()
    sd = copy.deepcopy(net.state_dict())  # keeps _metadata; unaffected by the optimizer step below
    assert hasattr(sd, "_metadata")
    write_expected("net", sd)
    cases = []

    def save(name, obj, stem, **kw):
        torch.save(obj, os.path.join(HERE, name), **kw)
        cases.append((name, stem))

    save("net_p2.pth", sd, "net")
    save("net_p4.pth", sd, "net", pickle_protocol=4)
    save("net_ckpt.pth", {"state_dict": sd, "epoch": 3}, "net")

    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    for p in net.parameters():
        p.grad = torch.ones_like(p)
    opt.step()  # momentum buffers: tensors outside the state_dict
    sd_after = net.state_dict()
    write_expected("net_step", sd_after)
    save("net_model_optim.pth",
         {"model": sd_after, "optimizer": opt.state_dict(), "epoch": 3, "best_acc1": 71.25, "arch": "tiny",
          "lr_history": [0.1, 0.01], "flags": (True, False, None, -5, 300, 70000, 2 ** 40, -(2 ** 40), 2 ** 70),
          "note": b"raw bytes"}, "net_step")
    save("net_model_optim_p4.pth", {"model": sd_after, "optimizer": opt.state_dict(), "epoch": 3}, "net_step",
         pickle_protocol=4)

    save("net_dp.pth", nn.DataParallel(make_net()).state_dict(), "net")

    buf = io.BytesIO()  # saved to a buffer, the archive folder is "archive"
    torch.save(sd, buf)
    with open(os.path.join(HERE, "net_buffer.pth"), "wb") as f:
        f.write(buf.getvalue())
    cases.append(("net_buffer.pth", "net"))

    half = make_net().half().state_dict()
    write_expected("net_f16", half)
    write_expected("net_f16_f32", collections.OrderedDict(
        (k, v.float() if v.is_floating_point() else v) for k, v in half.items()))
    save("net_f16.pth", half, "net_f16")

    write_zip64(os.path.join(HERE, "net_zip64.pth"),
                rename_prefix(records_of(os.path.join(HERE, "net_p2.pth")), "net_zip64"))
    cases.append(("net_zip64.pth", "net"))
    check = zipfile.ZipFile(os.path.join(HERE, "net_zip64.pth"))  # Python's reader agrees
    assert check.testzip() is None and len(check.infolist()) == len(records_of(os.path.join(HERE, "net_p2.pth")))

    # Strided and shared views: torch saves each storage once, views keep offset and stride.
    torch.manual_seed(1)
    base = torch.randn(3, 5)
    nhwc = torch.randn(2, 3, 4, 5)
    views = collections.OrderedDict()
    views["base"] = base
    views["transposed"] = base.t()                # stride (1, 5)
    views["row"] = base[2]                        # contiguous, offset 10, same storage
    views["slice"] = base[1:, ::2]                # offset 5, stride (5, 2)
    views["column"] = base[:, 3:4]                # shape (3, 1): contiguous per torch except the size-1 dim
    views["channels_last"] = nhwc.permute(0, 2, 3, 1)
    views["expanded"] = torch.randn(3, 1).expand(3, 4)  # stride 0
    views["scalar"] = torch.tensor(2.5)
    views["empty"] = torch.zeros(0, 3)
    views["count"] = torch.tensor(7)
    views["mask"] = torch.tensor([True, False, True])
    views["index"] = torch.arange(4, dtype=torch.int32)
    views["weight_f64"] = torch.randn(2, 2, dtype=torch.float64)
    views["param"] = nn.Parameter(torch.randn(2, 2))
    views["half_t"] = torch.randn(4, 3).half().t()
    write_expected("views", views)
    save("views.pth", views, "views")
    save("views_p4.pth", views, "views", pickle_protocol=4)

    with open(os.path.join(HERE, "cases.txt"), "w") as f:
        f.write("".join(f"{a}\t{b}\n" for a, b in cases))
    return sd


# ----------------------------------------------------------------------------- hostile fixtures
class FakeStorage:
    def __init__(self, key, stype, numel):
        self.key, self.stype, self.numel = key, stype, numel


class FakeTensor:
    """Pickles exactly like a tensor, but with whatever offset/size/stride a test needs."""

    def __init__(self, storage, offset, size, stride, extra=()):
        self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict()) + tuple(extra)

    def __reduce_ex__(self, proto):
        return (torch._utils._rebuild_tensor_v2, self.args)


class Call:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce_ex__(self, proto):
        return (self.fn, self.args)


def fake_pickle(obj, protocol=2):
    buf = io.BytesIO()
    p = pickle.Pickler(buf, protocol)
    p.persistent_id = lambda o: ("storage", o.stype, o.key, "cpu", o.numel) if isinstance(o, FakeStorage) else None
    p.dump(obj)
    return buf.getvalue()


def torch_archive(path, records):
    """Writes records (name relative to the archive folder) the way torch.save does."""
    w = torch._C.PyTorchFileWriter(path)
    for name, data in records:
        w.write_record(name, data, len(data))
    w.write_end_of_file()


def make_bad():
    os.makedirs(BAD, exist_ok=True)
    for f in os.listdir(BAD):
        os.remove(os.path.join(BAD, f))
    expected = []
    torch.manual_seed(2)
    w = torch.randn(2, 3)
    b = torch.randn(3)
    sd = collections.OrderedDict(w=w, b=b)
    w_bytes = w.numpy().tobytes()
    b_bytes = b.numpy().tobytes()

    def path(name):
        return os.path.join(BAD, name)

    def add(name, message):
        expected.append((name, message))

    def raw(name, data, message):
        with open(path(name), "wb") as f:
            f.write(data)
        add(name, message)

    def with_pickle(name, pkl, message, storages=((("0"), w_bytes),)):
        torch_archive(path(name), [("data.pkl", pkl)] + [("data/" + k, d) for k, d in storages])
        add(name, message)

    # a good reference file to corrupt
    good = path("_good.pth")
    torch.save(sd, good)
    with open(good, "rb") as f:
        good_bytes = f.read()
    os.remove(good)
    good_records = records_of_bytes(good_bytes)
    zinfo = {i.filename: i for i in zipfile.ZipFile(io.BytesIO(good_bytes)).infolist()}
    eocd = good_bytes.rfind(b"PK\x05\x06")

    def patched(name, pos, fmt, value, message):
        data = bytearray(good_bytes)
        struct.pack_into(fmt, data, pos, value)
        raw(name, bytes(data), message)

    def central_pos(entry):
        # find the central directory header of `entry`
        needle = entry.encode()
        p = good_bytes.find(b"PK\x01\x02")
        while p >= 0:
            n = struct.unpack_from("<H", good_bytes, p + 28)[0]
            if good_bytes[p + 46:p + 46 + n] == needle:
                return p
            p = good_bytes.find(b"PK\x01\x02", p + 4)
        raise KeyError(entry)

    # --- pickle globals: refused by name
    with_pickle("global_os_system.pth", b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.",
                "refusing global 'os.system'")
    with_pickle("global_builtins_eval.pth", pickle.dumps(Call(eval, ("1+1",)), 4), "refusing global 'builtins.eval'")
    torch.save({"state_dict": sd, "args": argparse.Namespace(lr=0.1)}, path("global_in_checkpoint.pth"))
    add("global_in_checkpoint.pth", "refusing global 'argparse.Namespace'")
    with_pickle("global_torch_load.pth", pickle.dumps(Call(torch.load, ("x",)), 2), "refusing global 'torch.serialization.load'")

    # --- ZIP structure
    raw("truncated.pth", good_bytes[: len(good_bytes) // 2], "no end-of-central-directory record")
    raw("eocd_missing.pth", good_bytes[:eocd] + b"XX\x05\x06" + good_bytes[eocd + 4:], "no end-of-central-directory record")
    patched("cd_offset_past_end.pth", eocd + 16, "<I", 0x7FFFFFF0, "extends past the end-of-central-directory record")
    data = bytearray(good_bytes)
    struct.pack_into("<HH", data, eocd + 8, 0xFFFE, 0xFFFE)
    raw("cd_count_too_large.pth", bytes(data), "can hold at most")
    cp = central_pos("_good/data/0")
    data = bytearray(good_bytes)
    struct.pack_into("<II", data, cp + 20, 0x00FFFFFF, 0x00FFFFFF)
    raw("entry_past_end.pth", bytes(data), "extends past the end of the archive data")
    patched("encrypted.pth", cp + 8, "<H", 0x0809, "is encrypted")
    patched("local_header_offset_bad.pth", cp + 42, "<I", 3, "no local header at offset 3")
    lp = zinfo["_good/data/0"].header_offset
    patched("local_name_differs.pth", lp + 30 + len("_good/data/"), "<B", ord("9"), "local header names a different file")

    with zipfile.ZipFile(path("deflated.pth"), "w", zipfile.ZIP_DEFLATED) as z:
        for n, d in good_records:
            z.writestr(n, d)
    add("deflated.pth", "entry '_good/data.pkl' is compressed (method 8)")
    with zipfile.ZipFile(path("duplicate_entry.pth"), "w") as z:
        import warnings
        warnings.simplefilter("ignore")
        for n, d in good_records + good_records[:1]:
            z.writestr(n, d)
    add("duplicate_entry.pth", "duplicate entry '_good/data.pkl'")
    with zipfile.ZipFile(path("no_folder.pth"), "w") as z:
        z.writestr("data.pkl", b"\x80\x02}.")
    add("no_folder.pth", "is not inside a top-level folder")

    # --- storages
    pkl = dict(good_records)["_good/data.pkl"]
    torch_archive(path("missing_storage.pth"), [("data.pkl", pkl), ("data/1", b_bytes)])
    add("missing_storage.pth", "tensor 'w': storage '0' is missing: no archive entry 'missing_storage/data/0'")
    torch_archive(path("storage_size_mismatch.pth"), [("data.pkl", pkl), ("data/0", w_bytes[:-4]), ("data/1", b_bytes)])
    add("storage_size_mismatch.pth", "does not match the size of its entry 'storage_size_mismatch/data/0' (20 bytes)")
    torch_archive(path("no_data_pkl.pth"), [("data/0", w_bytes)])
    add("no_data_pkl.pth", "no entry 'no_data_pkl/data.pkl'")
    torch_archive(path("big_endian.pth"), [("data.pkl", pkl), ("data/0", w_bytes), ("data/1", b_bytes),
                                           ("byteorder", b"big")])
    add("big_endian.pth", "big-endian")
    torch.save(sd, path("legacy.pth"), _use_new_zipfile_serialization=False)
    add("legacy.pth", "legacy (non-zip) torch.save file")
    raw("empty.pth", b"", "the file is empty")
    raw("not_zip.pth", b"hello, this is not a checkpoint at all" * 3, "expected a ZIP file")

    # --- tensor views (crafted with a pickler that writes torch's own format)
    s = FakeStorage("0", torch.FloatStorage, 6)

    def tensor_case(name, t, message, protocol=2):
        with_pickle(name, fake_pickle(collections.OrderedDict(w=t), protocol), message)

    tensor_case("view_past_end.pth", FakeTensor(s, 0, (4, 3), (3, 1)), "tensor 'w': view (offset 0, size [4, 3], stride [3, 1]) reaches past the end")
    tensor_case("offset_past_end.pth", FakeTensor(s, 6, (1,), (1,)), "reaches past the end of storage '0' (6 elements)")
    tensor_case("negative_size.pth", FakeTensor(s, 0, (-1, 3), (3, 1)), "tensor 'w': negative size -1")
    tensor_case("negative_stride.pth", FakeTensor(s, 5, (2, 3), (-3, 1)), "negative stride -3")
    tensor_case("negative_offset.pth", FakeTensor(s, -1, (2,), (1,)), "negative storage offset -1")
    tensor_case("size_overflow.pth", FakeTensor(s, 0, (2 ** 62, 2 ** 62), (1, 1)), "overflows 64 bits")
    tensor_case("stride_overflow.pth", FakeTensor(s, 0, (3, 3), (2 ** 62, 2 ** 62)), "reaches past the end")
    tensor_case("huge_int_size.pth", FakeTensor(s, 0, (2 ** 70,), (1,)), "tensor size holds an element of type int (over 64 bits)")
    tensor_case("rank_mismatch.pth", FakeTensor(s, 0, (2, 3), (1,)), "size has 2 dimensions but stride has 1")
    tensor_case("broadcast_bomb.pth", FakeTensor(s, 0, (2 ** 20, 2 ** 20), (0, 0)), "would need copies larger than the file")
    tensor_case("metadata_flag.pth", FakeTensor(s, 0, (6,), (1,), extra=({"conj": True},)), "tensor metadata flag 'conj' is set")
    tensor_case("rank_too_high.pth", FakeTensor(s, 0, (1,) * 40, (1,) * 40), "has 40 dimensions, more than 32")
    with_pickle("bad_persistent_id.pth", b"\x80\x02X\x07\x00\x00\x00storageQ.", "persistent id is of type str, expected a tuple")
    with_pickle("storage_called.pth", pickle.dumps(Call(torch.FloatStorage, ()), 2),
                "may only appear in a persistent id")
    with_pickle("rebuild_args.pth", pickle.dumps(Call(torch._utils._rebuild_tensor_v2, (1, 2)), 2),
                "_rebuild_tensor_v2 takes 6 or 7 arguments, found 2")
    import codecs
    with_pickle("codecs_utf16.pth", pickle.dumps(Call(codecs.encode, ("x", "utf-16")), 2),
                "_codecs.encode is only accepted as encode(str, 'latin1')")
    with_pickle("ordered_dict_args.pth", pickle.dumps(Call(collections.OrderedDict, ([("a", 1)],)), 2),
                "OrderedDict is only accepted with no arguments")

    # --- state_dict shape
    torch.save({"w": w, "epoch": 3}, path("not_a_tensor.pth"))
    add("not_a_tensor.pth", "state_dict entry 'epoch' is of type int, not a tensor")
    torch.save({"state_dict": sd, "model": sd}, path("ambiguous.pth"))
    add("ambiguous.pth", "both 'state_dict' and 'model'")
    torch.save([w, b], path("list_root.pth"))
    add("list_root.pth", "data.pkl holds an object of type list")
    with_pickle("int_key.pth", fake_pickle({1: FakeTensor(s, 0, (6,), (1,))}), "state_dict key #0 is of type int, expected str")
    dup = fake_pickle(collections.OrderedDict(w=FakeTensor(s, 0, (6,), (1,)), v=FakeTensor(s, 0, (6,), (1,))))
    with_pickle("duplicate_name.pth", dup.replace(b"X\x01\x00\x00\x00v", b"X\x01\x00\x00\x00w"),
                "state_dict has the tensor name 'w' twice")

    # --- pickle machine
    def pk(body):
        return b"\x80\x02" + body

    with_pickle("unknown_opcode.pth", pk(b"\xff."), "unsupported pickle opcode 0xff")
    with_pickle("string_opcode.pth", pk(b"S'x'\n."), "unsupported pickle opcode 0x53 ('S')")
    with_pickle("mark_bomb.pth", pk(b"(" * 10000 + b"."), "MARK nesting deeper than 64")
    with_pickle("deep_lists.pth", pk(b"]" * 20000 + b"a" * 19999 + b"."), "data.pkl holds an object of type list")
    with_pickle("memo_missing.pth", pk(b"h\x05."), "memo index 5 was never stored")
    with_pickle("long_memo_missing.pth", pk(b"}j\xff\xff\xff\xff."), "memo index 4294967295 was never stored")
    with_pickle("string_past_end.pth", pk(b"X\xff\xff\xff\x7f."), "length 2147483647 exceeds the")
    with_pickle("string8_past_end.pth", pk(b"\x8d" + b"\xff" * 8 + b"."), "length 18446744073709551615 exceeds the")
    with_pickle("no_stop.pth", pk(b"}"), "without a STOP")
    with_pickle("stack_underflow.pth", pk(b"R."), "stack underflow")
    with_pickle("tuple_no_mark.pth", pk(b"t."), "needs a MARK")
    with_pickle("bad_utf8.pth", pk(b"}X\x02\x00\x00\x00\xc3\x28N s."), "not valid UTF-8")
    with_pickle("setitem_on_list.pth", pk(b"]K\x01K\x02s."), "SETITEM needs a dict")
    with_pickle("two_objects.pth", pk(b"}}."), "STOP with 2 objects on the stack")
    with_pickle("protocol_9.pth", b"\x80\x09}.", "pickle protocol 9 is not supported")
    with_pickle("frame_past_end.pth", b"\x80\x04\x95" + struct.pack("<Q", 1 << 40) + b"}.", "FRAME length exceeds")
    with_pickle("unhashable_key.pth", pk(b"}]K\x01s."), "unhashable dict key of type list")
    with_pickle("build_on_dict.pth", pk(b"}}b."), "BUILD is only accepted on a collections.OrderedDict")

    with open(os.path.join(BAD, "expected.txt"), "w") as f:
        f.write("".join(f"{n}\t{m}\n" for n, m in expected))


def records_of_bytes(data):
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return [(i.filename, z.read(i.filename)) for i in z.infolist()]


if __name__ == "__main__":
    for f in os.listdir(HERE):
        if f.endswith((".pth", ".bin", ".txt")):
            os.remove(os.path.join(HERE, f))
    make_good()
    make_bad()
    total = sum(os.path.getsize(os.path.join(d, f)) for d in (HERE, BAD) for f in os.listdir(d)
                if os.path.isfile(os.path.join(d, f)))
    print(f"fixtures written, {total} bytes in total")
