//! A restricted reader for PyTorch `.pth` checkpoints (the zip format of `torch.save`): a pickle (`data.pkl`)
//! describing (Ordered)dicts of tensors whose bytes live in `data/<key>` entries.
//!
//! The unpickler never executes code: it knows a fixed set of opcodes and resolves only these globals —
//! `collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`, `torch._utils._rebuild_parameter` and the
//! `torch.*Storage` types. Anything else (e.g. a `__reduce__` that names `os.system`) is rejected with an error
//! naming the global. Every storage reference, offset, size and stride is bounds-checked against the bytes
//! actually present before a tensor is materialised.

use std::collections::HashMap;
use std::io::{Cursor, Read};
use std::path::Path;

use super::tensors::{Tensor, TensorData, Weights};
use crate::{Error, Result};

#[derive(Clone, Debug)]
#[allow(dead_code)] // payloads of scalar values are kept for the Debug text of error messages
enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global(Global),
    Storage { dtype: StorageType, key: String, numel: u64 },
    Tensor(PendingTensor),
    Mark,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Global {
    OrderedDict,
    RebuildTensorV2,
    RebuildParameter,
    StorageType(StorageType),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum StorageType {
    F32,
    F64,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl StorageType {
    fn from_name(name: &str) -> Option<StorageType> {
        Some(match name {
            "FloatStorage" => StorageType::F32,
            "DoubleStorage" => StorageType::F64,
            "HalfStorage" => StorageType::F16,
            "BFloat16Storage" => StorageType::BF16,
            "LongStorage" => StorageType::I64,
            "IntStorage" => StorageType::I32,
            "ShortStorage" => StorageType::I16,
            "CharStorage" => StorageType::I8,
            "ByteStorage" => StorageType::U8,
            "BoolStorage" => StorageType::Bool,
            _ => return None,
        })
    }

    fn size(self) -> u64 {
        match self {
            StorageType::F64 | StorageType::I64 => 8,
            StorageType::F32 | StorageType::I32 => 4,
            StorageType::F16 | StorageType::BF16 | StorageType::I16 => 2,
            StorageType::I8 | StorageType::U8 | StorageType::Bool => 1,
        }
    }
}

#[derive(Clone, Debug)]
struct PendingTensor {
    dtype: StorageType,
    key: String,
    numel: u64,
    offset: u64,
    shape: Vec<u64>,
    stride: Vec<u64>,
}

struct Unpickler<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    memo: HashMap<u32, Value>,
    path: &'a Path,
}

impl<'a> Unpickler<'a> {
    fn err(&self, msg: impl std::fmt::Display) -> Error {
        Error::decode(self.path, format!("data.pkl at byte {}: {msg}", self.pos))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.pos + n > self.data.len() {
            return Err(self.err("truncated pickle"));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn pop(&mut self) -> Result<Value> {
        self.stack.pop().ok_or_else(|| self.err("stack underflow"))
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let idx =
            self.stack.iter().rposition(|v| matches!(v, Value::Mark)).ok_or_else(|| self.err("MARK not found"))?;
        let items = self.stack.split_off(idx + 1);
        self.stack.pop();
        Ok(items)
    }

    fn line(&mut self) -> Result<String> {
        let start = self.pos;
        while self.pos < self.data.len() && self.data[self.pos] != b'\n' {
            self.pos += 1;
        }
        if self.pos >= self.data.len() {
            return Err(self.err("truncated pickle (unterminated line)"));
        }
        let s = String::from_utf8_lossy(&self.data[start..self.pos]).into_owned();
        self.pos += 1;
        Ok(s)
    }

    fn global(&self, module: &str, name: &str) -> Result<Global> {
        match (module, name) {
            ("collections", "OrderedDict") => Ok(Global::OrderedDict),
            ("torch._utils", "_rebuild_tensor_v2") => Ok(Global::RebuildTensorV2),
            ("torch._utils", "_rebuild_parameter") => Ok(Global::RebuildParameter),
            ("torch", n) if StorageType::from_name(n).is_some() => {
                Ok(Global::StorageType(StorageType::from_name(n).unwrap_or(StorageType::F32)))
            }
            _ => Err(Error::Unsupported {
                path: self.path.display().to_string(),
                message: format!(
                    "the pickle asks for the global `{module}.{name}`; medpick only loads tensors in (Ordered)dicts \
                     and never runs code from a checkpoint (refused)"
                ),
            }),
        }
    }

    fn int_of(&self, v: &Value, what: &str) -> Result<u64> {
        match v {
            Value::Int(i) if *i >= 0 => Ok(*i as u64),
            other => Err(self.err(format!("{what}: expected a non-negative int, got {other:?}"))),
        }
    }

    fn ints_of(&self, v: &Value, what: &str) -> Result<Vec<u64>> {
        match v {
            Value::Tuple(items) | Value::List(items) => items.iter().map(|x| self.int_of(x, what)).collect(),
            other => Err(self.err(format!("{what}: expected a tuple of ints, got {other:?}"))),
        }
    }

    fn reduce(&mut self, f: Value, args: Value) -> Result<Value> {
        let Value::Global(g) = f else {
            return Err(self.err("REDUCE on a value that is not an allowed callable"));
        };
        let Value::Tuple(args) = args else {
            return Err(self.err("REDUCE arguments are not a tuple"));
        };
        match g {
            Global::OrderedDict => {
                if !args.is_empty() {
                    return Err(self.err("OrderedDict called with arguments"));
                }
                Ok(Value::Dict(Vec::new()))
            }
            Global::RebuildTensorV2 => {
                if args.len() < 4 {
                    return Err(self.err("_rebuild_tensor_v2 needs (storage, offset, size, stride, ...)"));
                }
                let Value::Storage { dtype, key, numel } = &args[0] else {
                    return Err(self.err("_rebuild_tensor_v2: first argument is not a storage"));
                };
                let offset = self.int_of(&args[1], "storage offset")?;
                let shape = self.ints_of(&args[2], "size")?;
                let stride = self.ints_of(&args[3], "stride")?;
                if shape.len() != stride.len() {
                    return Err(self.err(format!("size {shape:?} and stride {stride:?} differ in rank")));
                }
                Ok(Value::Tensor(PendingTensor {
                    dtype: *dtype,
                    key: key.clone(),
                    numel: *numel,
                    offset,
                    shape,
                    stride,
                }))
            }
            Global::RebuildParameter => match args.into_iter().next() {
                Some(t @ Value::Tensor(_)) => Ok(t),
                _ => Err(self.err("_rebuild_parameter without a tensor")),
            },
            Global::StorageType(_) => Err(self.err("storage types cannot be called")),
        }
    }

    fn run(&mut self) -> Result<Value> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    let proto = self.u8()?;
                    if proto > 5 {
                        return Err(self.err(format!("pickle protocol {proto}")));
                    }
                }
                0x95 => {
                    self.take(8)?; // FRAME: length of the next frame; the data is inline
                }
                b'.' => return self.pop(),
                b'(' => self.stack.push(Value::Mark),
                b')' => self.stack.push(Value::Tuple(vec![])),
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(items));
                }
                0x85 => {
                    let a = self.pop()?;
                    self.stack.push(Value::Tuple(vec![a]));
                }
                0x86 => {
                    let b = self.pop()?;
                    let a = self.pop()?;
                    self.stack.push(Value::Tuple(vec![a, b]));
                }
                0x87 => {
                    let c = self.pop()?;
                    let b = self.pop()?;
                    let a = self.pop()?;
                    self.stack.push(Value::Tuple(vec![a, b, c]));
                }
                b'}' => self.stack.push(Value::Dict(vec![])),
                b']' => self.stack.push(Value::List(vec![])),
                b'a' => {
                    let v = self.pop()?;
                    match self.stack.last_mut() {
                        Some(Value::List(l)) => l.push(v),
                        _ => return Err(self.err("APPEND to a non-list")),
                    }
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    match self.stack.last_mut() {
                        Some(Value::List(l)) => l.extend(items),
                        _ => return Err(self.err("APPENDS to a non-list")),
                    }
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    match self.stack.last_mut() {
                        Some(Value::Dict(d)) => d.push((k, v)),
                        _ => return Err(self.err("SETITEM on a non-dict")),
                    }
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    if items.len() % 2 != 0 {
                        return Err(self.err("SETITEMS with an odd number of items"));
                    }
                    let mut it = items.into_iter();
                    let mut pairs = Vec::new();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        pairs.push((k, v));
                    }
                    match self.stack.last_mut() {
                        Some(Value::Dict(d)) => d.extend(pairs),
                        _ => return Err(self.err("SETITEMS on a non-dict")),
                    }
                }
                b'J' => {
                    let v = self.u32()? as i32 as i64;
                    self.stack.push(Value::Int(v));
                }
                b'K' => {
                    let v = self.u8()? as i64;
                    self.stack.push(Value::Int(v));
                }
                b'M' => {
                    let v = self.u16()? as i64;
                    self.stack.push(Value::Int(v));
                }
                0x8a => {
                    let n = self.u8()? as usize;
                    if n > 8 {
                        return Err(self.err("LONG1 wider than 64 bits"));
                    }
                    let b = self.take(n)?;
                    let mut v: i64 = 0;
                    for (i, &byte) in b.iter().enumerate() {
                        v |= (byte as i64) << (8 * i);
                    }
                    if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                        v -= 1i64 << (8 * n);
                    }
                    self.stack.push(Value::Int(v));
                }
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'G' => {
                    let b = self.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    self.stack.push(Value::Float(f64::from_be_bytes(a)));
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let s = String::from_utf8_lossy(self.take(n)?).into_owned();
                    self.stack.push(Value::Str(s));
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let s = String::from_utf8_lossy(self.take(n)?).into_owned();
                    self.stack.push(Value::Str(s));
                }
                b'C' => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(b));
                }
                b'B' => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(b));
                }
                b'q' => {
                    let i = self.u8()? as u32;
                    let v = self.stack.last().cloned().ok_or_else(|| self.err("BINPUT on an empty stack"))?;
                    self.memo.insert(i, v);
                }
                b'r' => {
                    let i = self.u32()?;
                    let v = self.stack.last().cloned().ok_or_else(|| self.err("LONG_BINPUT on an empty stack"))?;
                    self.memo.insert(i, v);
                }
                0x94 => {
                    let i = self.memo.len() as u32;
                    let v = self.stack.last().cloned().ok_or_else(|| self.err("MEMOIZE on an empty stack"))?;
                    self.memo.insert(i, v);
                }
                b'h' => {
                    let i = self.u8()? as u32;
                    let v = self.memo.get(&i).cloned().ok_or_else(|| self.err(format!("memo {i} missing")))?;
                    self.stack.push(v);
                }
                b'j' => {
                    let i = self.u32()?;
                    let v = self.memo.get(&i).cloned().ok_or_else(|| self.err(format!("memo {i} missing")))?;
                    self.stack.push(v);
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    let g = self.global(&module, &name)?;
                    self.stack.push(Value::Global(g));
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Value::Str(m), Value::Str(n)) = (&module, &name) else {
                        return Err(self.err("STACK_GLOBAL with non-string names"));
                    };
                    let g = self.global(m, n)?;
                    self.stack.push(Value::Global(g));
                }
                b'R' => {
                    let args = self.pop()?;
                    let f = self.pop()?;
                    let v = self.reduce(f, args)?;
                    self.stack.push(v);
                }
                b'Q' => {
                    // BINPERSID: ('storage', storage_type, key, location, numel)
                    let pid = self.pop()?;
                    let Value::Tuple(t) = pid else { return Err(self.err("persistent id is not a tuple")) };
                    if t.len() < 5 || !matches!(&t[0], Value::Str(s) if s == "storage") {
                        return Err(self.err("persistent id is not a ('storage', ...) tuple"));
                    }
                    let Value::Global(Global::StorageType(dtype)) = t[1] else {
                        return Err(self.err("persistent id without a storage type"));
                    };
                    let key = match &t[2] {
                        Value::Str(s) => s.clone(),
                        other => return Err(self.err(format!("storage key {other:?}"))),
                    };
                    let numel = self.int_of(&t[4], "storage numel")?;
                    self.stack.push(Value::Storage { dtype, key, numel });
                }
                b'b' => {
                    // BUILD: only the state dict's `_metadata` on an OrderedDict is accepted (and ignored).
                    let _state = self.pop()?;
                    if !matches!(self.stack.last(), Some(Value::Dict(_))) {
                        return Err(self.err("BUILD on an object that is not a dict (refused)"));
                    }
                }
                other => {
                    return Err(Error::Unsupported {
                        path: self.path.display().to_string(),
                        message: format!(
                            "pickle opcode 0x{other:02x} at byte {} is not allowed in a tensor checkpoint",
                            self.pos - 1
                        ),
                    })
                }
            }
        }
    }
}

