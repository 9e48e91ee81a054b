//! The feature cache's entry format: an entry's values, then a trailer that says they are whole and unchanged.

use std::path::Path;

/// The trailer that closes every feature-cache entry: this magic, the value count (u64 LE) and the first 16 bytes
/// of the sha256 of the values' bytes. An entry whose trailer, length, checksum or values do not hold is damaged
/// (cut short, overwritten, from an older format) and is never used.
const CACHE_MAGIC: &[u8; 8] = b"MPFEAT01";
const CACHE_TRAILER: usize = 8 + 8 + 16;

/// A feature-cache entry as written: the values, then the trailer (magic, count, checksum).
pub fn cache_entry_bytes(v: &[f32]) -> Vec<u8> {
    let body: &[u8] = bytemuck::cast_slice(v);
    let mut out = Vec::with_capacity(body.len() + CACHE_TRAILER);
    out.extend_from_slice(body);
    out.extend_from_slice(CACHE_MAGIC);
    out.extend_from_slice(&(v.len() as u64).to_le_bytes());
    out.extend_from_slice(&sha256_bytes(body)[..16]);
    out
}

/// A cache entry's values: Ok(None) when there is none, Err(why) when it is damaged.
pub(super) fn read_cache_entry(path: &Path) -> std::result::Result<Option<Vec<f32>>, String> {
    match std::fs::read(path) {
        Ok(b) => parse_cache_entry(&b).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// A cache entry's values from its bytes, or why it cannot be used (cut short, overwritten, damaged, non-finite).
pub fn parse_cache_entry(b: &[u8]) -> std::result::Result<Vec<f32>, String> {
    if b.len() < CACHE_TRAILER + 4 || !(b.len() - CACHE_TRAILER).is_multiple_of(4) {
        return Err(format!("{} bytes is not a whole entry", b.len()));
    }
    let (body, trailer) = b.split_at(b.len() - CACHE_TRAILER);
    if &trailer[..8] != CACHE_MAGIC {
        return Err("no medpick trailer: cut short, overwritten, or written by a medpick before 2026-12-06".into());
    }
    let n = u64::from_le_bytes(trailer[8..16].try_into().expect("8 bytes"));
    if n != (body.len() / 4) as u64 {
        return Err(format!("the trailer says {n} values, the entry holds {}", body.len() / 4));
    }
    if trailer[16..] != sha256_bytes(body)[..16] {
        return Err("checksum mismatch".into());
    }
    let v: Vec<f32> = bytemuck::pod_collect_to_vec(body);
    if let Some(at) = v.iter().position(|x| !x.is_finite()) {
        return Err(format!("value {at} is {}", v[at]));
    }
    Ok(v)
}

fn sha256_bytes(b: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(b).into()
}
