//! Every value length a DICOM stream declares, checked against the bytes that are really there before dicom-rs
//! reads the stream: dicom-rs allocates (and zero-fills) a value's declared length before reading it, so a
//! 100-byte file that declares a 4 GB element would take 4 GB.
//!
//! The walk reads element headers with dicom-rs's own header decoders and follows its data set reader
//! (dicom-parser 0.10, `dataset/read.rs`) state for state: the file meta group as dicom-object reads it (the group
//! length first, then whole elements until that many bytes are read); then, at element level, a header is a
//! sequence (VR SQ, or any undefined length), an item delimiter, encapsulated pixel data, or a plain element whose
//! value is read whatever its tag; at sequence level, an item header or a delimiter; a defined-length sequence or
//! item ends where dicom-rs's position counter says, and that counter moves by the declared length even where the
//! reader consumes whole values only (a UL of 26 bytes: 24 bytes read, 26 counted). Values are stepped over after
//! their length is checked. Deflated data sets are inflated (bounded) and walked the same way. A header that does
//! not decode stops the walk: dicom-rs refuses the stream at that same header, before allocating anything for it.
//! Both places a Part 10 stream can start (after a 128-byte preamble, or at byte 0) are walked, as `dicom::open`
//! tries both.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use dicom_dictionary_std::tags;
use dicom_encoding::transfer_syntax::Codec;
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::Tag;

use crate::{Error, Result};

/// The most a deflated data set may inflate to (the walk inflates it once to know its length).
const MAX_INFLATED: u64 = 4 << 30;

pub(crate) fn check<R: Read + Seek>(path: &Path, mut r: R, len: u64) -> Result<()> {
    for at in [128u64, 0] {
        let mut magic = [0u8; 4];
        if r.seek(SeekFrom::Start(at)).is_ok() && r.read_exact(&mut magic).is_ok() && &magic == b"DICM" {
            stream(path, &mut r, at + 4, len)?;
        }
    }
    Ok(())
}

fn too_long(path: &Path, tag: Tag, declared: u64, left: u64) -> Error {
    Error::decode(
        path,
        format!(
            "element {tag} declares {declared} bytes, but only {left} remain in the file: truncated or corrupt DICOM"
        ),
    )
}

fn skip(r: &mut impl Read, n: u64) -> bool {
    std::io::copy(&mut r.take(n), &mut std::io::sink()).is_ok_and(|k| k == n)
}

/// The file meta group from `pos` (just after "DICM"), then the data set in its transfer syntax.
fn stream<R: Read + Seek>(path: &Path, r: &mut R, mut pos: u64, len: u64) -> Result<()> {
    use dicom_encoding::decode::{explicit_le::ExplicitVRLittleEndianDecoder, Decode};
    let meta = ExplicitVRLittleEndianDecoder::default();
    let Ok((h, n)) = meta.decode_header(r) else { return Ok(()) };
    if h.tag != tags::FILE_META_INFORMATION_GROUP_LENGTH || h.len.get() != Some(4) {
        return Ok(()); // dicom-rs refuses the file at this header
    }
    let mut gl = [0u8; 4];
    if r.read_exact(&mut gl).is_err() {
        return Ok(());
    }
    let group_length = u32::from_le_bytes(gl) as u64;
    pos += n as u64 + 4;
    let mut ts = String::new();
    let mut read = 0u64;
    while read < group_length {
        let Ok((h, n)) = meta.decode_header(r) else { return Ok(()) };
        pos += n as u64;
        let Some(l) = h.len.get().map(u64::from) else { return Ok(()) };
        if l > len.saturating_sub(pos) {
            return Err(too_long(path, h.tag, l, len.saturating_sub(pos)));
        }
        if h.tag == tags::TRANSFER_SYNTAX_UID {
            let mut v = Vec::new();
            if r.take(l).read_to_end(&mut v).map_err(|e| Error::io(path, e))? as u64 != l {
                return Ok(());
            }
            // As dicom-rs trims it: trailing whitespace and NULs.
            ts = String::from_utf8_lossy(&v).trim_end_matches(|c: char| c.is_whitespace() || c == '\0').to_string();
        } else if !skip(r, l) {
            return Ok(());
        }
        pos += l;
        read += n as u64 + l;
    }
    let reg = dicom_transfer_syntax_registry::TransferSyntaxRegistry;
    let Some(ts) = reg.get(&ts) else { return Ok(()) }; // an unknown transfer syntax: refused by dicom-rs
    if matches!(ts.codec(), Codec::Dataset(_)) {
        // A deflated data set: inflate it once to learn its length (bounded), then walk the inflated stream.
        let inflated = {
            let mut d = flate2::read::DeflateDecoder::new(&mut *r).take(MAX_INFLATED + 1);
            let mut buf = vec![0u8; 1 << 16];
            let mut n = 0u64;
            while let Ok(k) = d.read(&mut buf) {
                if k == 0 {
                    break;
                }
                n += k as u64;
            }
            n
        };
        if inflated > MAX_INFLATED {
            return Err(Error::decode(path, "the deflated data set inflates to more than 4 GiB"));
        }
        r.seek(SeekFrom::Start(pos)).map_err(|e| Error::io(path, e))?;
        let mut d = flate2::read::DeflateDecoder::new(std::io::BufReader::new(&mut *r));
        let Some(dec) = ts.decoder_for::<flate2::read::DeflateDecoder<std::io::BufReader<&mut R>>>() else {
            return Ok(());
        };
        return data_set(path, &mut d, inflated, &|r| {
            dec.decode_header(r).ok().map(|(h, n)| hdr(h.tag, h.vr.to_bytes(), h.len.get(), n))
        });
    }
    let Some(dec) = ts.decoder_for::<R>() else { return Ok(()) };
    let left = len.saturating_sub(pos);
    data_set(path, r, left, &|r| dec.decode_header(r).ok().map(|(h, n)| hdr(h.tag, h.vr.to_bytes(), h.len.get(), n)))
}

