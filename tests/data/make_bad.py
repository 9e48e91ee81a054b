#!/usr/bin/env python3
"""Regenerate the bad-input corpus in tests/data/bad (stdlib only). Each file is broken in one documented way;
tests/tests/io.rs checks that each is rejected with an error naming the file, and that a batch run skips it and
processes the rest. The DICOM series with a missing slice is generated at test time from ../shared data."""
import gzip, os, struct, zipfile, zlib

HERE = os.path.dirname(os.path.abspath(__file__))
BAD = os.path.join(HERE, "bad")


def chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def png(w, h, pixels=None):
    raw = b"".join(b"\x00" + bytes(pixels[y * w:(y + 1) * w]) for y in range(h)) if pixels else b"\x00" * 16
    body = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
    body += chunk(b"IDAT", zlib.compress(raw))
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IEND", b"")


def write(name, data):
    path = os.path.join(BAD, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


good = png(8, 8, [(x * 31 + y * 7) % 256 for y in range(8) for x in range(8)])
write("good.png", good)                                   # the one file that must survive the batch
write("zero_bytes.png", b"")                              # a zero-byte file
write("truncated.png", good[: len(good) // 2])            # cut in the middle of IDAT
write("huge_header.png", png(100000, 100000))             # header claims 100000 x 100000: refuse before allocating
write("corrupt.jpg", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)  # JPEG SOI then garbage
write("text_named.png", b"this is not an image\n")         # wrong content for the extension
# NIfTI: a valid 348-byte header for a 4x4x4 uint8 volume, gzipped, then the gzip stream cut short.
hdr = bytearray(348)
struct.pack_into("<i", hdr, 0, 348)
struct.pack_into("<8h", hdr, 40, 3, 4, 4, 4, 1, 1, 1, 1)
struct.pack_into("<hh", hdr, 70, 2, 8)                     # datatype uint8, bitpix 8
struct.pack_into("<8f", hdr, 76, 1, 1, 1, 1, 1, 1, 1, 1)
struct.pack_into("<f", hdr, 108, 352.0)                    # vox_offset
hdr[344:348] = b"n+1\x00"
vol = bytes(hdr) + b"\x00" * 4 + bytes(range(64))
gz = gzip.compress(vol)
write("truncated.nii.gz", gz[: len(gz) // 2])
write("corrupt.dcm", b"\x00" * 128 + b"DICM" + b"\x02\x00\x10\x00UI" + b"\xff" * 64)
# npz: a valid archive with one array, cut in half.
npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", 118) + (b"{'descr': '|u1', 'fortran_order': False, 'shape': (4, 8, 8), }").ljust(117) + b"\n" + bytes(256)
tmp = os.path.join(BAD, "_tmp.npz")
with zipfile.ZipFile(tmp, "w") as z:
    z.writestr("train_images.npy", npy)
with open(tmp, "rb") as f:
    data = f.read()
os.remove(tmp)
write("truncated.npz", data[: len(data) // 2])
# A mask whose size differs from its image (images/ + masks/ layout).
write("mismatch/images/case1.png", good)
write("mismatch/masks/case1.png", png(4, 4, [255] * 16))
write("mismatch/images/case2.png", good)
write("mismatch/masks/case2.png", png(8, 8, [0, 255] * 32))
# An unreadable file: a dangling symbolic link (root can read any permission bits, so chmod is no test).
link = os.path.join(BAD, "unreadable.png")
if os.path.lexists(link):
    os.remove(link)
os.symlink("does-not-exist.png", link)
