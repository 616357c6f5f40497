//! Reading the tensors of a `torch.save` file (`.pth` / `.bin`): a zip archive
//! holding `<name>/data.pkl` (a pickle) and `<name>/data/<key>` (raw
//! little-endian storages). Adapters of the reference ReFT-family code are
//! saved this way (BREP's `delta_vector.pth`). Only what `torch.save` writes
//! for a dict of tensors is understood — a small, fixed subset of pickle
//! interpreted without running anything; other objects are refused with an
//! error naming the file.

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// A tensor read from the file, as f32.
#[derive(Clone, Debug, PartialEq)]
pub struct PthTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// A tensor in the pickle: storage type, storage key, offset, size, stride.
type TensorRef = (String, String, i64, Vec<i64>, Vec<i64>);

#[derive(Clone, Debug)]
enum V {
    Mark,
    None,
    Int(i64),
    Str(String),
    Tuple(Vec<V>),
    Dict(Vec<(V, V)>),
    Global(String, String),
    /// `('storage', type, key, location, numel)`.
    Storage(String, String),
    Tensor(Box<TensorRef>),
    /// Any other object: kept opaque.
    Other,
}

/// The tensors of `path` by key (a dict of tensors, as `torch.save` writes it).
pub fn read_tensors(path: &Path) -> Result<BTreeMap<String, PthTensor>> {
    let bad = |what: String| {
        Error::file(
            path,
            format!("{what}; expected a torch.save file holding a dict of tensors"),
        )
    };
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| {
        bad(format!(
            "not a zip archive ({e}): files saved with torch.save(..., _use_new_zipfile_serialization=False) \
             are not read; re-save with a current torch"
        ))
    })?;
    let pkl_name = zip
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.to_string()))
        .find(|n| n.ends_with("/data.pkl") || n == "data.pkl")
        .ok_or_else(|| bad("no data.pkl in the archive".into()))?;
    let root = pkl_name.trim_end_matches("data.pkl").to_string();
    let mut pkl = Vec::new();
    zip.by_name(&pkl_name)
        .and_then(|mut f| f.read_to_end(&mut pkl).map_err(Into::into))
        .map_err(|e| bad(format!("data.pkl: {e}")))?;
    let top = unpickle(&pkl).map_err(|e| bad(format!("data.pkl: {e}")))?;
    let V::Dict(items) = top else {
        return Err(bad("the pickle is not a dict".into()));
    };
    let mut out = BTreeMap::new();
    for (k, v) in items {
        let V::Str(key) = k else {
            return Err(bad("a key is not a string".into()));
        };
        let V::Tensor(t) = v else {
            return Err(bad(format!("{key:?} is not a tensor")));
        };
        let (dtype, skey, offset, size, stride) = *t;
        let mut bytes = Vec::new();
        zip.by_name(&format!("{root}data/{skey}"))
            .and_then(|mut f| f.read_to_end(&mut bytes).map_err(Into::into))
            .map_err(|e| bad(format!("{key:?}: storage {skey}: {e}")))?;
        let (width, conv): (usize, fn(&[u8]) -> f32) = match dtype.as_str() {
            "FloatStorage" => (4, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            "HalfStorage" => (2, |b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()),
            "BFloat16Storage" => (2, |b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()),
            "DoubleStorage" => (8, |b| {
                f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
            }),
            other => {
                return Err(bad(format!(
                    "{key:?} has storage type {other}, not a float"
                )));
            }
        };
        // Contiguous row-major views only (what state dicts hold).
        let mut expect = 1i64;
        for (d, s) in size.iter().zip(&stride).rev() {
            if *d > 1 && *s != expect {
                return Err(bad(format!(
                    "{key:?} is not contiguous (stride {stride:?})"
                )));
            }
            expect *= d;
        }
        let n: usize = size.iter().map(|&d| d.max(0) as usize).product();
        let start = offset.max(0) as usize * width;
        let end = start + n * width;
        if end > bytes.len() {
            return Err(bad(format!(
                "{key:?}: its storage is too short (truncated file)"
            )));
        }
        out.insert(
            key,
            PthTensor {
                shape: size.iter().map(|&d| d as usize).collect(),
                data: bytes[start..end].chunks_exact(width).map(conv).collect(),
            },
        );
    }
    Ok(out)
}