/// At most `limit` bytes of an entry. The size the zip directory declares is only a hint (a lie must not reserve
/// gigabytes): the buffer starts at no more than 64 MiB and grows with what is really read.
fn read_entry<R: Read + std::io::Seek>(
    zip: &mut zip::ZipArchive<R>,
    name: &str,
    path: &Path,
    limit: u64,
) -> Result<Vec<u8>> {
    let f = zip.by_name(name).map_err(|e| Error::decode(path, format!("entry {name}: {e}")))?;
    let mut buf = Vec::with_capacity(f.size().min(limit).min(64 << 20) as usize);
    f.take(limit).read_to_end(&mut buf).map_err(|e| Error::decode(path, format!("entry {name}: {e}")))?;
    Ok(buf)
}

/// The most elements one tensor of a checkpoint may have once read (its view gathered).
const MAX_TENSOR: u64 = 1 << 30;

/// The largest pickle (`data.pkl`) read: the structure of a checkpoint, not its tensors.
const MAX_PICKLE: u64 = 64 << 20;

/// Flatten nested dicts into `prefix.key` names, keeping only tensors.
fn collect(v: &Value, prefix: &str, out: &mut Vec<(String, PendingTensor)>) {
    match v {
        Value::Dict(items) => {
            for (k, v) in items {
                let k = match k {
                    Value::Str(s) => s.clone(),
                    Value::Int(i) => i.to_string(),
                    _ => continue,
                };
                let name = if prefix.is_empty() { k } else { format!("{prefix}.{k}") };
                collect(v, &name, out);
            }
        }
        Value::Tensor(t) => out.push((prefix.to_string(), t.clone())),
        _ => {}
    }
}

