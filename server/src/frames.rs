//! WADO-RS frames (PS3.18 8.7.3): one file's frames as stored. Native pixel data is answered as
//! `application/octet-stream` in explicit VR little endian, whatever the file's byte order (a big-endian file's
//! words are its values, written little endian); encapsulated frames keep their transfer syntax's media type and
//! are found by the Extended Offset Table, else the Basic Offset Table, else one fragment per frame, else (JPEG,
//! JPEG-LS, JPEG 2000) by the marker that opens each frame's first fragment.

use std::path::Path;

use axum::http::StatusCode;
use dicom_core::value::{PrimitiveValue, Value as DValue};
use dicom_dictionary_std::tags;

use crate::{ApiError, ApiResult};

const BIG_ENDIAN: &str = "1.2.840.10008.1.2.2";

/// The media type of an encapsulated transfer syntax's frames (PS3.18 table 8.7.3-2).
pub fn frame_type(ts: &str) -> String {
    let media = match ts {
        "1.2.840.10008.1.2.4.50" | "1.2.840.10008.1.2.4.51" | "1.2.840.10008.1.2.4.57" | "1.2.840.10008.1.2.4.70" => {
            "image/jpeg"
        }
        "1.2.840.10008.1.2.4.80" | "1.2.840.10008.1.2.4.81" => "image/jls",
        "1.2.840.10008.1.2.4.90" | "1.2.840.10008.1.2.4.91" => "image/jp2",
        "1.2.840.10008.1.2.5" => "image/dicom-rle",
        _ => "application/octet-stream",
    };
    format!("{media}; transfer-syntax={ts}")
}

/// Whether a fragment opens a frame of transfer syntax `ts`: JPEG and JPEG-LS start with SOI (FFD8), a JPEG 2000
/// codestream with SOC SIZ (FF4F FF51) or the JP2 signature box. None: the syntax has no such marker.
fn opens_frame(ts: &str, frag: &[u8]) -> Option<bool> {
    match frame_type(ts).split(';').next() {
        Some("image/jpeg" | "image/jls") => Some(frag.starts_with(&[0xFF, 0xD8])),
        Some("image/jp2") => Some(
            frag.starts_with(&[0xFF, 0x4F, 0xFF, 0x51]) || frag.starts_with(&[0, 0, 0, 0x0C, b'j', b'P', b' ', b' ']),
        ),
        _ => None,
    }
}

/// The fragments of each of `frames` frames (indices into `frags`), or None when nothing splits them.
fn split(ts: &str, frags: &[Vec<u8>], bot: &[u32], eot: Option<Vec<u64>>, frames: usize) -> Option<Vec<Vec<usize>>> {
    if frames == 1 {
        return Some(vec![(0..frags.len()).collect()]);
    }
    // Each fragment's offset from the first one's item tag (8 bytes of item header each): what both offset tables'
    // entries point at. A frame is the fragments from its entry to the next.
    let pos: Vec<u64> = frags
        .iter()
        .scan(0u64, |at, f| {
            let p = *at;
            *at += 8 + f.len() as u64;
            Some(p)
        })
        .collect();
    // The offsets are the fragments' own positions, ascending: each frame found by binary search (a table out of
    // order leaves a frame empty, and is not used).
    let by_offsets = |offsets: &[u64]| -> Option<Vec<Vec<usize>>> {
        let v: Vec<Vec<usize>> = (0..frames)
            .map(|f| {
                let (a, b) = (offsets[f], offsets.get(f + 1).copied().unwrap_or(u64::MAX));
                let (lo, hi) = (pos.partition_point(|&p| p < a), pos.partition_point(|&p| p < b));
                (lo..hi.max(lo)).collect::<Vec<_>>()
            })
            .collect();
        v.iter().all(|f| !f.is_empty()).then_some(v)
    };
    if let Some(v) = eot.filter(|e| e.len() == frames).and_then(|e| by_offsets(&e)) {
        return Some(v);
    }
    if bot.len() == frames {
        let offsets: Vec<u64> = bot.iter().map(|&o| o as u64).collect();
        if let Some(v) = by_offsets(&offsets) {
            return Some(v);
        }
    }
    if frags.len() == frames {
        return Some((0..frames).map(|i| vec![i]).collect());
    }
    let starts: Vec<usize> = (0..frags.len()).filter(|&i| opens_frame(ts, &frags[i]) == Some(true)).collect();
    if starts.len() != frames || starts.first() != Some(&0) {
        return None;
    }
    Some((0..frames).map(|f| (starts[f]..starts.get(f + 1).copied().unwrap_or(frags.len())).collect()).collect())
}