/// What the walk needs of an element header.
struct Hdr {
    tag: Tag,
    sq: bool,
    /// The byte size of one value of its VR: dicom-rs reads a binary VR as whole values.
    unit: u64,
    len: Option<u32>,
    /// Header bytes.
    n: usize,
}

fn hdr(tag: Tag, vr: [u8; 2], len: Option<u32>, n: usize) -> Hdr {
    let unit = match &vr {
        b"SS" | b"US" | b"OW" => 2,
        b"SL" | b"UL" | b"FL" | b"AT" | b"OF" | b"OL" => 4,
        b"FD" | b"OD" | b"SV" | b"UV" | b"OV" => 8,
        _ => 1,
    };
    Hdr { tag, sq: &vr == b"SQ", unit, len, n }
}

struct Open {
    item: bool,
    /// Where it ends on dicom-rs's position counter, if its length is defined.
    end: Option<u64>,
    pixel: bool,
}

/// Walk a data set of `len` bytes from the reader's position. `real` counts the bytes read; `count` is
/// dicom-rs's position counter (which moves by a value's declared length even where fewer bytes were read).
fn data_set<W: Read>(path: &Path, r: &mut W, len: u64, header: &dyn Fn(&mut W) -> Option<Hdr>) -> Result<()> {
    let (mut real, mut count) = (0u64, 0u64);
    let mut stack: Vec<Open> = Vec::new();
    let mut in_sequence = false;
    loop {
        while let Some(end) = stack.last().and_then(|o| o.end) {
            if count < end {
                break;
            }
            if count > end {
                return Ok(()); // dicom-rs stops here: an inconsistent end
            }
            in_sequence = stack.pop().is_some_and(|o| o.item);
        }
        if real >= len {
            return Ok(());
        }
        let Some(Hdr { tag, sq, unit, len: l, n }) = header(r) else { return Ok(()) };
        real += n as u64;
        count += n as u64;
        let left = len.saturating_sub(real);
        let (g, e) = (tag.group(), tag.element());
        if in_sequence {
            match (g, e) {
                (0xFFFE, 0xE000) => {
                    let pixel = stack.last().is_some_and(|o| o.pixel);
                    in_sequence = false;
                    match (l.map(u64::from), pixel) {
                        (None, true) => return Ok(()), // dicom-rs refuses an undefined-length fragment
                        (None, false) => stack.push(Open { item: true, end: None, pixel }),
                        (Some(l), _) if l > left => return Err(too_long(path, tag, l, left)),
                        (Some(l), true) => {
                            // A fragment (or the offset table): its bytes are read as one value.
                            if !skip(r, l) {
                                return Ok(());
                            }
                            real += l;
                            count += l;
                            in_sequence = true;
                        }
                        (Some(l), false) => stack.push(Open { item: true, end: Some(count + l), pixel }),
                    }
                }
                (0xFFFE, 0xE00D) => {
                    stack.pop();
                    in_sequence = true;
                }
                (0xFFFE, 0xE0DD) => {
                    stack.pop();
                    in_sequence = false;
                }
                _ => return Ok(()), // dicom-rs refuses anything else where an item must start
            }
            continue;
        }
        // Element level, in dicom-rs's order: SQ, item delimiter, encapsulated pixel data, undefined length, plain.
        if sq {
            if let Some(l) = l.map(u64::from).filter(|&l| l > left) {
                return Err(too_long(path, tag, l, left));
            }
            stack.push(Open { item: false, end: l.map(|l| count + u64::from(l)), pixel: false });
            in_sequence = true;
        } else if (g, e) == (0xFFFE, 0xE00D) {
            if !stack.is_empty() {
                stack.pop();
                in_sequence = true;
            }
        } else if l.is_none() {
            stack.push(Open { item: false, end: None, pixel: tag == tags::PIXEL_DATA });
            in_sequence = true;
        } else {
            let l = u64::from(l.unwrap_or(0));
            if l > left {
                return Err(too_long(path, tag, l, left));
            }
            let read = l - l % unit;
            if !skip(r, read) {
                return Ok(());
            }
            real += read;
            count += l;
        }
    }
}