/// Parse a `torch.save` zip held in memory. `path` names the source in errors.
pub fn read_pth_bytes(path: &Path, bytes: &[u8]) -> Result<Weights> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| Error::decode(path, format!("not a PyTorch zip checkpoint (or truncated): {e}")))?;
    let pkl_name = (0..zip.len())
        .filter_map(|i| zip.name_for_index(i).map(str::to_string))
        .find(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1)
        .ok_or_else(|| Error::decode(path, "no <archive>/data.pkl entry: not a torch.save checkpoint"))?;
    let prefix = pkl_name.trim_end_matches("data.pkl").to_string();
    let pkl = read_entry(&mut zip, &pkl_name, path, MAX_PICKLE + 1)?;
    if pkl.len() as u64 > MAX_PICKLE {
        return Err(Error::decode(
            path,
            format!("{pkl_name} is over {} MiB: not a checkpoint's structure", MAX_PICKLE >> 20),
        ));
    }
    let mut up = Unpickler { data: &pkl, pos: 0, stack: Vec::new(), memo: HashMap::new(), path };
    let root = up.run()?;
    let mut pending = Vec::new();
    collect(&root, "", &mut pending);
    if pending.is_empty() {
        return Err(Error::decode(path, "the checkpoint holds no tensors"));
    }
    // Some checkpoints wrap the state dict: {"model": {...}} or {"state_dict": {...}}.
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    // The bytes each storage must hold: the largest any tensor on it claims (torch.save gives every view of one
    // storage the same element count; a crafted file need not).
    let mut need: HashMap<&str, u64> = HashMap::new();
    for (_, t) in &pending {
        let n = need.entry(t.key.as_str()).or_default();
        *n = (*n).max(t.numel.saturating_mul(t.dtype.size()));
    }
    let need = need.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<HashMap<String, u64>>();
    let mut tensors = Vec::with_capacity(pending.len());
    for (name, t) in pending {
        if !storages.contains_key(&t.key) {
            if t.key.contains('/') || t.key.contains("..") {
                return Err(Error::decode(path, format!("{name}: storage key {:?} is not a plain name", t.key)));
            }
            // Only the bytes the storage holds are read (its element count from the pickle, checked below).
            let data = read_entry(&mut zip, &format!("{prefix}data/{}", t.key), path, need[&t.key])?;
            storages.insert(t.key.clone(), data);
        }
        let raw = &storages[&t.key];
        let es = t.dtype.size();
        if (raw.len() as u64) < t.numel.saturating_mul(es) {
            return Err(Error::decode(
                path,
                format!(
                    "{name}: storage {} holds {} bytes, the pickle claims {} elements of {es} bytes",
                    t.key,
                    raw.len(),
                    t.numel
                ),
            ));
        }
        let count: u64 = t
            .shape
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .ok_or_else(|| Error::decode(path, format!("{name}: size overflows")))?;
        if count > 0 {
            let extent = t
                .shape
                .iter()
                .zip(&t.stride)
                .try_fold(t.offset, |a, (&d, &s)| a.checked_add((d - 1).checked_mul(s)?))
                .ok_or_else(|| Error::decode(path, format!("{name}: offset/stride overflow")))?;
            if extent >= t.numel {
                return Err(Error::decode(
                    path,
                    format!(
                        "{name}: tensor of size {:?}, stride {:?}, offset {} reaches element {extent} of a storage of {} (out of range)",
                        t.shape, t.stride, t.offset, t.numel
                    ),
                ));
            }
        }
        // A view with stride 0 (an expanded tensor) may name far more elements than its storage holds: the copy
        // is bounded (2^30 elements, 4 GiB as f32) before anything is allocated for it.
        if count > MAX_TENSOR {
            return Err(Error::decode(
                path,
                format!(
                    "{name}: a tensor of {count} elements (size {:?}) is over medpick's cap of {MAX_TENSOR}",
                    t.shape
                ),
            ));
        }
        // Gather in row-major order (handles views and non-contiguous strides).
        let mut idx = Vec::with_capacity(count as usize);
        let rank = t.shape.len();
        let mut coord = vec![0u64; rank];
        for _ in 0..count {
            let off = t.offset + coord.iter().zip(&t.stride).map(|(c, s)| c * s).sum::<u64>();
            idx.push(off as usize);
            for d in (0..rank).rev() {
                coord[d] += 1;
                if coord[d] < t.shape[d] {
                    break;
                }
                coord[d] = 0;
            }
        }
        let e = es as usize;
        let at = |i: usize| &raw[i * e..(i + 1) * e];
        let data = match t.dtype {
            StorageType::F32 => {
                TensorData::F32(idx.iter().map(|&i| f32::from_le_bytes(at(i).try_into().unwrap_or([0; 4]))).collect())
            }
            StorageType::F64 => TensorData::F32(
                idx.iter().map(|&i| f64::from_le_bytes(at(i).try_into().unwrap_or([0; 8])) as f32).collect(),
            ),
            StorageType::F16 => TensorData::F32(
                idx.iter().map(|&i| super::tensors::f16_to_f32(u16::from_le_bytes([at(i)[0], at(i)[1]]))).collect(),
            ),
            StorageType::BF16 => TensorData::F32(
                idx.iter().map(|&i| f32::from_bits((u16::from_le_bytes([at(i)[0], at(i)[1]]) as u32) << 16)).collect(),
            ),
            StorageType::I64 => {
                TensorData::I64(idx.iter().map(|&i| i64::from_le_bytes(at(i).try_into().unwrap_or([0; 8]))).collect())
            }
            StorageType::I32 => TensorData::I64(
                idx.iter().map(|&i| i32::from_le_bytes(at(i).try_into().unwrap_or([0; 4])) as i64).collect(),
            ),
            StorageType::I16 => {
                TensorData::I64(idx.iter().map(|&i| i16::from_le_bytes([at(i)[0], at(i)[1]]) as i64).collect())
            }
            StorageType::I8 => TensorData::I64(idx.iter().map(|&i| at(i)[0] as i8 as i64).collect()),
            StorageType::U8 | StorageType::Bool => TensorData::I64(idx.iter().map(|&i| at(i)[0] as i64).collect()),
        };
        tensors.push((name, Tensor { shape: t.shape.iter().map(|&d| d as usize).collect(), data }));
    }
    Ok(Weights::from_pairs(tensors))
}
