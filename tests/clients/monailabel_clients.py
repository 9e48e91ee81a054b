"""Drive `medpick serve` with MONAI Label 0.8.5's own clients, unmodified, taken from the PyPI wheel:
monailabel/client/client.py (MONAILabelClient) and the 3D Slicer module's copy
(.../plugins/slicer/MONAILabel/MONAILabelLib/client.py). Only the standard library and `requests` are needed.

usage: monailabel_clients.py WHEEL SERVER_URL DATASTORE MASKS_DIR [VOLUME_LABEL]

DATASTORE holds 2-D images (whose ground-truth masks are MASKS_DIR/<id>.png) and NIfTI volumes. VOLUME_LABEL, a
uint8 probability map on the volumes' grid (MNI152's grey matter), is thresholded at 128 for a volume's label (a
synthetic cube without it). Exits non-zero with a message on the first failed check.
"""

import gzip
import importlib.util
import json
import os
import struct
import sys
import tempfile
import time
import urllib.request
import zipfile
import zlib

WHEEL, URL, DATASTORE, MASKS = sys.argv[1:5]
VOLUME_LABEL = sys.argv[5] if len(sys.argv) > 5 else None
WORK = tempfile.mkdtemp(prefix="medpick-mlclient-")


def load_client(member, name):
    with zipfile.ZipFile(WHEEL) as z:
        names = [n for n in z.namelist() if n.endswith(member)]
        assert names, f"{member} not in {WHEEL}"
        path = os.path.join(WORK, name + ".py")
        with open(path, "wb") as f:
            f.write(z.read(names[0]))
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def check(cond, msg):
    if not cond:
        print(f"FAILED: {msg}", file=sys.stderr)
        sys.exit(1)


def png_size(b):
    check(b[:8] == b"\x89PNG\r\n\x1a\n", "a PNG file")
    w, h = struct.unpack(">II", b[16:24])
    return w, h


def read_nifti(path):
    """(header bytes, dims, sform rows, voxels) of a NIfTI-1 file of uint8 voxels."""
    raw = open(path, "rb").read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    dim = struct.unpack("<8h", raw[40:56])
    dtype = struct.unpack("<h", raw[70:72])[0]
    off = int(struct.unpack("<f", raw[108:112])[0])
    srow = struct.unpack("<12f", raw[280:328])
    n = dim[1] * dim[2] * dim[3]
    check(dtype == 2, f"{path}: uint8 voxels (datatype {dtype})")
    return raw[:off], dim[1:4], srow, raw[off:off + n]


def read_nifti_any(path):
    """(header, dims, sform rows, None) of any NIfTI-1 file."""
    raw = open(path, "rb").read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return raw[:348], struct.unpack("<8h", raw[40:56])[1:4], struct.unpack("<12f", raw[280:328]), None


def nifti_dims(path):
    return read_nifti_any(path)[1]


