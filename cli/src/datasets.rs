//! Dataset names: the embedded ones, or a path; with the content hash that identifies them.

use std::path::Path;

use mclrec_trainer::{Dataset, Format, Preset};
use sha2::{Digest, Sha256};

const BEAUTY: &str = include_str!("../../data/amazon-beauty.txt");
const SPORTS: &str = include_str!("../../data/amazon-sports.txt");

/// The built-in datasets: name, file name, text.
const BUILT_IN: [(&str, &str, &str); 2] = [
    ("beauty", "amazon-beauty.txt", BEAUTY),
    ("sports", "amazon-sports.txt", SPORTS),
];

/// A dataset and where it came from.
pub struct Source {
    /// The parsed data.
    pub data: Dataset,
    /// `beauty` / `sports`, or the file's absolute path (so a run resumes from anywhere).
    pub name: String,
    /// The SHA-256 of the bytes, in hex.
    pub sha256: String,
    /// The built-in dataset these bytes are (by name or by content), if any.
    pub built_in: Option<Preset>,
}

/// The SHA-256 of `bytes` in lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `beauty` and `sports` are built into the binary; anything else is a file path.
pub fn load_dataset(name: &str) -> Result<Dataset, String> {
    load_source(name).map(|s| s.data)
}

/// [`load_dataset`] with the dataset's identity.
pub fn load_source(name: &str) -> Result<Source, String> {
    let parsed = |bytes: &[u8], file: &str, short: String, format| {
        let (data, problems) = Dataset::parse(bytes, file, short, format);
        match problems.into_iter().next() {
            Some(p) => Err(p.to_string()),
            None => Ok(data),
        }
    };
    if let Some(&(short, file, text)) = BUILT_IN.iter().find(|b| b.0 == name) {
        return Ok(Source {
            data: parsed(text.as_bytes(), file, file.to_string(), Format::Text)?,
            name: short.to_string(),
            sha256: sha256_hex(text.as_bytes()),
            built_in: Preset::parse(short),
        });
    }
    let path = Path::new(name);
    if !path.exists() {
        return Err(format!(
            "{name}: no such file (datasets are `beauty`, `sports`, or a path)"
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{name}: cannot read ({e})"))?;
    let short = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| name.to_string());
    let data = parsed(&bytes, name, short, Format::of(path))?;
    let sha256 = sha256_hex(&bytes);
    let built_in = BUILT_IN
        .iter()
        .find(|b| b.2.len() == bytes.len() && sha256_hex(b.2.as_bytes()) == sha256)
        .and_then(|b| Preset::parse(b.0));
    let absolute = std::fs::canonicalize(path)
        .map_err(|e| format!("{name}: cannot resolve the path ({e})"))?;
    Ok(Source {
        data,
        name: absolute.to_string_lossy().into_owned(),
        sha256,
        built_in,
    })
}
