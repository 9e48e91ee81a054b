#!/usr/bin/env python3
"""Writes the unrolled head-dim paths of shaders/attention.wgsl (between its BEGIN/END unrolled markers).

Head dims 32 (TinyViT) and 64 (every DINOv2) get a path with the query and the accumulator in named vec4 variables
instead of the generic path's loop-indexed arrays, which Mesa's llvmpipe keeps in memory (the unrolled paths made
LiteMedSAM's window attention 1.5x faster there). The paths add the same terms in the same order as the generic
one. Rerun after editing: `python3 scripts/gen-attention-unrolled.py`;
`--check` writes nothing and exits 1 when the committed paths differ from what it would write.

With `pair` set (core sets it on CPU adapters), each of the first 32 threads of a workgroup takes two queries, i and
i + 32, and the other 32 only stage keys and values: every key and value read from workgroup memory serves two
queries. On llvmpipe each such read is a loop over the SIMD lanes, and the pairs made LiteMedSAM's attention
faster (docs/encoders.md); on a GPU it would leave half the threads idle, so GPUs keep one query per thread.
"""
import pathlib
import sys


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


def pair_path(h: int) -> str:
    """The paired path for head dim 4h: queries i (qa, aa, m, l) and i + 32 (qb, ab, mb, lb)."""
    o = f"    if (params.pair == 1u && hd4 == {h}u) {{\n"
    o += "        let act = li < 32u;\n        let ib = i + 32u;\n"
    o += "        let va = act && i < n;\n        let vb = act && ib < n;\n"
    o += "        let rb = i32(min(ib, n - 1u) / params.ws_w);\n        let cb = i32(min(ib, n - 1u) % params.ws_w);\n"
    o += "        var mb = -0x1.fffffep+127f;\n        var lb = 0.0;\n"
    for d in range(h):
        o += f"        var qa{d} = vec4<f32>(0.0);\n        var aa{d} = vec4<f32>(0.0);\n"
        o += f"        var qb{d} = vec4<f32>(0.0);\n        var ab{d} = vec4<f32>(0.0);\n"
    o += "        if (va) {\n            let qba = token(win, i) * params.qkv_stride + hbase;\n"
    o += "            let qbb = token(win, min(ib, n - 1u)) * params.qkv_stride + hbase;\n"
    for d in range(h):
        o += f"            qa{d} = load4(qba + {4 * d}u) * params.scale;\n"
        o += f"            qb{d} = load4(qbb + {4 * d}u) * params.scale;\n"
    o += """        }
        for (var j0 = 0u; j0 < n; j0 += CH) {
            stage(j0, li, hd4, win, hbase, n);
            workgroupBarrier();
            if (va) {
                let cnt = min(CH, n - j0);
                for (var jj = 0u; jj < cnt; jj++) {
                    let kb = jj * HD4MAX;
"""
    for d in range(h):
        o += f"                    let k{d} = k_tile[kb + {d}u];\n"
    o += "                    let sva = " + " + ".join(f"qa{d} * k{d}" for d in range(h)) + ";\n"
    o += "                    let svb = " + " + ".join(f"qb{d} * k{d}" for d in range(h)) + ";\n"
    o += """                    let sa = sva.x + sva.y + sva.z + sva.w + bias_of(head, n, ri, ci, j0 + jj);
                    let sb = svb.x + svb.y + svb.z + svb.w + bias_of(head, n, rb, cb, j0 + jj);
                    let ma = max(m, sa);
                    let mbn = max(mb, sb);
                    let corra = exp(m - ma);
                    let corrb = exp(mb - mbn);
                    let pa = exp(sa - ma);
                    let pb = exp(sb - mbn);
                    l = l * corra + pa;
                    lb = lb * corrb + pb;
"""
    for d in range(h):
        o += f"                    let v{d} = v_tile[kb + {d}u];\n"
        o += f"                    aa{d} = aa{d} * corra + pa * v{d};\n"
        o += f"                    ab{d} = ab{d} * corrb + pb * v{d};\n"
    o += """                    m = ma;
                    mb = mbn;
                }
            }
            workgroupBarrier();
        }
        if (va) {
            let oba = token(win, i) * params.out_stride + head * params.hd;
            let inva = 1.0 / l;
"""
    for d in range(h):
        o += f"            store4(oba + {4 * d}u, aa{d} * inva);\n"
    o += """        }
        if (vb) {
            let obb = token(win, ib) * params.out_stride + head * params.hd;
            let invb = 1.0 / lb;
"""
    for d in range(h):
        o += f"            store4(obb + {4 * d}u, ab{d} * invb);\n"
    o += "        }\n        return;\n    }\n"
    return o


BEGIN = "    // BEGIN unrolled paths: written by scripts/gen-attention-unrolled.py, edit that instead.\n"
END = "    // END unrolled paths\n"
f = pathlib.Path(__file__).resolve().parent.parent / "shaders" / "attention.wgsl"
s = f.read_text()
a, b = s.index(BEGIN) + len(BEGIN), s.index(END)
new = s[:a] + pair_path(8) + pair_path(16) + path(8) + path(16) + s[b:]
if "--check" in sys.argv[1:]:
    if new != s:
        sys.exit(f"gen-attention-unrolled.py --check: the unrolled paths of {f} differ from the generator (rerun it)")
    print(f"gen-attention-unrolled.py --check: the unrolled paths of {f} equal the generator's output")
else:
    f.write_text(new)
    print(f"wrote the unrolled paths of {f}")
