#!/usr/bin/env python3
"""Regenerate the .pth test files in tests/data/pth (stdlib only; no torch needed): pickles written opcode by
opcode in the layout torch.save uses (a zip with <archive>/data.pkl and <archive>/data/<key>).

good_tiny.pth        an OrderedDict with a 2x3 f32 tensor, its transposed view (stride (1,3)) and an i64 scalar
evil_reduce.pth      a pickle whose __reduce__ would call os.system: must be refused, never executed
out_of_range.pth     a tensor of size 10x10 over a storage of 6 floats: must be refused (bounds check)
truncated.pth        good_tiny.pth cut in half: must be refused (truncated zip)
"""
import io, os, pickle, struct, zipfile

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pth")


def uni(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def glob(mod, name):
    return b"c" + mod.encode() + b"\n" + name.encode() + b"\n"


def tensor(stype, key, numel, offset, size, stride):
    t = lambda xs: b"(" + b"".join(b"K" + bytes([x]) for x in xs) + b"t"
    pid = b"(" + uni("storage") + glob("torch", stype) + uni(key) + uni("cpu") + b"K" + bytes([numel]) + b"tQ"
    return (glob("torch._utils", "_rebuild_tensor_v2") + b"(" + pid + b"K" + bytes([offset]) + t(size) + t(stride)
            + b"\x89" + glob("collections", "OrderedDict") + b")R" + b"tR")


def state_dict(items):
    body = b"\x80\x02" + glob("collections", "OrderedDict") + b")R("
    for name, tens in items:
        body += uni(name) + tens
    return body + b"u."


def save(name, pkl, storages):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/version", "3\n")
        for key, data in storages.items():
            z.writestr(f"archive/data/{key}", data)
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(buf.getvalue())
    return buf.getvalue()


os.makedirs(HERE, exist_ok=True)
floats = struct.pack("<6f", 0, 1, 2, 3, 4, 5)
good = save("good_tiny.pth", state_dict([
    ("a.weight", tensor("FloatStorage", "0", 6, 0, [2, 3], [3, 1])),
    ("a.weight_t", tensor("FloatStorage", "0", 6, 0, [3, 2], [1, 3])),
    ("a.tail", tensor("FloatStorage", "0", 6, 4, [2], [1])),
    ("bn.num_batches_tracked", tensor("LongStorage", "1", 1, 0, [], [])),
]), {"0": floats, "1": struct.pack("<q", 42)})
save("out_of_range.pth", state_dict([("w", tensor("FloatStorage", "0", 6, 0, [10, 10], [10, 1]))]), {"0": floats})


class Evil:
    def __reduce__(self):
        return (os.system, ("echo medpick-was-pwned > /tmp/medpick-pwned",))


save("evil_reduce.pth", pickle.dumps({"w": Evil()}, protocol=2), {})
with open(os.path.join(HERE, "truncated.pth"), "wb") as f:
    f.write(good[: len(good) // 2])
