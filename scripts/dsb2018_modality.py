#!/usr/bin/env python3
"""How each strategy's DSB2018 picks spread over the dataset's modalities: the share of colour (brightfield and
H&E) images among the picks, against the pool's. DSB2018 stores its 557 fluorescence images as 8-bit grey PNGs and
its 107 brightfield / H&E images as RGB (../shared/data/README.md), so the PNG colour type tells them apart.

    python3 scripts/dsb2018_modality.py [docs/results/evidence/dsb2018-litemedsam] [../shared/data/dsb2018]
"""
import collections
import json
import pathlib
import sys

here = pathlib.Path(__file__).resolve().parent.parent
run = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else here / "docs/results/evidence/dsb2018-litemedsam"
data = pathlib.Path(sys.argv[2]) if len(sys.argv) > 2 else here.parent / "shared/data/dsb2018"


def colour(path):
    with open(path, "rb") as f:
        head = f.read(26)
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        sys.exit(f"{path}: not a PNG")
    return head[25] in (2, 6)  # IHDR colour type: 2 RGB, 6 RGBA; 0 grey


res = json.loads((run / "results.json").read_text())
seen = {}
share = collections.defaultdict(list)
for r in res["runs"]:
    for i in r["picks"]:
        if i not in seen:
            seen[i] = colour(data / i)
    share[(r["strategy"], r["budget"])].append(sum(seen[i] for i in r["picks"]) / len(r["picks"]))
images = sorted((data / "images").glob("*.png"))
print(f"colour (brightfield / H&E) images: {sum(map(colour, images))} of {len(images)} in the dataset")
budgets = sorted({b for _, b in share})
print("| strategy | " + " | ".join(f"budget {b}" for b in budgets) + " |")
print("|---|" + "---|" * len(budgets))
for s in dict.fromkeys(s for s, _ in share):
    cells = [f"{100 * sum(share[(s, b)]) / len(share[(s, b)]):.0f} %" if (s, b) in share else "—" for b in budgets]
    print(f"| {s} | " + " | ".join(cells) + " |")
