//! The label-free check: what a user can learn about a strategy's picks on their own pool before labelling
//! anything. Three measures, each beside what Random gives on the same pool:
//! - **coverage**: the share of the pool's B k-means clusters (k = budget) that hold at least one pick;
//!   Random's expectation is exact (hypergeometric);
//! - **skew**: the total-variation distance between the picks' spread over the pool's ⌈√B⌉ coarse k-means modes
//!   ("classes as clusters") and the pool's own spread, ½ Σ |picked share − pool share|; Random's mean and 95th
//!   percentile come from 2,000 seeded random draws. A skew above Random's 95th percentile means the strategy
//!   over- or under-takes whole modes of the pool — the way typicality-driven picks starved a minority class
//!   and diversity-driven picks over-took small polyps in docs/results/evidence.md;
//! - **stability**: the mean Jaccard overlap of the pick sets over seeds (1: the same picks whatever the seed);
//!   Random's from the same draws.
//!
//! The clusterings use their own fixed seeds, never a strategy's, and the plain k-means (or the scans' k-means
//! when a backend is given and the pool is large). docs/results/evidence.md reports whether these measures
//! predicted which strategies beat Random on the measured datasets.

use serde::Serialize;

use super::scan::Pool;
use super::{Matrix, SelectInput, SCAN_MIN_ROWS};
use crate::exec::Backend;
use crate::rng::Rng;
use crate::Result;

/// How many random draws give Random's skew and stability.
const DRAWS: usize = 2000;

/// The pool's reference clusterings for one budget.
pub struct Reference {
    fine: Vec<usize>,
    k_fine: usize,
    coarse: Vec<usize>,
    k_coarse: usize,
    /// Each coarse mode's share of the pool.
    pool_share: Vec<f64>,
    random_coverage: f64,
    random_skew: (f64, f64),
    random_stability: f64,
    budget: usize,
}

/// One strategy's label-free check.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub budget: usize,
    pub seeds: usize,
    /// Mean over seeds of the share of the B fine clusters hit; Random's expectation beside it.
    pub coverage: f64,
    pub random_coverage: f64,
    /// Mean over seeds of the coarse-mode skew; Random's mean and 95th percentile beside it.
    pub skew: f64,
    pub random_skew: f64,
    pub random_skew_p95: f64,
    /// Mean pairwise Jaccard of the seeds' pick sets (None with one seed); Random's beside it.
    pub stability: Option<f64>,
    pub random_stability: f64,
    pub coarse_modes: usize,
}

impl Reference {
    /// Cluster the pool for `budget` (k = budget fine clusters, ⌈√budget⌉ coarse modes) and measure Random.
    pub async fn new(x: Matrix<'_>, budget: usize, scans: Option<Backend<'_>>) -> Result<Reference> {
        let n = x.n;
        if budget == 0 || budget > n {
            return Err(crate::Error::Invalid(format!("the check needs a budget in 1..={n}, not {budget}")));
        }
        let pool = scans.filter(|_| n >= SCAN_MIN_ROWS).map(|be| Pool::upload(be, x)).transpose()?;
        let fine = super::strategies::kmeans_on(pool.as_ref(), x, budget, 0xc4_ecf1, 300).await?;
        let c = ((budget as f64).sqrt().ceil() as usize).clamp(1, n);
        let coarse = super::strategies::kmeans_on(pool.as_ref(), x, c, 0xc4_ecc0, 300).await?;
        let mut sizes = vec![0usize; coarse.k];
        for &l in &coarse.labels {
            sizes[l] += 1;
        }
        let pool_share = sizes.iter().map(|&s| s as f64 / n as f64).collect();
        let mut r = Reference {
            k_fine: fine.k,
            fine: fine.labels,
            k_coarse: coarse.k,
            coarse: coarse.labels,
            pool_share,
            random_coverage: 0.0,
            random_skew: (0.0, 0.0),
            random_stability: 0.0,
            budget,
        };
        r.random_coverage = r.expected_random_coverage();
        // Random draws: a partial Fisher–Yates of one index array gives a uniform subset whatever its order.
        let mut rng = Rng::new(0xc4_ecd7);
        let mut idx: Vec<usize> = (0..n).collect();
        let mut draw = |rng: &mut Rng| -> Vec<usize> {
            for t in 0..budget {
                let j = t + rng.below((n - t) as u32) as usize;
                idx.swap(t, j);
            }
            idx[..budget].to_vec()
        };
        let mut skews = Vec::with_capacity(DRAWS);
        let mut jac = 0.0;
        for _ in 0..DRAWS / 2 {
            let (a, b) = (draw(&mut rng), draw(&mut rng));
            skews.push(r.skew(&a));
            skews.push(r.skew(&b));
            jac += jaccard(&a, &b);
        }
        skews.sort_by(f64::total_cmp);
        let mean = skews.iter().sum::<f64>() / skews.len() as f64;
        r.random_skew = (mean, skews[(0.95 * (skews.len() - 1) as f64).round() as usize]);
        r.random_stability = jac / (DRAWS / 2) as f64;
        Ok(r)
    }

