//! The label-free check (`medpick select --check`) and the hedge (`stratified`) on a real pool: BreastMNIST's
//! training split as raw pixels (546 images, 27 % / 73 %).

use std::process::Command;

/// `select --check` prints, per strategy, coverage / skew / overlap beside Random's; usl-medcal's picks (a few
/// clusters' members, the same whatever the seed) are called skewed and fully stable, Random's and the stratified
/// hedge's are not skewed and overlap as little as two random draws.
#[test]
fn select_check_tells_a_skewed_strategy_from_random_and_the_hedge() {
    let Some(sh) = crate::common::shared() else { return };
    let dir = std::env::temp_dir().join(format!("medpick-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |strategy: &str| -> String {
        let o = Command::new(crate::cli::medpick())
            .arg("select")
            .arg(sh.join("data/medmnist/breastmnist.npz"))
            .args(["--model", "pixels", "--cache", "none", "--budget", "27", "--check", "--check-seeds", "4"])
            .args(["--strategy", strategy, "--out"])
            .arg(dir.join(format!("{strategy}.csv")))
            .output()
            .unwrap();
        let (so, se) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(o.status.success(), "{strategy}: {so}{se}");
        let mut lines = so.lines().skip_while(|l| !l.contains("label-free check:"));
        let line = lines.next().unwrap_or_else(|| panic!("{so}")).to_string();
        // The next line: what the measured classification benchmarks say about picks like these.
        let pointer = lines.next().unwrap_or_default();
        let want = if line.contains("skewed") { "called skewed were" } else { "called not skewed were" };
        assert!(pointer.contains("on classification benchmarks") && pointer.contains(want), "{so}");
        line
    };
    // "… pick overlap across 4 seeds 0.03 (Random 0.03)": the strategy's overlap and Random's.
    let overlap = |line: &str| -> (f64, f64) {
        let tail = line.split("seeds ").nth(1).unwrap();
        let own: f64 = tail.split_whitespace().next().unwrap().parse().unwrap();
        let rnd: f64 = tail.split("(Random ").nth(1).unwrap().trim_end_matches(')').parse().unwrap();
        (own, rnd)
    };
    let usl = run("usl-medcal");
    assert!(usl.contains("skewed") && usl.contains("of 27 k-means clusters"), "{usl}");
    assert_eq!(overlap(&usl).0, 1.0, "{usl}");
    for s in ["random", "stratified"] {
        let line = run(s);
        assert!(!line.contains("skewed"), "{line}");
        let (own, rnd) = overlap(&line);
        assert!(own < 0.15 && rnd > 0.0 && rnd < 0.1, "{line}");
    }
    let picks = std::fs::read_to_string(dir.join("stratified.csv")).unwrap();
    assert_eq!(picks.lines().count(), 28, "{picks}");
    let _ = std::fs::remove_dir_all(&dir);
}
