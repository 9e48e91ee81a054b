//! `medpick export`: feature files as one Parquet table for other tools (pandas, polars, DuckDB, Spark, arrow):
//! one row per image with its `id` and its `features` (a fixed-size list of float32), a `weight` column when the
//! inputs are local coresets (the pool rows each stands for), and the features' model, pooling, preprocessing and
//! dimension in the file's key-value metadata (`medpick.*`). The inputs open as `select` opens them: one file, the
//! parts of `embed --shard` (every part checked present, ids unique across parts) or a folder of them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use arrow_array::{ArrayRef, FixedSizeListArray, Float32Array, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema};
use medpick_core::embed::features::Features;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// Feature files (.safetensors), a folder of `embed --shard` parts, or local coresets (`select --coreset-out`).
    #[arg(required = true, num_args = 1..)]
    pub inputs: Vec<PathBuf>,
    /// The Parquet file to write (`.parquet`; never over an existing file without --force).
    #[arg(long, short)]
    pub out: PathBuf,
    #[arg(long)]
    pub force: bool,
}

/// Rows per record batch and row group (the pool itself is read whole, as `select` reads it).
const ROWS_PER_BATCH: usize = 65_536;

pub fn export(a: ExportArgs) -> Result<u8> {
    use medpick_core::embed::parts;
    if a.out.extension().is_none_or(|e| e != "parquet") {
        bail!("--out {}: the file name must end in .parquet", a.out.display());
    }
    a.inputs.iter().for_each(|p| medpick_core::manifest::protect_input(p));
    medpick_core::manifest::refuse_existing(&a.out, a.force)?;
    let (f, files) = parts::open_pool(&a.inputs)?;
    let union = medpick_core::select::composable::coreset_union(&parts::part_files(&a.inputs)?)?;
    let weights: Option<Vec<u64>> = union.as_ref().map(|u| u.weights.iter().map(|&w| w as u64).collect());
    let mut meta = vec![
        ("medpick.model", f.model.clone()),
        ("medpick.pool", f.pool.clone()),
        ("medpick.preprocess", f.preprocess.clone()),
        ("medpick.dim", f.dim.to_string()),
        ("medpick.files", files.to_string()),
    ];
    if let Some(u) = &union {
        meta.push(("medpick.coreset_pool_rows", u.pool_rows.to_string()));
        meta.push(("medpick.coreset_local_radius", u.local_radius.to_string()));
    }
    write_parquet(&f, weights.as_deref(), &meta, &a.out)?;
    println!(
        "wrote {} rows × {} features from {files} file(s){} to {}",
        f.ids.len(),
        f.dim,
        if weights.is_some() { " (local coresets: with their weights)" } else { "" },
        a.out.display()
    );
    Ok(0)
}

/// The table's schema: `id` (utf8), `features` (fixed-size list of `dim` float32), and `weight` (uint64) when given.
fn schema(dim: usize, weighted: bool) -> Result<Arc<Schema>> {
    let dim = i32::try_from(dim).context("feature dimension too large for Parquet's fixed-size lists")?;
    let mut fields = vec![
        Field::new("id", DataType::Utf8, false),
        Field::new(
            "features",
            DataType::FixedSizeList(Arc::new(Field::new("item", DataType::Float32, false)), dim),
            false,
        ),
    ];
    if weighted {
        fields.push(Field::new("weight", DataType::UInt64, false));
    }
    Ok(Arc::new(Schema::new(fields)))
}

