//! Foundation-model encoders, one file per model. Layers are structs whose fields mirror the checkpoint keys;
//! weights are prepared on the CPU at load (BatchNorm folded into convolutions) and uploaded once.

pub mod dinov2;
/// The backend seam lives in the kernels crate; models are written against it.
pub use medpick_kernels::exec;
pub mod sam_decoder;
pub mod tinyvit;

use crate::data::io::weights::Weights;
use crate::{Error, Result};

/// How an encoder stores its matmul weights on the device. Activations, every other parameter and all
/// accumulation stay f32 in both; `F16` halves the memory and bandwidth of the weights and needs the
/// `shader-f16` device feature. Its deviation from f32 is measured per model (tests/tests/models.rs,
/// docs/encoders.md), not assumed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    F16,
}

impl Precision {
    pub fn half(self) -> bool {
        self == Precision::F16
    }

    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "f32" => Ok(Precision::F32),
            "f16" => Ok(Precision::F16),
            _ => Err(Error::Invalid(format!("precision '{s}': expected f32 or f16"))),
        }
    }
}

/// A Linear layer: `weight` [out, in] (PyTorch layout), `bias` [out]. `P` is where the values live: host
/// vectors as loaded ([`Vec<f32>`]), or [`exec::Tensor`]s on an `Exec` once a model is made ready to run.
#[derive(Clone, Debug)]
pub struct Linear<P = Vec<f32>> {
    pub weight: P,
    pub bias: Option<P>,
    pub out_dim: usize,
    pub in_dim: usize,
}

impl Linear {
    pub fn load(w: &Weights, prefix: &str, out_dim: usize, in_dim: usize, bias: bool) -> Result<Self> {
        let weight = w.f32(&format!("{prefix}.weight"), None)?.to_vec();
        if weight.len() != out_dim * in_dim {
            return Err(shape_err(w, &format!("{prefix}.weight"), weight.len(), out_dim * in_dim));
        }
        let bias = if bias { Some(w.f32(&format!("{prefix}.bias"), Some(&[out_dim]))?.to_vec()) } else { None };
        Ok(Linear { weight, bias, out_dim, in_dim })
    }
}

/// LayerNorm parameters over the channel dim (`P` as for [`Linear`]).
#[derive(Clone, Debug)]
pub struct LayerNorm<P = Vec<f32>> {
    pub weight: P,
    pub bias: P,
    pub eps: f32,
}

impl LayerNorm {
    pub fn load(w: &Weights, prefix: &str, dim: usize, eps: f32) -> Result<Self> {
        Ok(LayerNorm {
            weight: w.f32(&format!("{prefix}.weight"), Some(&[dim]))?.to_vec(),
            bias: w.f32(&format!("{prefix}.bias"), Some(&[dim]))?.to_vec(),
            eps,
        })
    }
}

pub(crate) fn shape_err(w: &Weights, name: &str, got: usize, want: usize) -> Error {
    Error::Invalid(format!("{}: tensor '{name}' has {got} values, expected {want}", w.source))
}
