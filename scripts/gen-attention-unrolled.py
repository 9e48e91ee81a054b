#!/usr/bin/env python3
"""Writes the unrolled head-dim paths of shaders/attention.wgsl (between its BEGIN/END unrolled markers).

Head dims 32 (TinyViT) and 64 (every DINOv2) get a path with the query and the accumulator in named vec4 variables
instead of the generic path's loop-indexed arrays, which Mesa's llvmpipe keeps in memory (the unrolled paths made
LiteMedSAM's window attention 1.5x faster there). The paths add the same terms in the same order as the generic
one. Rerun after editing: `python3 scripts/gen-attention-unrolled.py`.
"""
import pathlib


def path(h: int) -> str:
    """The path for head dim 4h: q0..q{h-1}, a0..a{h-1}."""
    o = f"    if (hd4 == {h}u) {{\n"
    for d in range(h):
        o += f"        var q{d} = vec4<f32>(0.0);\n        var a{d} = vec4<f32>(0.0);\n"
    o += "        if (i < n) {\n            let qb = token(win, i) * params.qkv_stride + hbase;\n"
    for d in range(h):
        o += f"            q{d} = load4(qb + {4 * d}u) * params.scale;\n"
    o += """        }
        for (var j0 = 0u; j0 < n; j0 += CH) {
            stage(j0, li, hd4, win, hbase, n);
            workgroupBarrier();
            if (i < n) {
                let cnt = min(CH, n - j0);
                for (var jj = 0u; jj < cnt; jj++) {
                    let kb = jj * HD4MAX;
"""
    o += "                    let sv = " + " + ".join(f"q{d} * k_tile[kb + {d}u]" for d in range(h)) + ";\n"
    o += """                    let s = sv.x + sv.y + sv.z + sv.w + bias_of(head, n, ri, ci, j0 + jj);
                    let m_new = max(m, s);
                    let corr = exp(m - m_new);
                    let p = exp(s - m_new);
                    l = l * corr + p;
"""
    for d in range(h):
        o += f"                    a{d} = a{d} * corr + p * v_tile[kb + {d}u];\n"
    o += """                    m = m_new;
                }
            }
            workgroupBarrier();
        }
        if (i < n) {
            let ob = token(win, i) * params.out_stride + head * params.hd;
            let inv = 1.0 / l;
"""
    for d in range(h):
        o += f"            store4(ob + {4 * d}u, a{d} * inv);\n"
    o += "        }\n        return;\n    }\n"
    return o


BEGIN = "    // BEGIN unrolled paths: written by scripts/gen-attention-unrolled.py, edit that instead.\n"
END = "    // END unrolled paths\n"
f = pathlib.Path(__file__).resolve().parent.parent / "shaders" / "attention.wgsl"
s = f.read_text()
a, b = s.index(BEGIN) + len(BEGIN), s.index(END)
f.write_text(s[:a] + path(8) + path(16) + s[b:])
print(f"wrote the unrolled paths of {f}")
