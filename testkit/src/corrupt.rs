//! Header surgery for tests that feed the parser broken files: split a file into its header JSON
//! and data, put it back together (valid or not), edit one metadata entry.

/// Splits a file into its header JSON and data, for tests that corrupt the header.
pub fn split(file: &[u8]) -> (serde_json::Value, Vec<u8>) {
    let n = u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
    (serde_json::from_slice(&file[8..8 + n]).unwrap(), file[8 + n..].to_vec())
}

/// Assembles a file from a header text and data (no validation: tests feed it garbage).
pub fn assemble_raw(header: &str, data: &[u8]) -> Vec<u8> {
    let mut h = header.as_bytes().to_vec();
    h.resize(h.len().div_ceil(8) * 8, b' ');
    let mut f = (h.len() as u64).to_le_bytes().to_vec();
    f.extend_from_slice(&h);
    f.extend_from_slice(data);
    f
}

pub fn assemble(header: &serde_json::Value, data: &[u8]) -> Vec<u8> {
    assemble_raw(&header.to_string(), data)
}

/// Edits one metadata entry of a valid file.
pub fn with_meta(file: &[u8], key: &str, value: Option<&str>) -> Vec<u8> {
    let (mut h, d) = split(file);
    let m = h["__metadata__"].as_object_mut().unwrap();
    match value {
        Some(v) => m.insert(key.into(), v.into()),
        None => m.remove(key),
    };
    assemble(&h, &d)
}

/// A metadata value of a model file (a string entry of `__metadata__`).
pub fn metadata(file: &[u8], key: &str) -> Option<String> {
    let (h, _) = split(file);
    h["__metadata__"][key].as_str().map(str::to_owned)
}
