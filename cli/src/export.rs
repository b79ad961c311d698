//! `recommend --all --out FILE`: the top-k items of every user of a dataset, as TSV or
//! Parquet, written in blocks of users scored in parallel (memory: one block, whatever the
//! number of users), to a temporary file renamed into place at the end.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use mclrec_models::Recommender;
use mclrec_trainer::evaluate::recommend;
use mclrec_trainer::Dataset;
use rayon::prelude::*;

/// Users scored per block (each block is split across the threads).
const BLOCK: usize = 8192;
/// Users per call of the scorer within a block.
const CHUNK: usize = 256;

/// The output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// `user<TAB>rank<TAB>item<TAB>score`, one line per recommendation, with a header.
    Tsv,
    /// The same four columns in a Parquet file (snappy-compressed).
    Parquet,
}

impl ExportFormat {
    /// Parquet for a `.parquet` file, else TSV.
    pub fn of(path: &Path) -> ExportFormat {
        if path.extension().is_some_and(|e| e == "parquet") {
            ExportFormat::Parquet
        } else {
            ExportFormat::Tsv
        }
    }
}

/// What an export did.
pub struct Exported {
    /// Users written.
    pub users: usize,
    /// Seconds taken.
    pub seconds: f64,
}

/// One block's recommendations: per user, `(item id, score)` best first.
type Block = Vec<Vec<(usize, f32)>>;

/// Writes the top `k` of every user of `data` (their whole history as input, its last
/// `max_len` items; history items excluded unless `include_history`).
pub fn export_all(
    model: &dyn Recommender<f32>,
    data: &Dataset,
    k: usize,
    include_history: bool,
    path: &Path,
    format: ExportFormat,
) -> Result<Exported, String> {
    let start = Instant::now();
    let max_len = model.max_len();
    let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let tmp = mclrec_models::weights::temporary_path(path);
    let n = data.n_users();
    let write = || -> Result<(), String> {
        let file = std::fs::File::create(&tmp).map_err(|e| fail(&e))?;
        let mut sink = Sink::new(file, format).map_err(|e| fail(&e))?;
        let score_block = |users: std::ops::Range<usize>| -> Block {
            let ids: Vec<usize> = users.collect();
            ids.par_chunks(CHUNK)
                .flat_map_iter(|chunk| {
                    let inputs: Vec<&[usize]> = chunk
                        .iter()
                        .map(|&u| {
                            let s = &data.sequences[u];
                            &s[s.len().saturating_sub(max_len)..]
                        })
                        .collect();
                    let exclude: Vec<Vec<usize>> = chunk
                        .iter()
                        .map(|&u| {
                            if include_history {
                                Vec::new()
                            } else {
                                data.sequences[u].clone()
                            }
                        })
                        .collect();
                    recommend(model, chunk, &inputs, &exclude, k)
                })
                .collect()
        };
        for b in (0..n).step_by(BLOCK) {
            let users = b..(b + BLOCK).min(n);
            let recs = score_block(users.clone());
            sink.write(data, users, &recs).map_err(|e| fail(&e))?;
        }
        sink.finish().map_err(|e| fail(&e))?;
        std::fs::rename(&tmp, path).map_err(|e| fail(&e))
    };
    if let Err(e) = write() {
        // No half-written file is left behind.
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(Exported {
        users: n,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Where the rows go.
enum Sink {
    Tsv(std::io::BufWriter<std::fs::File>),
    Parquet(Box<parquet::file::writer::SerializedFileWriter<std::fs::File>>),
}

const PARQUET_SCHEMA: &str = "message recommendations {
    required binary user (UTF8);
    required int32 rank;
    required binary item (UTF8);
    required float score;
}";

impl Sink {
    fn new(file: std::fs::File, format: ExportFormat) -> Result<Sink, String> {
        Ok(match format {
            ExportFormat::Tsv => {
                let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
                writeln!(w, "user\trank\titem\tscore").map_err(|e| e.to_string())?;
                Sink::Tsv(w)
            }
            ExportFormat::Parquet => {
                use parquet::basic::Compression;
                use parquet::file::properties::WriterProperties;
                let schema = parquet::schema::parser::parse_message_type(PARQUET_SCHEMA)
                    .map_err(|e| e.to_string())?;
                let props = WriterProperties::builder()
                    .set_compression(Compression::SNAPPY)
                    .build();
                let w = parquet::file::writer::SerializedFileWriter::new(
                    file,
                    Arc::new(schema),
                    Arc::new(props),
                )
                .map_err(|e| e.to_string())?;
                Sink::Parquet(Box::new(w))
            }
        })
    }

    fn write(
        &mut self,
        data: &Dataset,
        users: std::ops::Range<usize>,
        recs: &Block,
    ) -> Result<(), String> {
        match self {
            Sink::Tsv(w) => {
                for (u, top) in users.zip(recs) {
                    for (rank, (item, score)) in top.iter().enumerate() {
                        writeln!(
                            w,
                            "{}\t{}\t{}\t{score}",
                            data.users[u],
                            rank + 1,
                            data.items[*item]
                        )
                        .map_err(|e| e.to_string())?;
                    }
                }
                Ok(())
            }
            Sink::Parquet(w) => {
                use parquet::data_type::{ByteArray, ByteArrayType, FloatType, Int32Type};
                let (mut user, mut rank, mut item, mut score) =
                    (Vec::new(), Vec::new(), Vec::new(), Vec::new());
                for (u, top) in users.zip(recs) {
                    for (r, (i, s)) in top.iter().enumerate() {
                        user.push(ByteArray::from(data.users[u].as_str()));
                        rank.push(r as i32 + 1);
                        item.push(ByteArray::from(data.items[*i].as_str()));
                        score.push(*s);
                    }
                }
                let e = |e: parquet::errors::ParquetError| e.to_string();
                let mut group = w.next_row_group().map_err(e)?;
                let mut column = 0;
                while let Some(mut col) = group.next_column().map_err(e)? {
                    match column {
                        0 => col.typed::<ByteArrayType>().write_batch(&user, None, None),
                        1 => col.typed::<Int32Type>().write_batch(&rank, None, None),
                        2 => col.typed::<ByteArrayType>().write_batch(&item, None, None),
                        _ => col.typed::<FloatType>().write_batch(&score, None, None),
                    }
                    .map_err(e)?;
                    col.close().map_err(e)?;
                    column += 1;
                }
                group.close().map_err(e)?;
                Ok(())
            }
        }
    }

    fn finish(self) -> Result<(), String> {
        match self {
            Sink::Tsv(mut w) => {
                w.flush().map_err(|e| e.to_string())?;
                w.get_ref().sync_all().map_err(|e| e.to_string())
            }
            Sink::Parquet(w) => w.close().map(|_| ()).map_err(|e| e.to_string()),
        }
    }
}
