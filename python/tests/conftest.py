"""Shared helpers of the Python tests: fixture paths and a small safetensors reader (numpy only)."""
import json
import os
import struct

import numpy as np
import pytest

FIXTURES = os.environ.get("KREA2_FIXTURES",
                          os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures"))

_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32, "U8": np.uint8,
           "BOOL": np.bool_, "F64": np.float64}


def fixture(*parts):
    return os.path.join(FIXTURES, *parts)


def read_safetensors(path):
    """{name: array} of a safetensors file."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = data[8 + n + begin:8 + n + end]
        out[name] = np.frombuffer(raw, dtype=_DTYPES[info["dtype"]]).reshape(info["shape"]).copy()
    return out


def rel_l2(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


@pytest.fixture
def tmp_dir():
    d = os.environ.get("KREA2_TEST_TMP", "/tmp")
    os.makedirs(d, exist_ok=True)
    return d
