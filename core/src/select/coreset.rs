//! k-center greedy (`coreset`, `coreset-f16`): the plain f64 reference, the scans (`min_dist_update` or the
//! pruned `kcenter_update`, either feature store) and the CPU backend's pruned k-center ([`super::exact`]).

use super::scan::Pool;
use super::strategies::{dist, empty, norms2};
use super::{argmax, Matrix, SelectInput, Selection};
use crate::rng::Rng;
use crate::{Error, Result};

/// `coreset`: k-center greedy. The first centre is random (seeded) unless rows are already labelled (then the
/// min-distances start from them) or `first` is given. Score = the distance to the nearest centre at pick time.
/// On a GPU the O(n·d) distance update and the argmax run in the scans (squared distances, same order); the CPU
/// backend gets the same picks from [`super::exact::kcenter`] (triangle-inequality pruning).
pub async fn coreset(input: &SelectInput<'_>, first: Option<usize>) -> Result<Selection> {
    let x = input.x;
    let mut sel = empty();
    let mut seeds: Vec<usize> = input.labeled.to_vec();
    if seeds.is_empty() {
        let f = first.unwrap_or_else(|| Rng::new(input.seed).below(x.n as u32) as usize);
        sel.picks.push(f);
        sel.scores.push(0.0);
        seeds.push(f);
    }
    match input.scans {
        Some(be) if be.is_gpu() => {
            let (reads, plain) = coreset_scan_pruned(be, x, &seeds, input.budget, &mut sel).await?;
            sel.notes.push(format!("k-center: {reads} rows read (plain scan: {plain})"));
        }
        Some(_) => {
            // The CPU backend: the scan's result (f32 min-distances of f64 sums), with triangle pruning.
            let (picks, scores, evals) = super::exact::kcenter(x, &seeds, input.budget.saturating_sub(sel.picks.len()));
            sel.picks.extend(picks);
            sel.scores.extend(scores);
            let plain = (seeds.len() + sel.picks.len()) as u64 * x.n as u64;
            sel.notes.push(format!("k-center: {evals} distance evaluations (plain: {plain})"));
        }
        None => coreset_plain(x, &seeds, input.budget, &mut sel),
    }
    Ok(sel)
}

/// `coreset-f16`: [`coreset`] on the f16 feature store. The features are rounded to f16 and packed two to a
/// word, so each k-center step reads half the bytes (`min_dist_update_f16` on a GPU, the pruned
/// [`super::exact::kcenter_f16`] on the CPU backend); distances are then computed exactly as the f32 store's.
/// The picks are therefore [`coreset`]'s on the f16-rounded features, the same first centre included; how far
/// they are from the f32 picks is measured in docs/selection.md.
pub async fn coreset_f16(input: &SelectInput<'_>) -> Result<Selection> {
    use crate::cpu::min_dist_update_f16::pack_f16_rows;
    let x = input.x;
    if let Some(t) = x.data.iter().position(|v| v.abs() > f32::from(half::f16::MAX)) {
        return Err(Error::Invalid(format!(
            "coreset-f16: feature row {} holds {}, beyond f16's range (±65504); use coreset (the f32 store) or scale \
             the features",
            t / x.d,
            x.data[t]
        )));
    }
    let packed = pack_f16_rows(x.data, x.n, x.d);
    let mut sel = empty();
    let mut seeds: Vec<usize> = input.labeled.to_vec();
    if seeds.is_empty() {
        let f = Rng::new(input.seed).below(x.n as u32) as usize;
        sel.picks.push(f);
        sel.scores.push(0.0);
        seeds.push(f);
    }
    let bytes = |b: usize| format!("{:.1} MiB", b as f64 / 1048576.0);
    sel.notes.push(format!(
        "f16 feature store: {} instead of {} (the picks are coreset's on the f16-rounded features)",
        bytes(packed.len() * 4),
        bytes(x.data.len() * 4)
    ));
    match input.scans {
        Some(be) if be.is_gpu() => {
            let pool = Pool::upload_f16(be, &packed, x.n, x.d)?;
            let (reads, plain) = kcenter_scan_pruned(&pool, &seeds, input.budget, &mut sel).await?;
            sel.notes.push(format!("k-center: {reads} rows read (plain scan: {plain})"));
        }
        Some(_) => {
            let rest = input.budget.saturating_sub(sel.picks.len());
            let (picks, scores, evals) = super::exact::kcenter_f16(&packed, x.n, x.d, &seeds, rest);
            sel.picks.extend(picks);
            sel.scores.extend(scores);
            let plain = (seeds.len() + sel.picks.len()) as u64 * x.n as u64;
            sel.notes.push(format!("k-center: {evals} distance evaluations (plain: {plain})"));
        }
        None => {
            let rounded: Vec<f32> = x.data.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
            coreset_plain(Matrix::new(&rounded, x.n, x.d)?, &seeds, input.budget, &mut sel)
        }
    }
    Ok(sel)
}

/// k-center greedy in the scans: `min_dist_update` from every centre and `argmax_rows` of the min-distances.
pub async fn coreset_scan(
    be: crate::exec::Backend<'_>,
    x: Matrix<'_>,
    seeds: &[usize],
    budget: usize,
    sel: &mut Selection,
) -> Result<()> {
    kcenter_scan(&Pool::upload(be, x)?, seeds, budget, sel).await
}