/// The size in bytes of native pixel data, and its bytes `from..to` (a frame; both multiples of 4 when samples are
/// 32-bit) as explicit VR little endian: the values dicom-rs decoded (in the file's byte order) written little
/// endian. In a big-endian file, 32-bit samples stored as OW are pairs of words, most significant first, and 16-bit
/// samples stored as OB have no byte order to go by (refused: None).
fn little_endian(p: &PrimitiveValue, big: bool, bits: usize, from: usize, to: usize) -> Option<(usize, Vec<u8>)> {
    // The values that hold bytes from..to, written out, then cut to that range (8-bit frames in OW words).
    fn le<T: Copy, const N: usize>(v: &[T], from: usize, to: usize, f: impl Fn(T) -> [u8; N]) -> (usize, Vec<u8>) {
        let part = v.get(from / N..to.div_ceil(N)).unwrap_or(&[]);
        let bytes: Vec<u8> = part.iter().flat_map(|&x| f(x)).collect();
        (v.len() * N, bytes.get(from % N..from % N + (to - from)).unwrap_or(&[]).to_vec())
    }
    Some(match p {
        PrimitiveValue::U8(v) if !big || bits <= 8 => (v.len(), v.get(from..to).unwrap_or(&[]).to_vec()),
        PrimitiveValue::U16(v) if big && bits == 32 => {
            let part = v.get(from / 2..to / 2).unwrap_or(&[]);
            (v.len() * 2, part.chunks(2).flat_map(|w| w.iter().rev().flat_map(|x| x.to_le_bytes())).collect())
        }
        PrimitiveValue::U16(v) => le(v, from, to, u16::to_le_bytes),
        PrimitiveValue::I16(v) => le(v, from, to, i16::to_le_bytes),
        PrimitiveValue::U32(v) => le(v, from, to, u32::to_le_bytes),
        PrimitiveValue::I32(v) => le(v, from, to, i32::to_le_bytes),
        PrimitiveValue::F32(v) => le(v, from, to, f32::to_le_bytes),
        PrimitiveValue::F64(v) => le(v, from, to, f64::to_le_bytes),
        PrimitiveValue::U64(v) => le(v, from, to, u64::to_le_bytes),
        PrimitiveValue::I64(v) => le(v, from, to, i64::to_le_bytes),
        _ => return None,
    })
}

