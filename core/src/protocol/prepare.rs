//! A labelled dataset made ready for the protocol: its train / test (/ validation) split (the dataset's own, or
//! a seeded 70/10/20 one), subsampled, embedded (cached), with class indices.

use std::path::Path;

use super::results::subset;
use crate::embed::EmbedConfig;
use crate::Result;

/// A labelled dataset's train and test features (and validation features when asked for).
pub struct Prepared {
    pub classes: Vec<String>,
    pub train: crate::embed::features::Features,
    pub test: crate::embed::features::Features,
    pub ytr: Vec<usize>,
    pub yte: Vec<usize>,
    pub val: Option<(crate::embed::features::Features, Vec<usize>)>,
}

/// Ingest `dataset`, take its train/test split (the file's own, or a seeded 70/10/20 one), subsample, embed.
pub async fn prepare(
    gpu: Option<&crate::gpu::GpuContext>,
    dataset: &Path,
    model: &EmbedConfig,
    max_train: usize,
    max_test: usize,
    max_budget: usize,
    with_val: bool,
) -> Result<Prepared> {
    // Samples and splits.
    let crate::data::dataset::Dataset { root, samples, split, .. } = crate::data::dataset::load(dataset, None)?;
    let mut classes: Vec<String> = samples.iter().filter_map(|s| s.label.clone()).collect();
    classes.sort();
    classes.dedup();
    if classes.len() < 2 {
        bail!("{}: classification needs labels of at least 2 classes, found {:?}", dataset.display(), classes);
    }
    let (train_s, test_s, val_s) =
        split_samples(dataset, &samples, split, &|s| s.label.is_some(), max_train, max_test, max_budget)?;
    note!("protocol: {} training, {} test samples, classes {:?}", train_s.len(), test_s.len(), classes);
    if with_val && val_s.is_empty() {
        let why = format!("needs a validation split with labels; {} has none", dataset.display());
        return Err(crate::Error::setting("val-every", "(on)", why));
    }

    let ftr = crate::embed::embed_features(gpu, model, &root, &train_s).await?;
    let fte = crate::embed::embed_features(gpu, model, &root, &test_s).await?;
    let fva = if with_val { Some(crate::embed::embed_features(gpu, model, &root, &val_s).await?) } else { None };
    let label_of: std::collections::HashMap<&str, usize> = train_s
        .iter()
        .chain(&test_s)
        .chain(&val_s)
        .map(|s| (s.id.as_str(), classes.iter().position(|c| Some(c) == s.label.as_ref()).unwrap_or(0)))
        .collect();
    let labels =
        |f: &crate::embed::features::Features| -> Vec<usize> { f.ids.iter().map(|id| label_of[id.as_str()]).collect() };
    let (ytr, yte) = (labels(&ftr), labels(&fte));
    let val = fva.map(|f| {
        let y = labels(&f);
        (f, y)
    });
    Ok(Prepared { classes, train: ftr, test: fte, ytr, yte, val })
}

/// The training pool, test split and validation split of `samples` that pass `keep`: the dataset's own split
/// (the samples' or the split file's), or a seeded 70/10/20 one; train and test subsampled to `max_train` /
/// `max_test` (0 = all), validation whole.
pub fn split_samples(
    dataset: &Path,
    samples: &[crate::manifest::Sample],
    split: Option<std::collections::HashMap<String, crate::manifest::Split>>,
    keep: &dyn Fn(&crate::manifest::Sample) -> bool,
    max_train: usize,
    max_test: usize,
    max_budget: usize,
) -> Result<(Vec<crate::manifest::Sample>, Vec<crate::manifest::Sample>, Vec<crate::manifest::Sample>)> {
    use crate::manifest::Split;
    let split_of = |s: &crate::manifest::Sample| -> Option<Split> {
        s.given_split.or_else(|| split.as_ref().and_then(|m| m.get(&s.id).copied()))
    };
    let computed;
    let split_fn: Box<dyn Fn(&crate::manifest::Sample) -> Option<Split>> =
        if samples.iter().any(|s| split_of(s).is_some()) {
            Box::new(split_of)
        } else {
            computed = crate::manifest::make_split(samples, 0, 0.1, 0.2)?
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>();
            note!("{}: no split given; using a seeded 70/10/20 split (seed 0)", dataset.display());
            Box::new(move |s| computed.get(&s.id).copied())
        };
    let pick = |which: Split, max: usize, seed: u64| -> Vec<crate::manifest::Sample> {
        let idx: Vec<usize> =
            (0..samples.len()).filter(|&i| split_fn(&samples[i]) == Some(which) && keep(&samples[i])).collect();
        subset(idx, max, seed).into_iter().map(|i| samples[i].clone()).collect()
    };
    let train_s = pick(Split::Train, max_train, 1);
    let test_s = pick(Split::Test, max_test, 2);
    if train_s.is_empty() || test_s.is_empty() {
        bail!(
            "{}: {} training and {} test samples with what the task needs (labels for cls, masks for seg)",
            dataset.display(),
            train_s.len(),
            test_s.len()
        );
    }
    if max_budget > train_s.len() {
        return Err(crate::Error::setting(
            "budgets",
            max_budget,
            format!("exceeds the training pool of {}", train_s.len()),
        ));
    }
    let val_s = pick(Split::Val, 0, 3);
    Ok((train_s, test_s, val_s))
}