    /// Share of the fine clusters holding at least one of `picks`.
    pub fn coverage(&self, picks: &[usize]) -> f64 {
        let mut hit = vec![false; self.k_fine];
        for &p in picks {
            hit[self.fine[p]] = true;
        }
        hit.iter().filter(|&&h| h).count() as f64 / self.k_fine as f64
    }

    /// ½ Σ |picked share − pool share| over the coarse modes.
    pub fn skew(&self, picks: &[usize]) -> f64 {
        let mut got = vec![0usize; self.k_coarse];
        for &p in picks {
            got[self.coarse[p]] += 1;
        }
        let b = picks.len().max(1) as f64;
        0.5 * self.pool_share.iter().zip(&got).map(|(&s, &g)| (g as f64 / b - s).abs()).sum::<f64>()
    }

    /// Random's expected coverage: Σⱼ (1 − P(no pick in cluster j)) / k, P = Π_t (n − sⱼ − t) / (n − t).
    fn expected_random_coverage(&self) -> f64 {
        let n = self.fine.len();
        let mut sizes = vec![0usize; self.k_fine];
        for &l in &self.fine {
            sizes[l] += 1;
        }
        let miss = |s: usize| -> f64 {
            (0..self.budget).map(|t| (n as f64 - s as f64 - t as f64).max(0.0) / (n - t) as f64).product::<f64>()
        };
        sizes.iter().map(|&s| 1.0 - miss(s)).sum::<f64>() / self.k_fine as f64
    }

    /// The check of one strategy from its picks under each seed (every list holds `budget` rows of the pool).
    pub fn check(&self, picks_by_seed: &[Vec<usize>]) -> Result<Check> {
        let n = self.fine.len();
        if picks_by_seed.is_empty() {
            return Err(crate::Error::Invalid("the check needs the picks of at least one seed".into()));
        }
        if let Some(&bad) = picks_by_seed.iter().flatten().find(|&&p| p >= n) {
            return Err(crate::Error::Invalid(format!("pick row {bad} is outside the pool of {n}")));
        }
        let s = picks_by_seed.len() as f64;
        let mut pairs = (0.0, 0usize);
        for (i, a) in picks_by_seed.iter().enumerate() {
            for b in &picks_by_seed[i + 1..] {
                pairs.0 += jaccard(a, b);
                pairs.1 += 1;
            }
        }
        Ok(Check {
            budget: self.budget,
            seeds: picks_by_seed.len(),
            coverage: picks_by_seed.iter().map(|p| self.coverage(p)).sum::<f64>() / s,
            random_coverage: self.random_coverage,
            skew: picks_by_seed.iter().map(|p| self.skew(p)).sum::<f64>() / s,
            random_skew: self.random_skew.0,
            random_skew_p95: self.random_skew.1,
            stability: (pairs.1 > 0).then(|| pairs.0 / pairs.1 as f64),
            random_stability: self.random_stability,
            coarse_modes: self.k_coarse,
        })
    }
}

impl Check {
    /// Whether the mean skew is above what 95 % of random draws give.
    pub fn skewed(&self) -> bool {
        self.skew > self.random_skew_p95
    }