/// [`coreset_scan`] with triangle-inequality pruning (`kcenter_update`): the same min-distances bit for bit, so
/// the same picks and scores, with only the rows a new centre can lower read. Returns the rows read and the rows
/// the plain scan reads (every row at every step).
pub async fn coreset_scan_pruned(
    be: crate::exec::Backend<'_>,
    x: Matrix<'_>,
    seeds: &[usize],
    budget: usize,
    sel: &mut Selection,
) -> Result<(u64, u64)> {
    kcenter_scan_pruned(&Pool::upload(be, x)?, seeds, budget, sel).await
}

/// [`coreset_scan_pruned`] on a pool already uploaded (either store).
pub async fn kcenter_scan_pruned(
    pool: &Pool<'_>,
    seeds: &[usize],
    budget: usize,
    sel: &mut Selection,
) -> Result<(u64, u64)> {
    use crate::cpu::min_dist_update::sqdist_f64;
    let (be, n) = (pool.be, pool.x.n);
    // The centres' rows as the scan measures them (the f16 store's widened), for ‖c − cⱼ‖² on the host.
    let host_row = |i: usize| -> Vec<f32> {
        match pool.f16_d {
            Some(fd) => {
                let w = pool.x.row(i);
                let mut r = vec![0f32; fd];
                crate::cpu::min_dist_update_f16::unpack_f16_row(bytemuck::cast_slice(w), &mut r);
                r
            }
            None => pool.x.row(i).to_vec(),
        }
    };
    let mut rows: Vec<Vec<f32>> = Vec::with_capacity(seeds.len() + budget + 1);
    let (mind, owner, count) = (be.storage("coreset", n)?, be.storage("coreset", n)?, be.storage("coreset", 1)?);
    let dc2 = be.storage("coreset", seeds.len() + budget + 1)?;
    let (ov, oi) = (be.storage("coreset", 1)?, be.storage("coreset", 1)?);
    let mut ex = be.exec();
    // The counter is a wrapping u32: read (and the difference added up) before it could pass 2³² reads.
    let (mut reads, mut last, mut unread) = (0u64, 0u32, 0u64);
    let mut next: Vec<(usize, bool)> = seeds.iter().enumerate().map(|(s, &c)| (c, s == 0)).collect();
    loop {
        for (c, init) in std::mem::take(&mut next) {
            // The new centre's squared distances to the earlier ones (f64 sums on the host), then the step.
            let cr = host_row(c);
            let d2: Vec<f32> = crate::cpu::par::map(rows.len(), |j| sqdist_f64(&cr, &rows[j]) as f32);
            rows.push(cr);
            if unread + n as u64 > u32::MAX as u64 {
                let now = ex.read_u32(&count, 1).await?[0];
                reads += now.wrapping_sub(last) as u64;
                (last, unread) = (now, 0);
            }
            ex.flush();
            if !d2.is_empty() {
                be.write(&dc2, 0, &d2)?;
            }
            pool.kcenter_update(&mut ex, &dc2, &owner, &mind, &count, c, (rows.len() - 1) as u32, init).await?;
            unread += n as u64;
        }
        if sel.picks.len() >= budget {
            break;
        }
        ex.argmax_rows(&mind, &ov, &oi, 1, n).await?;
        let vi = ex.read_many_f32(&[(&ov, 1), (&oi, 1), (&count, 1)]).await?;
        let (v, i) = (vi[0][0], vi[1][0].to_bits() as usize);
        let now = vi[2][0].to_bits();
        reads += now.wrapping_sub(last) as u64;
        (last, unread) = (now, 0);
        if i >= n {
            break;
        }
        sel.picks.push(i);
        sel.scores.push((v.max(0.0) as f64).sqrt());
        if sel.picks.len() < budget {
            next.push((i, false));
        }
    }
    if unread > 0 {
        // Steps since the last read (a budget met by the seeds alone, or the last pick's none).
        let now = ex.read_u32(&count, 1).await?[0];
        reads += now.wrapping_sub(last) as u64;
    }
    Ok((reads, (rows.len() * n) as u64))
}

/// [`coreset_scan`] on a pool already uploaded (either store).
pub async fn kcenter_scan(pool: &Pool<'_>, seeds: &[usize], budget: usize, sel: &mut Selection) -> Result<()> {
    let (be, n) = (pool.be, pool.x.n);
    let mind = be.storage("coreset", n)?;
    let (ov, oi) = (be.storage("coreset", 1)?, be.storage("coreset", 1)?);
    let mut ex = be.exec();
    for (s, &c) in seeds.iter().enumerate() {
        pool.min_dist_update(&mut ex, &mind, c, s == 0).await?;
    }
    while sel.picks.len() < budget {
        ex.argmax_rows(&mind, &ov, &oi, 1, n).await?;
        let vi = ex.read_many_f32(&[(&ov, 1), (&oi, 1)]).await?;
        let (v, i) = (vi[0][0], vi[1][0].to_bits() as usize);
        if i >= n {
            break;
        }
        sel.picks.push(i);
        sel.scores.push((v.max(0.0) as f64).sqrt());
        pool.min_dist_update(&mut ex, &mind, i, false).await?;
    }
    Ok(())
}

/// The plain f64 reference of k-center greedy (norm-expansion distances).
fn coreset_plain(x: Matrix, seeds: &[usize], budget: usize, sel: &mut Selection) {
    let n2 = norms2(x);
    let mut mind = vec![f64::INFINITY; x.n];
    for &c in seeds {
        for (i, m) in mind.iter_mut().enumerate() {
            *m = m.min(dist(x, &n2, i, c));
        }
    }
    while sel.picks.len() < budget {
        let Some((j, v)) = argmax(mind.iter().copied()) else { break };
        sel.picks.push(j);
        sel.scores.push(v);
        for (i, m) in mind.iter_mut().enumerate() {
            *m = m.min(dist(x, &n2, i, j));
        }
    }
}