/// Frames (1-based, as listed) of one file: (media type, bytes) each.
pub fn read_frames(path: &Path, list: &[usize]) -> ApiResult<Vec<(String, Vec<u8>)>> {
    // The file was indexed as DICOM: failing to read it now is the server's trouble (changed, unreadable).
    let obj = medpick_core::io::dicom::open(path).map_err(|e| ApiError::internal(e.to_string()))?;
    let ts = obj.meta().transfer_syntax().trim_end_matches([' ', '\0']).to_string();
    let int = |t| obj.element_opt(t).ok().flatten().and_then(|e| e.to_int::<i64>().ok()).unwrap_or(0).max(0) as usize;
    let frames = int(tags::NUMBER_OF_FRAMES).max(1);
    if list.is_empty() || list.len() > frames {
        return Err(ApiError::bad(format!("{}: ask for 1 to {frames} frames, not {}", path.display(), list.len())));
    }
    if let Some(&f) = list.iter().find(|&&f| f == 0 || f > frames) {
        return Err(ApiError::not_found(format!("{}: frame {f} of {frames}", path.display())));
    }
    let pixels = obj
        .element_opt(tags::PIXEL_DATA)
        .ok()
        .flatten()
        .ok_or_else(|| ApiError::not_found(format!("{}: no pixel data", path.display())))?;
    let refuse = |why: String| ApiError::new(StatusCode::NOT_ACCEPTABLE, format!("{}: {why}", path.display()));
    match pixels.value() {
        DValue::PixelSequence(seq) => {
            let frags = seq.fragments();
            let eot = obj.element_opt(tags::EXTENDED_OFFSET_TABLE).ok().flatten().and_then(|e| {
                let b = e.to_bytes().ok()?;
                Some(b.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default())).collect())
            });
            let parts = split(&ts, frags, seq.offset_table(), eot, frames).ok_or_else(|| {
                refuse(format!(
                    "{frames} frames in {} fragments, and neither an offset table nor markers split them",
                    frags.len()
                ))
            })?;
            Ok(list
                .iter()
                .map(|&f| (frame_type(&ts), parts[f - 1].iter().flat_map(|&i| frags[i].clone()).collect()))
                .collect())
        }
        DValue::Primitive(p) => {
            let bits = int(tags::BITS_ALLOCATED);
            // Sizes from the header, checked: a hostile header must not overflow them.
            let len = int(tags::ROWS)
                .checked_mul(int(tags::COLUMNS))
                .and_then(|v| v.checked_mul(int(tags::SAMPLES_PER_PIXEL).max(1)))
                .and_then(|v| v.checked_mul(bits / 8))
                .unwrap_or(0);
            let big = ts == BIG_ENDIAN;
            let size = little_endian(p, big, bits, 0, 0)
                .ok_or_else(|| refuse(format!("{bits}-bit big-endian pixel data stored as bytes")))?
                .0;
            // Whole samples per frame (a 32-bit OW sample is two words): else the frames would cut through them.
            if bits % 8 != 0
                || len == 0
                || len % (bits / 8) != 0
                || len.checked_mul(frames).is_none_or(|need| size < need)
            {
                return Err(refuse(format!("pixel data of {size} bytes for {frames} frames of {len}")));
            }
            let ct = "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1".to_string();
            list.iter()
                .map(|&f| {
                    let (_, b) = little_endian(p, big, bits, (f - 1) * len, f * len).unwrap_or_default();
                    if b.len() == len {
                        Ok((ct.clone(), b))
                    } else {
                        Err(refuse(format!("frame {f} cuts a sample")))
                    }
                })
                .collect()
        }
        DValue::Sequence(_) => Err(ApiError::bad(format!("{}: pixel data is a sequence", path.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::value::PixelFragmentSequence;
    use dicom_core::{DataElement, VR};
    use dicom_object::{FileMetaTableBuilder, InMemDicomObject};

    fn shared(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/dicom").join(name)
    }

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("medpick-frames-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A big-endian copy of CT_small.dcm answers the same little-endian frame bytes as the file itself, and core
    /// reads the same image from it.
    #[test]
    fn big_endian_frames_are_answered_little_endian() {
        let src = shared("CT_small.dcm");
        let obj = dicom_object::open_file(&src).unwrap();
        let meta = FileMetaTableBuilder::new()
            .transfer_syntax(BIG_ENDIAN)
            .media_storage_sop_class_uid(obj.meta().media_storage_sop_class_uid())
            .media_storage_sop_instance_uid(obj.meta().media_storage_sop_instance_uid());
        let dir = tmp("be");
        let be = dir.join("ct_be.dcm");
        obj.into_inner().with_meta(meta).unwrap().write_to_file(&be).unwrap();
        let raw = std::fs::read(&be).unwrap();
        assert!(raw.windows(19).any(|w| w == b"1.2.840.10008.1.2.2"), "written big endian");
        let (le_frame, be_frame) = (read_frames(&src, &[1]).unwrap(), read_frames(&be, &[1]).unwrap());
        assert_eq!(be_frame, le_frame);
        assert_eq!(le_frame[0].1.len(), 128 * 128 * 2);
        let w = medpick_core::io::Window::SOFT_TISSUE;
        let (a, b) = (
            medpick_core::io::dicom::read_frame(&src, 0, w, 1 << 20).unwrap(),
            medpick_core::io::dicom::read_frame(&be, 0, w, 1 << 20).unwrap(),
        );
        assert_eq!(a.pixels, b.pixels, "ingest reads a big-endian file as the little-endian one");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// 8-bit frames of an odd size stored in OW words: each frame is its own bytes, not cut at a word.
    #[test]
    fn odd_sized_8_bit_frames_in_words_are_their_own_bytes() {
        let bytes: Vec<u8> = (1..=6).collect();
        let words: Vec<u16> = bytes.chunks(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
        let o = InMemDicomObject::from_element_iter([
            DataElement::new(tags::SOP_INSTANCE_UID, VR::UI, PrimitiveValue::from("1.2.3.5")),
            DataElement::new(tags::ROWS, VR::US, PrimitiveValue::from(1u16)),
            DataElement::new(tags::COLUMNS, VR::US, PrimitiveValue::from(3u16)),
            DataElement::new(tags::BITS_ALLOCATED, VR::US, PrimitiveValue::from(8u16)),
            DataElement::new(tags::NUMBER_OF_FRAMES, VR::IS, PrimitiveValue::from("2")),
            DataElement::new(tags::PIXEL_DATA, VR::OW, PrimitiveValue::U16(words.into())),
        ]);
        let meta = FileMetaTableBuilder::new()
            .transfer_syntax("1.2.840.10008.1.2.1")
            .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.7")
            .media_storage_sop_instance_uid("1.2.3.5");
        let p = tmp("ow8").join("ow8.dcm");
        o.with_meta(meta).unwrap().write_to_file(&p).unwrap();
        let got = read_frames(&p, &[2, 1]).unwrap();
        assert_eq!((got[0].1.as_slice(), got[1].1.as_slice()), (&bytes[3..6], &bytes[0..3]));
        let _ = std::fs::remove_dir_all(tmp("ow8"));
    }

    /// Three JPEG frames of two fragments each, no offset table: split at each frame's SOI; the same fragments with
    /// RLE (no markers) are split by an Extended Offset Table, and refused (406) without one.
    #[test]
    fn multi_fragment_frames_without_a_basic_offset_table_are_split() {
        let frame = |k: u8| -> (Vec<u8>, Vec<u8>) { (vec![0xFF, 0xD8, 0xFF, 0xE0, k, k], vec![k, 0x11, 0xFF, 0xD9]) };
        let frags: Vec<Vec<u8>> = (1..=3u8).flat_map(|k| [frame(k).0, frame(k).1]).collect();
        let write = |ts: &str, eot: bool, name: &str| {
            let mut o = InMemDicomObject::from_element_iter([
                DataElement::new(tags::SOP_CLASS_UID, VR::UI, PrimitiveValue::from("1.2.840.10008.5.1.4.1.1.7")),
                DataElement::new(tags::SOP_INSTANCE_UID, VR::UI, PrimitiveValue::from("1.2.3.4")),
                DataElement::new(tags::ROWS, VR::US, PrimitiveValue::from(2u16)),
                DataElement::new(tags::COLUMNS, VR::US, PrimitiveValue::from(2u16)),
                DataElement::new(tags::BITS_ALLOCATED, VR::US, PrimitiveValue::from(8u16)),
                DataElement::new(tags::NUMBER_OF_FRAMES, VR::IS, PrimitiveValue::from("3")),
            ]);
            if eot {
                // Each frame's first fragment: items of 8 + 6 and 8 + 4 bytes per frame.
                let offsets: Vec<u8> = [0u64, 26, 52].iter().flat_map(|o| o.to_le_bytes()).collect();
                o.put(DataElement::new(tags::EXTENDED_OFFSET_TABLE, VR::OV, PrimitiveValue::from(offsets)));
            }
            o.put(DataElement::new(
                tags::PIXEL_DATA,
                VR::OB,
                DValue::from(PixelFragmentSequence::new(Vec::<u32>::new(), frags.clone())),
            ));
            let meta = FileMetaTableBuilder::new()
                .transfer_syntax(ts)
                .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.7")
                .media_storage_sop_instance_uid("1.2.3.4");
            let p = tmp("frag").join(name);
            o.with_meta(meta).unwrap().write_to_file(&p).unwrap();
            p
        };
        let want = |k: u8| [frame(k).0, frame(k).1].concat();
        let jpeg = write("1.2.840.10008.1.2.4.50", false, "jpeg.dcm");
        let got = read_frames(&jpeg, &[2, 3, 1]).unwrap();
        assert_eq!(got.iter().map(|f| f.1.clone()).collect::<Vec<_>>(), vec![want(2), want(3), want(1)]);
        assert!(got[0].0.starts_with("image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50"));
        let rle = write("1.2.840.10008.1.2.5", true, "rle_eot.dcm");
        assert_eq!(read_frames(&rle, &[3]).unwrap()[0].1, want(3));
        let rle = write("1.2.840.10008.1.2.5", false, "rle.dcm");
        assert_eq!(read_frames(&rle, &[1]).unwrap_err().status, StatusCode::NOT_ACCEPTABLE);
        let _ = std::fs::remove_dir_all(tmp("frag"));
    }
}