    /// One line for users: the three measures beside Random's.
    pub fn line(&self) -> String {
        let stab = match self.stability {
            Some(j) => format!("pick overlap across {} seeds {j:.2} (Random {:.2})", self.seeds, self.random_stability),
            None => "stability not measured (one seed)".to_string(),
        };
        format!(
            "covers {:.0} % of {} k-means clusters (Random {:.0} %); skew over {} coarse modes {:.3} (Random {:.3}, \
             95 % of random draws ≤ {:.3}{}); {stab}",
            100.0 * self.coverage,
            self.budget,
            100.0 * self.random_coverage,
            self.coarse_modes,
            self.skew,
            self.random_skew,
            self.random_skew_p95,
            if self.skewed() { ": skewed" } else { "" }
        )
    }
}

/// The check of strategy `name` on `input`'s pool: its picks under `seeds` seeds (`input.seed`, `+ 1`, …; `first`,
/// when given, is its selection under `input.seed`, not run again).
pub async fn check_strategy(
    reference: &Reference,
    name: &str,
    input: &SelectInput<'_>,
    seeds: usize,
    first: Option<&super::Selection>,
) -> Result<Check> {
    let mut picks = Vec::with_capacity(seeds.max(1));
    for k in 0..seeds.max(1) as u64 {
        let seed = input.seed.wrapping_add(k);
        match first {
            Some(sel) if k == 0 => picks.push(sel.picks.clone()),
            _ => {
                let inp = SelectInput { seed, ..*input };
                picks.push(super::select(name, &inp).await?.picks);
            }
        }
    }
    reference.check(&picks)
}

fn jaccard(a: &[usize], b: &[usize]) -> f64 {
    let sa: std::collections::HashSet<usize> = a.iter().copied().collect();
    let sb: std::collections::HashSet<usize> = b.iter().copied().collect();
    let inter = sa.intersection(&sb).count() as f64;
    let union = (sa.len() + sb.len()) as f64 - inter;
    if union == 0.0 {
        1.0
    } else {
        inter / union
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two well-separated blobs of 300 and 100 points in 2-D.
    fn blobs() -> Vec<f32> {
        let mut rng = Rng::new(7);
        let mut v = Vec::new();
        for i in 0..400 {
            let c = if i < 300 { 0.0 } else { 50.0 };
            v.push(c + rng.normal());
            v.push(rng.normal());
        }
        v
    }

    #[test]
    fn the_check_tells_a_skewed_pick_from_a_random_one() {
        let data = blobs();
        let x = Matrix::new(&data, 400, 2).unwrap();
        let r = pollster::block_on(Reference::new(x, 16, None)).unwrap();
        // All 16 picks from the small blob: far more skewed than any random draw, and few fine clusters hit.
        let skewed: Vec<usize> = (300..316).collect();
        let c = r.check(&[skewed.clone(), skewed]).unwrap();
        assert!(c.skewed(), "{}", c.line());
        assert!(c.skew > 0.6, "{}", c.line());
        assert_eq!(c.stability, Some(1.0));
        assert!(c.coverage < c.random_coverage, "{}", c.line());
        // Proportional picks (12 + 4, spread over each blob): no more skewed than Random's mean.
        let spread: Vec<usize> = (0..12).map(|i| i * 25).chain((0..4).map(|i| 300 + i * 25)).collect();
        let c = r.check(&[spread]).unwrap();
        assert!(!c.skewed() && c.skew <= c.random_skew + 1e-9, "{}", c.line());
        assert_eq!(c.stability, None);
        // Random's references are what they say: expected coverage within (0, 1], Jaccard of two draws ≈ B/(2n−B).
        assert!(r.random_coverage > 0.0 && r.random_coverage <= 1.0);
        let jac = 16.0 / (2.0 * 400.0 - 16.0);
        assert!((r.random_stability - jac).abs() < 0.01, "{} vs {jac}", r.random_stability);
        assert!(r.check(&[vec![400]]).is_err());
        assert!(r.check(&[]).is_err());
    }
}
