//! `stratified`: random picks stratified over the pool's coarse modes — the hedge that does not bet on one
//! strategy's objective. Random picking is the baseline no strategy beat at every budget on every dataset
//! (docs/results/evidence.md); its failure mode at small budgets is chance: a draw that misses or over-takes a
//! mode of the pool. Stratifying removes that: the pool is cut into c = ⌈√B⌉ coarse k-means clusters, every
//! cluster gets its proportional share of the budget (largest remainder, exact integer arithmetic), and the
//! picks inside a cluster are uniformly random. In expectation each image is picked with the same probability as
//! under Random; the picks' spread over the modes is Random's expected spread, without its variance.

use super::strategies::{cluster, device, empty, members};
use super::{SelectInput, Selection};
use crate::rng::Rng;
use crate::Result;

/// The stratified random picks. Labelled rows are never picked and do not count in the shares (the shares
/// follow the unlabelled pool). Pick order interleaves the clusters (a pick's key is (j + ½) / share within its
/// cluster), so every prefix of the list is stratified too; a pick's score is its cluster's share of the pool.
pub async fn stratified(input: &SelectInput<'_>) -> Result<Selection> {
    let n = input.x.n;
    let dev = device(input, input.x)?;
    let c = ((input.budget as f64).sqrt().ceil() as usize).clamp(1, n.max(1));
    let coarse = cluster(input, dev.as_ref(), c, 0x57a7).await?;
    let labeled: std::collections::HashSet<usize> = input.labeled.iter().copied().collect();
    let groups: Vec<Vec<usize>> = members(&coarse.labels, coarse.k)
        .into_iter()
        .map(|g| g.into_iter().filter(|i| !labeled.contains(i)).collect::<Vec<_>>())
        .filter(|g| !g.is_empty())
        .collect();
    let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
    let total: usize = sizes.iter().sum();
    let shares = proportional_shares(&sizes, input.budget);
    // One seeded random order of the whole pool; each cluster takes its first members in it. (Shuffling each
    // cluster instead would make every pick depend on the exact membership: one row flipping cluster between
    // backends' clusterings would change all of them.)
    let mut order: Vec<usize> = (0..n).collect();
    Rng::new(input.seed ^ 0x57a8).shuffle(&mut order);
    let mut rank = vec![0usize; n];
    for (t, &i) in order.iter().enumerate() {
        rank[i] = t;
    }
    let mut keyed: Vec<(f64, usize, usize)> = Vec::with_capacity(input.budget);
    for (gi, (g, &share)) in groups.iter().zip(&shares).enumerate() {
        let mut rows = g.clone();
        rows.sort_by_key(|&i| rank[i]);
        for (j, &r) in rows.iter().take(share).enumerate() {
            keyed.push(((j as f64 + 0.5) / share as f64, gi, r));
        }
    }
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut sel = empty();
    for (_, gi, r) in keyed {
        sel.picks.push(r);
        sel.scores.push(sizes[gi] as f64 / total.max(1) as f64);
    }
    Ok(sel)
}

/// `budget` shared in proportion to `sizes` by the largest-remainder method, in integers: each group gets
/// ⌊B·sᵢ/S⌋, and the B − Σ⌊·⌋ left go one each to the largest remainders (B·sᵢ mod S; ties: the earlier
/// group). A share never exceeds its group (B ≤ S, and a group at its size has remainder 0).
pub(crate) fn proportional_shares(sizes: &[usize], budget: usize) -> Vec<usize> {
    let total: usize = sizes.iter().sum();
    let budget = budget.min(total);
    if total == 0 {
        return vec![0; sizes.len()];
    }
    let quota = |s: usize| (budget as u128 * s as u128 / total as u128) as usize;
    let rem = |s: usize| budget as u128 * s as u128 % total as u128;
    let mut shares: Vec<usize> = sizes.iter().map(|&s| quota(s)).collect();
    let left = budget - shares.iter().sum::<usize>();
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by(|&a, &b| rem(sizes[b]).cmp(&rem(sizes[a])).then(a.cmp(&b)));
    for &g in order.iter().take(left) {
        shares[g] += 1;
    }
    shares
}

#[cfg(test)]
mod tests {
    use super::proportional_shares;
    use crate::rng::Rng;
    use crate::select::{select, Matrix, SelectInput};

    #[test]
    fn stratified_picks_take_each_mode_in_proportion_whatever_the_seed() {
        // Blobs of 300 and 100 points: a quarter of the pool in the small one.
        let mut rng = Rng::new(3);
        let data: Vec<f32> =
            (0..400).flat_map(|i| [if i < 300 { 0.0 } else { 40.0 } + rng.normal(), rng.normal()]).collect();
        let x = Matrix::new(&data, 400, 2).unwrap();
        let labeled = [300usize, 301, 5];
        let (mut strat, mut rand) = (Vec::new(), Vec::new());
        for seed in 0..20 {
            let input = SelectInput { x, budget: 16, seed, labeled: &labeled, scans: None, weights: None };
            let s = pollster::block_on(select("stratified", &input)).unwrap();
            let mut uniq = s.picks.clone();
            uniq.sort_unstable();
            uniq.dedup();
            assert_eq!(uniq.len(), 16);
            assert!(s.picks.iter().all(|p| !labeled.contains(p)));
            strat.push(s.picks.iter().filter(|&&p| p >= 300).count());
            let r = pollster::block_on(select("random", &input)).unwrap();
            rand.push(r.picks.iter().filter(|&&p| p >= 300).count());
        }
        // 16 × 98/397 = 3.9: every seed takes 4 (± 1 for the rounding inside the coarse modes); Random varies.
        assert!(strat.iter().all(|&k| (3..=5).contains(&k)), "{strat:?}");
        assert!(rand.iter().any(|&k| !(3..=5).contains(&k)), "{rand:?}");
        // A pick's score is its coarse mode's share of the pool.
        let input = SelectInput { x, budget: 16, seed: 0, labeled: &[], scans: None, weights: None };
        let s = pollster::block_on(select("stratified", &input)).unwrap();
        assert_eq!(s.scores.len(), 16);
        assert!(s.scores.iter().all(|&v| v > 0.0 && v <= 1.0));
    }

    #[test]
    fn proportional_shares_follow_the_sizes_exactly() {
        assert_eq!(proportional_shares(&[50, 30, 20], 10), vec![5, 3, 2]);
        // 27 over 73 / 27 %: 19.71 and 7.29 → 20 and 7.
        assert_eq!(proportional_shares(&[73, 27], 27), vec![20, 7]);
        // Remainders tie: the earlier group first.
        assert_eq!(proportional_shares(&[1, 1, 1], 2), vec![1, 1, 0]);
        assert_eq!(proportional_shares(&[3, 0, 5], 8), vec![3, 0, 5]);
        assert_eq!(proportional_shares(&[3, 5], 100), vec![3, 5]);
        for (sizes, b) in [(vec![7usize, 1, 1, 400, 13], 37usize), (vec![2, 2, 2, 2, 2, 2, 2], 5)] {
            let s = proportional_shares(&sizes, b);
            assert_eq!(s.iter().sum::<usize>(), b);
            assert!(s.iter().zip(&sizes).all(|(a, z)| a <= z));
        }
    }
}
