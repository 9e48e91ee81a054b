//! Print the tokens dicom-rs's data set reader sees in a DICOM file (explicit VR little endian), from a byte
//! offset (where the data set starts: after the file meta group), to find where medpick's length pre-check
//! (`core/src/data/io/dicom.rs`, `check_declared_lengths`) and dicom-rs part ways on a `dicom` fuzz finding:
//!
//!     cargo run --release -p medpick-fuzz --example dcmtok -- fuzz/artifacts/dicom/mem-… 340

use dicom_parser::dataset::read::{DataSetReader, DataSetReaderOptions};
use dicom_parser::stateful::decode::StatefulDecoder;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(file), Some(start)) = (args.next(), args.next().and_then(|s| s.parse::<usize>().ok())) else {
        eprintln!("usage: dcmtok FILE DATASET_OFFSET");
        std::process::exit(2);
    };
    let b = std::fs::read(&file).expect("readable file");
    let ts = dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN.erased();
    let mut src = std::io::Cursor::new(&b[start.min(b.len())..]);
    let dec = StatefulDecoder::new_with_ts(&mut src, &ts, start as u64).expect("a decoder");
    for t in DataSetReader::new(dec, DataSetReaderOptions::default()).take(100_000) {
        match t {
            Ok(t) => {
                let s = format!("{t:?}");
                println!("{}", &s[..s.len().min(100)]);
            }
            Err(e) => {
                println!("ERR {e}");
                break;
            }
        }
    }
}
