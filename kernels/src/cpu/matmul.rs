//! CPU twin of `shaders/matmul.wgsl`: C[M,N] = A[M,K] · B (B [K,N]) or A · Bᵀ (B [N,K]) + bias[N].
//! Dot products accumulate in f64 (four partial sums, for speed when this twin runs a whole model on the CPU).

pub fn matmul(a: &[f32], b: &[f32], bias: Option<&[f32]>, m: usize, n: usize, k: usize, trans_b: bool) -> Vec<f32> {
    assert!(a.len() >= m * k && b.len() >= k * n, "matmul twin: operands shorter than the shape");
    let mut c = vec![0f32; m * n];
    // Bᵀ laid out [N,K] makes every dot product contiguous in both operands.
    let bt: std::borrow::Cow<[f32]> = if trans_b {
        std::borrow::Cow::Borrowed(b)
    } else {
        let mut t = vec![0f32; n * k];
        for kk in 0..k {
            for j in 0..n {
                t[j * k + kk] = b[kk * n + j];
            }
        }
        std::borrow::Cow::Owned(t)
    };
    for i in 0..m {
        let arow = &a[i * k..(i + 1) * k];
        for j in 0..n {
            let brow = &bt[j * k..(j + 1) * k];
            let mut v = dot_f64(arow, brow) as f32;
            if let Some(bias) = bias {
                v += bias[j];
            }
            c[i * n + j] = v;
        }
    }
    c
}

/// Σ x·y in f64 over four interleaved partial sums (independent add chains pipeline; same precision class).
pub fn dot_f64(x: &[f32], y: &[f32]) -> f64 {
    let mut acc = [0f64; 4];
    let (xc, yc) = (x.chunks_exact(4), y.chunks_exact(4));
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (a, b) in xc.zip(yc) {
        for l in 0..4 {
            acc[l] += a[l] as f64 * b[l] as f64;
        }
    }
    let mut tail = 0f64;
    for (a, b) in xr.iter().zip(yr) {
        tail += *a as f64 * *b as f64;
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}
