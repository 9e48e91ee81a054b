//! One async function per WGSL kernel (same name as the shader file and its CPU twin in `crate::cpu`). Each
//! checks the shapes against the buffers, records one dispatch into the caller's encoder and returns; nothing
//! is submitted here, so a caller can chain many ops into one submission. Split by family; every op is
//! re-exported here, so `ops::matmul` is the one path to it.

use wgpu::Buffer;

use crate::{Error, Result};

mod activation;
mod attention;
mod conv;
mod gemm;
mod loss;
mod norm;
mod optim;
mod pairwise;
mod select;

pub use activation::*;
pub use attention::*;
pub use conv::*;
pub use gemm::*;
pub use loss::*;
pub use norm::*;
pub use optim::*;
pub use pairwise::*;
pub use select::*;

pub(super) fn check_len(op: &'static str, what: &str, buf: &Buffer, elems: usize) -> Result<()> {
    let need = (elems as u64) * 4;
    if buf.size() < need {
        return Err(Error::shape(op, format!("buffer '{what}' holds {} bytes, the shape needs {need}", buf.size())));
    }
    Ok(())
}

pub(super) fn u32_of(op: &'static str, what: &str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::shape(op, format!("{what} = {v} does not fit in 32 bits")))
}