def write_nifti_label(path, dims):
    """A uint8 NIfTI-1 label: a cube of 1s in the middle of a volume of `dims`."""
    x, y, z = dims
    hdr = bytearray(348)
    struct.pack_into("<i", hdr, 0, 348)
    struct.pack_into("<8h", hdr, 40, 3, x, y, z, 1, 1, 1, 1)
    struct.pack_into("<hh", hdr, 70, 2, 8)  # datatype uint8, 8 bits
    struct.pack_into("<8f", hdr, 76, 1, 1, 1, 1, 1, 1, 1, 1)
    struct.pack_into("<f", hdr, 108, 352.0)  # vox_offset
    struct.pack_into("<f", hdr, 112, 1.0)  # scl_slope
    hdr[344:348] = b"n+1\0"
    data = bytearray(x * y * z)
    for k in range(z // 3, 2 * z // 3):
        for j in range(y // 3, 2 * y // 3):
            base = (k * y + j) * x
            data[base + x // 3: base + 2 * x // 3] = b"\x01" * (2 * x // 3 - x // 3)
    with gzip.open(path, "wb") as f:
        f.write(bytes(hdr) + b"\0\0\0\0" + bytes(data))


def png_gray(path, w, h, value_at):
    rows = b"".join(b"\0" + bytes(value_at(i, j) for i in range(w)) for j in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def volume_label(dims):
    """VOLUME_LABEL thresholded at 128 (uint8, its header with scale 1), or None when it is not on `dims`."""
    if not VOLUME_LABEL:
        return None
    head, d, _, vox = read_nifti(VOLUME_LABEL)
    if tuple(d) != tuple(dims):
        return None
    head = bytearray(head)
    struct.pack_into("<ff", head, 112, 1.0, 0.0)  # scl_slope, scl_inter
    return bytes(head), bytes(1 if v >= 128 else 0 for v in vox)


def label_for(sample):
    """A label file for a sample: the ground-truth mask of a 2-D image; for a volume the thresholded
    VOLUME_LABEL on its grid, else a synthetic cube."""
    name = sample["name"]
    if name.endswith(".nii.gz") or name.endswith(".nii"):
        out = os.path.join(WORK, sample["id"] + ".nii.gz")
        dims = nifti_dims(sample["path"])
        real = volume_label(dims)
        if real:
            with gzip.open(out, "wb") as f:
                f.write(real[0] + real[1])
        else:
            write_nifti_label(out, dims)
        return out
    return os.path.join(MASKS, sample["id"] + ".png")


def wait_ready(client):
    for _ in range(600):
        info = client.info()
        if info["medpick"]["embedding"]["state"] == "ready":
            return info
        time.sleep(0.5)
    check(False, "the server finished embedding within 300 s")


def expect_error(fn, status_lo=400, status_hi=499, what=""):
    try:
        fn()
    except Exception as e:  # MONAILabelClientException
        text = str(getattr(e, "msg", e))
        check(f"Status: {status_lo}" in text or any(f"Status: {s}" in text for s in range(status_lo, status_hi + 1)),
              f"{what}: a {status_lo}-{status_hi} status, got {text[:200]}")
        return text
    check(False, f"{what}: the server refused it")


def python_client():
    ml = load_client("monailabel/client/client.py", "ml_client")
    a = ml.MONAILabelClient(URL, tmpdir=WORK, client_id="annotator-a")
    b = ml.MONAILabelClient(URL, tmpdir=WORK, client_id="annotator-b")
    check(not a.auth_enabled(), "auth is off on a loopback server without a token")
    info = wait_ready(a)
    check("config" not in info, "no top-level config key (3D Slicer refuses such a server)")
    check("typiclust" in info["strategies"] and "random" in info["strategies"], "strategies listed")
    for m in info["models"].values():
        check("type" in m and "description" in m, "every model has a type and a description")
    total = info["datastore"]["total"]

    given = []
    s1 = a.next_sample("typiclust", {})
    check(s1.get("id") and s1.get("name") and os.path.exists(s1["path"]), f"a sample with id, name, path: {s1}")
    check(s1["strategy"]["typiclust"]["client_id"] == "annotator-a", "the strategy stamp names the client")
    # Downloaded as Slicer downloads it.
    with urllib.request.urlopen(f"{URL}/datastore/image?image={urllib.parse.quote_plus(s1['id'])}") as r:
        data = r.read()
        check(data == open(s1["path"], "rb").read(), "the downloaded image is the datastore file")
        check(s1["name"] in r.headers.get("content-disposition", ""), "the download names the file")
    # Another annotator never gets an image the first one holds.
    s2 = b.next_sample("typiclust", {})
    check(s2.get("id") and s2["id"] != s1["id"], "two annotators get different images")
    given += [s1, s2]
    a.save_label(s1["id"], label_for(s1), params={"label_info": [{"name": "foreground", "idx": 1}]})
    b.save_label(s2["id"], label_for(s2))
    s3 = a.next_sample("typiclust", {})
    check(s3.get("id") and s3["id"] not in (s1["id"], s2["id"]), "next sample after a label is another image")
    given.append(s3)
    a.save_label(s3["id"], label_for(s3))
    # Label more 2-D images so that training has a validation image.
    labeled = {s["id"] for s in given}
    while sum(1 for s in given if s["name"].endswith(".png")) < 7:
        s = a.next_sample("probcover", {})
        check(s.get("id") and s["id"] not in labeled, f"probcover gives an unlabelled image: {s}")
        a.save_label(s["id"], label_for(s))
        labeled.add(s["id"])
        given.append(s)

    # Replacing a label keeps the old one as a version.
    r = a.save_label(s1["id"], label_for(s1))
    check("previous_version" in r and os.path.exists(os.path.join(DATASTORE, r["previous_version"])),
          f"the replaced label is kept: {r}")

    # Bad uploads: 4xx with a message, and the server keeps serving.
    expect_error(lambda: a.next_sample("no-such-strategy", {}), what="unknown strategy")
    expect_error(lambda: a.save_label("../etc/passwd", label_for(s3)), 400, 404, what="an id with ..")
    bad = os.path.join(WORK, "wrong.png")
    png_gray(bad, 7, 5, lambda i, j: 1)
    two_d = [s for s in given if s["name"].endswith(".png")][0]
    msg = expect_error(lambda: a.save_label(two_d["id"], bad), what="a mask of the wrong size")
    check("7×5" in msg or "7x5" in msg or "label is" in msg, f"the size error says the sizes: {msg}")
    notimg = os.path.join(WORK, "notes.png")
    open(notimg, "wb").write(b"not a png at all")
    expect_error(lambda: a.save_label(two_d["id"], notimg), what="a label that is not an image")

    ds = a.datastore()
    for s in given:
        check("final" in ds["objects"][s["id"]]["labels"], f"{s['id']} has its final label in the datastore")
    check(a.info()["datastore"]["completed"] == len(labeled), "completed counts the labels")

    # A volume's label too (the real grey-matter map on MNI152's grid when given): training uses its slices.
    objects = a.datastore()["objects"]
    volumes = [i for i, o in objects.items() if o["image"]["ext"] in (".nii.gz", ".nii")]
    for v in volumes:
        if v not in labeled:
            ext = objects[v]["image"]["ext"]
            a.save_label(v, label_for({"id": v, "name": v + ext, "path": os.path.join(DATASTORE, v + ext)}))
            labeled.add(v)

    # Train the head, then infer with it.
    task = a.train_start("medpick_seg", {"max_epochs": 20})
    check(task.get("status") in ("RUNNING", "SUBMITTED"), f"training starts: {task}")
    expect_error(lambda: a.train_start("medpick_seg", {}), 429, 429, what="a second training while one runs")
    for _ in range(1200):
        if not a.train_status(check_if_running=True):
            break
        time.sleep(0.5)
    st = a.train_status()
    check(st["status"] == "DONE", f"training done: {st}")
    stats = a.info()["train_stats"]["medpick_seg"]
    check(isinstance(stats.get("best_metric"), (int, float)) and 0 < stats["best_metric"] <= 1,
          f"train_stats' best_metric is the held-out Dice: {stats}")
    target = [s for s in given if s["name"].endswith(".png")][0]
    out, params = a.infer("medpick_seg", target["id"], {})
    want = png_size(open(target["path"], "rb").read())
    check(out and png_size(open(out, "rb").read()) == want, "the head's mask has the image's size")
    check(params["label_names"] == {"foreground": 1}, f"label_names: {params}")
    frac = params["foreground_pixels"] / (want[0] * want[1])
    check(0.005 < frac < 0.9, f"the head's mask of a training image is neither empty nor everything: {frac:.3f}")
    fg = params["foreground_pixels"]
    for v in volumes:
        check(any(n.startswith(f"{v}: ") and "labelled slices of a volume" in n for n in stats.get("notes", [])),
              f"the volume's slices were trained on: {stats}")

    # A volume's mask is a NIfTI label volume on the image's grid, with its affine (MONAI Label's default).
    for v in volumes:
        ext = objects[v]["image"]["ext"]
        t0 = time.time()
        out, params = a.infer("medpick_seg", v, {})
        secs = time.time() - t0
        check(out and out.endswith(".nii.gz"), f"a volume's mask is a .nii.gz file: {out}")
        _, dims, srow, vox = read_nifti(out)
        _, idims, isrow, _ = read_nifti_any(os.path.join(DATASTORE, v + ext))
        check(tuple(dims) == tuple(idims) and params["depth"] == idims[2], f"the mask's dims {dims} are the image's {idims}")
        check(srow == isrow, f"the mask's affine is the image's: {srow} vs {isrow}")
        got = sum(1 for x in vox if x)
        check(got == params["foreground_pixels"] and 0 < got < len(vox), f"a mask neither empty nor full: {got}")
        real = volume_label(idims)
        if real:
            truth = real[1]
            inter = sum(1 for x, y in zip(vox, truth) if x and y)
            dice = 2 * inter / (got + sum(truth))
            print(f"volume {v}: {idims[2]} slices inferred in {secs:.1f} s, Dice {dice:.3f} against its label")
            check(dice > 0.5, f"the volume's mask overlaps its label: Dice {dice:.3f}")

    # Sessions (3D Slicer's way to infer on a local image that is not in the datastore): the same pixels under
    # another name give the same mask, the datastore does not grow, and a removed session is gone.
    count = len(a.datastore()["objects"])
    outside = os.path.join(WORK, "outside-scan.png")
    with open(target["path"], "rb") as src, open(outside, "wb") as dst:
        dst.write(src.read())
    sess = a.create_session(outside)
    sid = sess["session_id"]
    check(sess["session_info"]["image"].endswith("outside-scan.png"), f"the session holds the upload: {sess}")
    check(a.get_session(sid)["name"] == sid, "the session is found by its id")
    out, params = a.infer("medpick_seg", "", {}, session_id=sid)
    check(out and png_size(open(out, "rb").read()) == want, "the session's mask has the image's size")
    check(params["foreground_pixels"] == fg, f"the session's mask is the datastore image's: {params} vs {fg}")
    # A raw image in the infer request itself (MONAI Label's `file`): the same mask again.
    out, params = a.infer("medpick_seg", "", {}, file=outside)
    check(params["foreground_pixels"] == fg, f"an uploaded image's mask is the datastore image's: {params}")
    check(len(a.datastore()["objects"]) == count, "sessions and uploads do not join the datastore")
    check(a.remove_session(sid)["name"] == sid, "the session is removed")
    expect_error(lambda: a.get_session(sid), 404, 404, what="a removed session")
    expect_error(lambda: a.infer("medpick_seg", "", {}, session_id=sid), 404, 404, what="infer on a removed session")
    expect_error(lambda: a.get_session("../../etc"), 404, 404, what="a session id that is a path")

    w, h = want
    out, params = a.infer("litemedsam_box", target["id"], {"box": [0, 0, w - 1, h - 1]})
    check(out and params["foreground_pixels"] > 0, f"LiteMedSAM's box mask is not empty: {params}")
    expect_error(lambda: a.infer("litemedsam_box", target["id"], {}), what="a box model without a box")

    # Uncertainty: score the unlabelled pool with the trained head, then "lc" is a strategy.
    import requests
    expect_error(lambda: a.next_sample("nope-lc", {}), what="an unknown strategy")
    r = requests.post(f"{URL}/scoring/lc")
    check(r.status_code == 200, f"scoring starts: {r.status_code} {r.text}")
    for _ in range(1200):
        st = requests.get(f"{URL}/scoring/").json()
        if st["status"] != "RUNNING":
            break
        time.sleep(0.5)
    check(st["status"] == "DONE", f"scoring done: {st}")
    check("lc" in a.info()["strategies"], "lc is a strategy once scored")
    s = a.next_sample("lc", {})
    check(s.get("id") and s["id"] not in labeled and s["medpick"]["strategy"] == "lc"
          and 0 <= s["medpick"]["score"] <= 1, f"the least confident unlabelled image: {s}")
    a.save_label(s["id"], label_for(s))
    given.append(s)

    # Nothing left: {} once every image is labelled.
    while True:
        s = a.next_sample("random", {})
        if not s:
            break
        a.save_label(s["id"], label_for(s))
    check(a.info()["datastore"]["completed"] == total, "every image labelled")
    print(f"python client: {len(given)} samples, {total} images, best Dice {stats['best_metric']:.3f}")
    return target


def slicer_client(target):
    sc = load_client("plugins/slicer/MONAILabel/MONAILabelLib/client.py", "slicer_client")
    c = sc.MONAILabelClient(URL, tmpdir=WORK, client_id="slicer-user")
    info = c.info()
    check(not info.get("config"), "Slicer's check: no config key")
    check(info["datastore"]["completed"] > 0, "Slicer enables training with labels")
    # Slicer asks for .nrrd results (result_extension) and reads the file part.
    out, params = c.infer("medpick_seg", target["id"], {"result_extension": ".nrrd", "result_dtype": "uint8"})
    head = open(out, "rb").read(200)
    check(head.startswith(b"NRRD0004") and b"type: uint8" in head, f"an NRRD labelmap: {head[:60]}")
    # Slicer submits its labelmap as .nrrd: stored as <id>.nrrd, read back by the server.
    w, h = png_size(open(target["path"], "rb").read())
    nrrd = os.path.join(WORK, "slicer-label.seg.nrrd")
    body = bytes((1 if (w // 4 <= i < w // 2 and h // 4 <= j < h // 2) else 0) for j in range(h) for i in range(w))
    open(nrrd, "wb").write(f"NRRD0004\ntype: uint8\ndimension: 3\nsizes: {w} {h} 1\nencoding: gzip\n\n".encode()
                           + gzip.compress(body))
    c.save_label(target["id"], nrrd)
    ds = c.datastore()
    check(ds["objects"][target["id"]]["labels"]["final"]["ext"] == ".nrrd", "the Slicer label is stored as .nrrd")
    local = c.download_label(target["id"], "final")
    check(open(local, "rb").read().startswith(b"NRRD"), "the label downloads back")
    check(c.train_status(check_if_running=True) is False, "no training running")
    print("slicer client: info, infer (.nrrd), save_label (.seg.nrrd), datastore, download_label")


if __name__ == "__main__":
    import urllib.parse  # noqa: E402 (used above)

    t = python_client()
    slicer_client(t)
    print("OK")
