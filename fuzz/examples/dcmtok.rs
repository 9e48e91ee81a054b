use dicom_parser::dataset::read::{DataSetReader, DataSetReaderOptions};
use dicom_parser::stateful::decode::StatefulDecoder;
fn main() {
    let b = std::fs::read(std::env::args().nth(1).unwrap()).unwrap();
    let start: usize = std::env::args().nth(2).unwrap().parse().unwrap();
    let ts = dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN.erased();
    let mut src = std::io::Cursor::new(&b[start..]);
    let dec = StatefulDecoder::new_with_ts(&mut src, &ts, start as u64).unwrap();
    let mut rdr = DataSetReader::new(dec, DataSetReaderOptions::default());
    let mut i = 0;
    while let Some(t) = rdr.next() {
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
        i += 1;
        if i > 100000 {
            break;
        }
    }
}
