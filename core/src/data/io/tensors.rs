//! A checkpoint in memory: named tensors as f32 or i64 ([`Weights`]), whatever file they came from (safetensors
//! or the restricted `.pth` reader), and the f16 → f32 conversion both readers use.

use std::collections::BTreeMap;

use crate::{Error, Result};

#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: TensorData,
}

impl Tensor {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Named tensors, sorted by name.
#[derive(Clone, Debug, Default)]
pub struct Weights {
    pub tensors: BTreeMap<String, Tensor>,
    /// Where they came from (for messages).
    pub source: String,
}

impl Weights {
    pub fn from_pairs(pairs: Vec<(String, Tensor)>) -> Self {
        Weights { tensors: pairs.into_iter().collect(), source: String::new() }
    }

    /// A float tensor by name, with its shape checked when `shape` is given.
    pub fn f32(&self, name: &str, shape: Option<&[usize]>) -> Result<&[f32]> {
        let t = self.tensors.get(name).ok_or_else(|| {
            Error::Invalid(format!("{}: tensor '{name}' is missing (is this the right model?)", self.source))
        })?;
        if let Some(s) = shape {
            if t.shape != s {
                return Err(Error::Invalid(format!(
                    "{}: tensor '{name}' has shape {:?}, expected {s:?}",
                    self.source, t.shape
                )));
            }
        }
        match &t.data {
            TensorData::F32(v) => Ok(v),
            TensorData::I64(_) => Err(Error::Invalid(format!("{}: tensor '{name}' is an integer tensor", self.source))),
        }
    }
}

/// Half-precision to f32, subnormals included.
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0f32 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let frac = (h & 0x3ff) as f32;
    match exp {
        0 => sign * frac * 2f32.powi(-24),
        31 => {
            if frac == 0.0 {
                sign * f32::INFINITY
            } else {
                f32::NAN
            }
        }
        e => sign * (1.0 + frac / 1024.0) * 2f32.powi(e - 15),
    }
}
