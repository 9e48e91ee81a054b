//! CPU twin of `shaders/matmul.wgsl`: C[M,N] = A[M,K] · B (B [K,N]) or A · Bᵀ (B [N,K]) + bias[N].
//! Dot products accumulate in f64.

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
            let mut acc = 0f64;
            for (x, y) in arow.iter().zip(brow) {
                acc += *x as f64 * *y as f64;
            }
            let mut v = acc as f32;
            if let Some(bias) = bias {
                v += bias[j];
            }
            c[i * n + j] = v;
        }
    }
    c
}