/// Write `f` (and `weights`) as Parquet at `out`, atomically: a temporary file beside it, renamed at the end, so a
/// process killed mid-write leaves no file that looks complete.
pub fn write_parquet(f: &Features, weights: Option<&[u64]>, meta: &[(&str, String)], out: &Path) -> Result<()> {
    let schema = schema(f.dim, weights.is_some())?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROWS_PER_BATCH))
        .set_key_value_metadata(Some(meta.iter().map(|(k, v)| KeyValue::new(k.to_string(), v.clone())).collect()))
        .build();
    if let Some(d) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = out.with_file_name(format!(".{name}.partial"));
    let written = (|| -> Result<()> {
        let file = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let mut w = ArrowWriter::try_new(file, schema.clone(), Some(props))?;
        let item = Arc::new(Field::new("item", DataType::Float32, false));
        for r0 in (0..f.ids.len()).step_by(ROWS_PER_BATCH) {
            let r1 = (r0 + ROWS_PER_BATCH).min(f.ids.len());
            let values = Float32Array::from(f.data[r0 * f.dim..r1 * f.dim].to_vec());
            let list = FixedSizeListArray::try_new(item.clone(), f.dim as i32, Arc::new(values), None)?;
            let mut cols: Vec<ArrayRef> = vec![Arc::new(StringArray::from(f.ids[r0..r1].to_vec())), Arc::new(list)];
            if let Some(wt) = weights {
                cols.push(Arc::new(UInt64Array::from(wt[r0..r1].to_vec())));
            }
            w.write(&RecordBatch::try_new(schema.clone(), cols)?)?;
        }
        w.close()?;
        Ok(())
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.context(format!("writing {}", out.display())));
    }
    std::fs::rename(&tmp, out).with_context(|| format!("renaming {} to {}", tmp.display(), out.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    /// What a reader gets back: ids, features (f32 bits), weights, and the key-value metadata.
    type Table = (Vec<String>, Vec<f32>, Option<Vec<u64>>, Vec<(String, String)>);

    fn read_back(path: &Path) -> Table {
        let b = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap()).unwrap();
        let kv: Vec<(String, String)> = b
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .map(|v| v.iter().map(|k| (k.key.clone(), k.value.clone().unwrap_or_default())).collect())
            .unwrap_or_default();
        let (mut ids, mut data, mut w) = (Vec::new(), Vec::new(), None::<Vec<u64>>);
        for batch in b.build().unwrap() {
            let batch = batch.unwrap();
            let id = batch.column_by_name("id").unwrap().as_any().downcast_ref::<StringArray>().unwrap();
            ids.extend(id.iter().map(|s| s.unwrap().to_string()));
            let f = batch.column_by_name("features").unwrap().as_any().downcast_ref::<FixedSizeListArray>().unwrap();
            let v = f.values().as_any().downcast_ref::<Float32Array>().unwrap();
            data.extend(v.values().iter().copied());
            if let Some(c) = batch.column_by_name("weight") {
                let c = c.as_any().downcast_ref::<UInt64Array>().unwrap();
                w.get_or_insert_with(Vec::new).extend(c.values().iter().copied());
            }
        }
        (ids, data, w, kv)
    }

    #[test]
    fn features_round_trip_through_parquet_bit_for_bit_across_row_groups() {
        let dir = std::env::temp_dir().join(format!("medpick-export-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (n, dim) = (ROWS_PER_BATCH + 7, 5);
        let f = Features {
            ids: (0..n).map(|i| format!("img/{i:06}.png")).collect(),
            dim,
            // Finite values of both signs and many exponents, subnormals included.
            data: (0..n * dim).map(|i| f32::from_bits((i as u32).wrapping_mul(2_654_435_761) & 0xff7f_ffff)).collect(),
            model: "litemedsam".into(),
            pool: "mean".into(),
            preprocess: "medsam-1024".into(),
        };
        let weights: Vec<u64> = (0..n as u64).map(|i| 1 + i % 13).collect();
        let out = dir.join("pool.parquet");
        write_parquet(&f, Some(&weights), &[("medpick.model", "litemedsam".into())], &out).unwrap();
        let (ids, data, w, kv) = read_back(&out);
        assert_eq!(ids, f.ids);
        assert_eq!(
            data.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            f.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        assert_eq!(w.as_deref(), Some(&weights[..]));
        assert!(kv.contains(&("medpick.model".to_string(), "litemedsam".to_string())), "{kv:?}");
        // No temporary file is left beside it.
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, vec![std::ffi::OsString::from("pool.parquet")]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
