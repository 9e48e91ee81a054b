//! MedMNIST-style `.npz` archives: `{train,val,test}_images` (N, H, W[, C]) or 3-D (N, D, H, W) uint8 and
//! `{split}_labels` (N,), (N, 1) or (N, K). Shapes are read from the `.npy` headers without loading the data;
//! arrays are read with `ndarray-npy`.

use std::io::Read;
use std::path::Path;

use ndarray::{ArrayD, IxDyn, OwnedRepr};
use ndarray_npy::NpzReader;

use super::check_size;
use crate::{Error, Result};

/// One array in the archive: entry name (without `.npy`), numpy dtype descriptor and shape.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyEntry {
    pub name: String,
    pub descr: String,
    pub shape: Vec<usize>,
}

/// List the arrays of an archive from their headers.
pub fn list(path: &Path) -> Result<Vec<NpyEntry>> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    if f.metadata().map(|m| m.len()).unwrap_or(0) == 0 {
        return Err(Error::decode(path, "empty file (0 bytes)"));
    }
    let mut zip =
        zip::ZipArchive::new(f).map_err(|e| Error::decode(path, format!("not a readable .npz (zip) archive: {e}")))?;
    let mut out = Vec::new();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| Error::decode(path, format!("corrupt .npz entry {i}: {e}")))?;
        let name = entry.name().trim_end_matches(".npy").to_string();
        let mut head = vec![0u8; 10];
        entry.read_exact(&mut head).map_err(|e| Error::decode(path, format!("{name}: truncated .npy header: {e}")))?;
        if &head[..6] != b"\x93NUMPY" {
            return Err(Error::decode(path, format!("{name}: not a .npy array")));
        }
        let (len, extra) = match head[6] {
            1 => (u16::from_le_bytes([head[8], head[9]]) as usize, 0),
            2 | 3 => {
                let mut more = [0u8; 2];
                entry.read_exact(&mut more).map_err(|e| Error::decode(path, format!("{name}: {e}")))?;
                (u32::from_le_bytes([head[8], head[9], more[0], more[1]]) as usize, 2)
            }
            v => return Err(Error::decode(path, format!("{name}: unknown .npy version {v}"))),
        };
        let _ = extra;
        if len > 1 << 20 {
            return Err(Error::decode(path, format!("{name}: .npy header of {len} bytes")));
        }
        let mut dict = vec![0u8; len];
        entry.read_exact(&mut dict).map_err(|e| Error::decode(path, format!("{name}: truncated .npy header: {e}")))?;
        let dict = String::from_utf8_lossy(&dict).to_string();
        let descr = dict_value(&dict, "descr").unwrap_or_default().trim_matches(|c| c == '\'' || c == '"').to_string();
        if dict_value(&dict, "fortran_order").is_some_and(|v| v.starts_with("True")) {
            return Err(Error::unsupported(path, format!("{name}: Fortran-ordered array")));
        }
        let shape_s = dict_value(&dict, "shape")
            .ok_or_else(|| Error::decode(path, format!("{name}: .npy header without a shape")))?;
        let shape: Vec<usize> = shape_s
            .trim_matches(|c| c == '(' || c == ')')
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<usize>().map_err(|_| Error::decode(path, format!("{name}: bad shape {shape_s}"))))
            .collect::<Result<_>>()?;
        out.push(NpyEntry { name, descr, shape });
    }
    Ok(out)
}

/// The value of `key` in a numpy header dict literal (`{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }`).
fn dict_value<'a>(dict: &'a str, key: &str) -> Option<&'a str> {
    let start = dict.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = dict[start..].trim_start().strip_prefix(':')?.trim_start();
    let end = if rest.starts_with('(') { rest.find(')')? + 1 } else { rest.find(',').unwrap_or(rest.len()) };
    Some(rest[..end].trim())
}

fn open_reader(path: &Path) -> Result<NpzReader<std::fs::File>> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    NpzReader::new(f).map_err(|e| Error::decode(path, format!("not a readable .npz archive: {e}")))
}

/// Read a uint8 array (images), refusing more than `max_values` elements.
pub fn read_u8(path: &Path, name: &str, max_values: u64) -> Result<ArrayD<u8>> {
    if let Some(e) = list(path)?.into_iter().find(|e| e.name == name) {
        let dims: Vec<u64> = e.shape.iter().map(|&d| d as u64).collect();
        check_size(path, "array", &dims, max_values)?;
    }
    let mut r = open_reader(path)?;
    let key = format!("{name}.npy");
    r.by_name::<OwnedRepr<u8>, IxDyn>(&key)
        .or_else(|_| r.by_name::<OwnedRepr<u8>, IxDyn>(name))
        .map_err(|e| Error::decode(path, format!("array '{name}': {e}")))
}

/// Read an integer label array of any integer dtype as i64, flattened per sample: (N, K) with K = 1 for (N,).
pub fn read_labels(path: &Path, name: &str) -> Result<(usize, usize, Vec<i64>)> {
    let mut r = open_reader(path)?;
    let key = format!("{name}.npy");
    macro_rules! try_ty {
        ($t:ty) => {
            if let Ok(a) = r.by_name::<OwnedRepr<$t>, IxDyn>(&key) {
                let n = a.shape().first().copied().unwrap_or(0);
                let k = if n == 0 { 1 } else { a.len() / n };
                return Ok((n, k, a.iter().map(|&v| v as i64).collect()));
            }
        };
    }
    try_ty!(u8);
    try_ty!(i64);
    try_ty!(i32);
    try_ty!(u16);
    try_ty!(i16);
    try_ty!(u32);
    try_ty!(i8);
    try_ty!(u64);
    Err(Error::decode(path, format!("array '{name}' is missing or not an integer label array")))
}
