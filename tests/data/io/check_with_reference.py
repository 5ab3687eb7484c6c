#!/usr/bin/env python3
"""Cross-checks the io fixtures against the reference readers (a manual tool, not run by CI).

Needs numpy and the `safetensors` package (e.g. in a venv: pip install safetensors). Every good
file must load with the reference; every file in bad/ should be refused by it too, except the
deliberate places where ctnn is stricter, listed in STRICTER below. For .npy, numpy.load is far
more permissive (it reads big-endian, bool, complex, structured, Fortran-ordered and trailing-data
files); the files it accepts are printed for information only.

Optionally, with a path argument, also loads that file (e.g. one ctnn wrote) with the reference
and prints its tensors.
"""
import glob
import os
import sys

import numpy as np
from safetensors import deserialize

HERE = os.path.dirname(os.path.abspath(__file__))
STRICTER = {  # the reference accepts these; ctnn refuses them on purpose
    "duplicate_metadata_key.safetensors",  # serde keeps the last value silently
    "extra_field.safetensors",             # serde ignores unknown keys
    "too_many_dims.safetensors",           # no rank limit in the reference
    "unsupported_dtype_u64.safetensors",   # valid format dtype that ctnn cannot represent
}

failures = 0
for f in sorted(glob.glob(os.path.join(HERE, "*.safetensors"))):
    with open(f, "rb") as fh:
        deserialize(fh.read())
for f in sorted(glob.glob(os.path.join(HERE, "bad", "*.safetensors"))):
    try:
        with open(f, "rb") as fh:
            deserialize(fh.read())
    except Exception:
        continue
    if os.path.basename(f) not in STRICTER:
        print("reference accepts", f)
        failures += 1
for f in sorted(glob.glob(os.path.join(HERE, "bad", "*.npy"))):
    try:
        np.load(f, allow_pickle=False)
        print("(info) numpy.load accepts", os.path.basename(f))
    except Exception:
        pass
for extra in sys.argv[1:]:
    with open(extra, "rb") as fh:
        for name, t in deserialize(fh.read()):
            print(name, t["dtype"], t["shape"], len(t["data"]), "bytes")
print("disagreements:", failures)
sys.exit(1 if failures else 0)