/// Interprets the pickle opcodes `torch.save` emits for a dict of tensors.
fn unpickle(b: &[u8]) -> std::result::Result<V, String> {
    let mut stack: Vec<V> = Vec::new();
    let mut memo: BTreeMap<u32, V> = BTreeMap::new();
    let mut i = 0usize;
    let take = |i: &mut usize, n: usize| -> std::result::Result<&[u8], String> {
        let s = b.get(*i..*i + n).ok_or("truncated pickle")?;
        *i += n;
        Ok(s)
    };
    let line = |i: &mut usize| -> std::result::Result<String, String> {
        let end = b[*i..]
            .iter()
            .position(|&c| c == b'\n')
            .ok_or("truncated pickle")?;
        let s = String::from_utf8_lossy(&b[*i..*i + end]).into_owned();
        *i += end + 1;
        Ok(s)
    };
    fn pop_mark(stack: &mut Vec<V>) -> std::result::Result<Vec<V>, String> {
        let at = stack
            .iter()
            .rposition(|v| matches!(v, V::Mark))
            .ok_or("no mark")?;
        let items = stack.split_off(at + 1);
        stack.pop();
        Ok(items)
    }
    let pop = |stack: &mut Vec<V>| stack.pop().ok_or_else(|| "stack underflow".to_string());
    loop {
        let op = *b.get(i).ok_or("truncated pickle")?;
        i += 1;
        match op {
            0x80 => {
                take(&mut i, 1)?;
            }
            0x95 => {
                take(&mut i, 8)?;
            }
            b'.' => return pop(&mut stack),
            b'(' => stack.push(V::Mark),
            b'}' => stack.push(V::Dict(Vec::new())),
            b']' | b')' => stack.push(if op == b')' {
                V::Tuple(Vec::new())
            } else {
                V::Other
            }),
            b'N' => stack.push(V::None),
            0x88 | 0x89 => stack.push(V::Other),
            b'J' => {
                let s = take(&mut i, 4)?;
                stack.push(V::Int(i32::from_le_bytes([s[0], s[1], s[2], s[3]]) as i64));
            }
            b'K' => {
                let s = take(&mut i, 1)?;
                stack.push(V::Int(s[0] as i64));
            }
            b'M' => {
                let s = take(&mut i, 2)?;
                stack.push(V::Int(u16::from_le_bytes([s[0], s[1]]) as i64));
            }
            0x8a => {
                let n = take(&mut i, 1)?[0] as usize;
                let s = take(&mut i, n)?;
                let mut v: i64 = 0;
                for (k, &byte) in s.iter().enumerate().take(8) {
                    v |= (byte as i64) << (8 * k);
                }
                if n > 0 && n < 8 && s[n - 1] & 0x80 != 0 {
                    v -= 1i64 << (8 * n);
                }
                stack.push(V::Int(v));
            }
            b'G' => {
                let s = take(&mut i, 8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(s);
                let _ = f64::from_be_bytes(a);
                stack.push(V::Other);
            }
            b'X' | 0x8c => {
                let n = if op == b'X' {
                    let s = take(&mut i, 4)?;
                    u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize
                } else {
                    take(&mut i, 1)?[0] as usize
                };
                let s = take(&mut i, n)?;
                stack.push(V::Str(String::from_utf8_lossy(s).into_owned()));
            }
            b'c' => {
                let m = line(&mut i)?;
                let n = line(&mut i)?;
                stack.push(V::Global(m, n));
            }
            0x93 => {
                let n = pop(&mut stack)?;
                let m = pop(&mut stack)?;
                match (m, n) {
                    (V::Str(m), V::Str(n)) => stack.push(V::Global(m, n)),
                    _ => return Err("STACK_GLOBAL of non-strings".into()),
                }
            }
            b'q' => {
                let k = take(&mut i, 1)?[0] as u32;
                memo.insert(k, stack.last().cloned().ok_or("empty stack")?);
            }
            b'r' => {
                let s = take(&mut i, 4)?;
                let k = u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
                memo.insert(k, stack.last().cloned().ok_or("empty stack")?);
            }
            0x94 => {
                let k = memo.len() as u32;
                memo.insert(k, stack.last().cloned().ok_or("empty stack")?);
            }
            b'h' | b'j' => {
                let k = if op == b'h' {
                    take(&mut i, 1)?[0] as u32
                } else {
                    let s = take(&mut i, 4)?;
                    u32::from_le_bytes([s[0], s[1], s[2], s[3]])
                };
                stack.push(memo.get(&k).cloned().ok_or("unknown memo entry")?);
            }
            b't' => {
                let items = pop_mark(&mut stack)?;
                stack.push(V::Tuple(items));
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                if stack.len() < n {
                    return Err("stack underflow".into());
                }
                let items = stack.split_off(stack.len() - n);
                stack.push(V::Tuple(items));
            }
            b'Q' => {
                let pid = pop(&mut stack)?;
                let V::Tuple(t) = pid else {
                    return Err("a persistent id that is not a tuple".into());
                };
                match (t.first(), t.get(1), t.get(2)) {
                    (Some(V::Str(s)), Some(V::Global(_, ty)), Some(V::Str(key)))
                        if s == "storage" =>
                    {
                        stack.push(V::Storage(ty.clone(), key.clone()))
                    }
                    _ => return Err("a persistent id other than a tensor storage".into()),
                }
            }
            b'R' => {
                let args = pop(&mut stack)?;
                let f = pop(&mut stack)?;
                let V::Tuple(a) = args else {
                    return Err("REDUCE without an argument tuple".into());
                };
                let v = match &f {
                    V::Global(m, n) if m == "torch._utils" && n == "_rebuild_tensor_v2" => {
                        let ints = |v: Option<&V>| -> std::result::Result<Vec<i64>, String> {
                            match v {
                                Some(V::Tuple(t)) => t
                                    .iter()
                                    .map(|x| match x {
                                        V::Int(i) => Ok(*i),
                                        _ => Err("a tensor size that is not an int".to_string()),
                                    })
                                    .collect(),
                                _ => Err("a tensor without its size".into()),
                            }
                        };
                        match (a.first(), a.get(1)) {
                            (Some(V::Storage(ty, key)), Some(V::Int(off))) => {
                                V::Tensor(Box::new((
                                    ty.clone(),
                                    key.clone(),
                                    *off,
                                    ints(a.get(2))?,
                                    ints(a.get(3))?,
                                )))
                            }
                            _ => return Err("a tensor without its storage".into()),
                        }
                    }
                    V::Global(m, n) if m == "collections" && n == "OrderedDict" => {
                        V::Dict(Vec::new())
                    }
                    V::Global(m, n) if m == "torch._utils" && n.starts_with("_rebuild") => {
                        return Err(format!(
                            "{m}.{n}: a tensor kind other than a plain dense tensor"
                        ));
                    }
                    _ => V::Other,
                };
                stack.push(v);
            }
            0x81 => {
                pop(&mut stack)?;
                pop(&mut stack)?;
                stack.push(V::Other);
            }
            b'b' => {
                // BUILD: object state (e.g. an OrderedDict's); not needed.
                pop(&mut stack)?;
            }
            b's' => {
                let v = pop(&mut stack)?;
                let k = pop(&mut stack)?;
                if let Some(V::Dict(d)) = stack.last_mut() {
                    d.push((k, v));
                }
            }
            b'u' => {
                let items = pop_mark(&mut stack)?;
                if let Some(V::Dict(d)) = stack.last_mut() {
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        d.push((k, v));
                    }
                }
            }
            b'a' => {
                pop(&mut stack)?;
            }
            b'e' => {
                pop_mark(&mut stack)?;
            }
            b'C' | b'B' => {
                let n = if op == b'C' {
                    take(&mut i, 1)?[0] as usize
                } else {
                    let s = take(&mut i, 4)?;
                    u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize
                };
                take(&mut i, n)?;
                stack.push(V::Other);
            }
            other => return Err(format!("unsupported pickle opcode 0x{other:02x}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_zip_file_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("delta_vector.pth");
        std::fs::write(&p, b"not a zip").unwrap();
        let e = read_tensors(&p).unwrap_err().to_string();
        assert!(
            e.contains("delta_vector.pth") && e.contains("torch.save"),
            "{e}"
        );
    }

    #[test]
    fn unknown_opcodes_are_refused() {
        assert!(unpickle(&[0x80, 0x02, b'Z']).unwrap_err().contains("0x5a"));
        assert!(
            unpickle(&[0x80, 0x02, b'}'])
                .unwrap_err()
                .contains("truncated")
        );
    }
}
