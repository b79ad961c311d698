//! PyTorch checkpoints (`torch.save`, the zip format of PyTorch >= 1.6) read without Python.
//!
//! A `.pth` file is a zip archive: `PREFIX/data.pkl` is a pickle of the saved object and
//! `PREFIX/data/KEY` holds the raw bytes of each storage. A pickle is a program for a small
//! stack machine that may name any Python callable, so this reader never calls one: it runs
//! the opcodes of protocols 2-5 that hold data, builds dicts and tensors from the three
//! constructors a state dict is made of (`collections.OrderedDict`,
//! `torch._utils._rebuild_tensor_v2`, `torch._utils._rebuild_parameter`), and keeps any
//! other object (a RecBole `Config`, a `torch.device`, an enum) as an opaque placeholder
//! that is never constructed. The state dict itself must hold tensors only: an opaque
//! object there, an unknown opcode or a non-float tensor in it is an error that names it.
//!
//! The object may be the state dict itself or, as RecBole and the official MCLRec code save
//! it, a dict holding it under `state_dict` beside other entries (config, epoch, optimiser
//! state), which are read past. Tensors of float32 or float64 storages are read (any
//! strides), and given back by name.
//!
//! ```no_run
//! let bytes = std::fs::read("model.pth").unwrap();
//! let tensors = mclrec_models::pytorch::read_state_dict(&bytes, "model.pth").unwrap();
//! for (name, t) in &tensors {
//!     println!("{name} {:?}", t.shape());
//! }
//! ```

use std::collections::HashMap;
use std::io::{Cursor, Read};

use mclrec_tensor::Tensor;

use crate::weights::WeightsError;

/// Whether `bytes` look like a PyTorch zip checkpoint (a zip archive).
pub fn is_pytorch_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04")
}

/// The tensors of a `torch.save`d state dict, by name, sorted by name.
pub fn read_state_dict(
    bytes: &[u8],
    label: &str,
) -> Result<Vec<(String, Tensor<f32>)>, WeightsError> {
    let fail = |m: String| WeightsError(format!("{label}: {m}"));
    if !is_pytorch_zip(bytes) {
        let legacy = bytes.first() == Some(&0x80);
        return Err(fail(if legacy {
            "a PyTorch file in the legacy (pre-1.6) format; re-save it with torch.save(..., _use_new_zipfile_serialization=True)".into()
        } else {
            "not a PyTorch checkpoint (no zip archive)".into()
        }));
    }
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| fail(format!("not a valid zip archive ({e})")))?;
    let pkl = (0..zip.len())
        .filter_map(|i| {
            zip.name_for_index(i)
                .and_then(Result::ok)
                .map(|n| n.into_owned())
        })
        .find(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1)
        .ok_or_else(|| fail("no `data.pkl` in the archive".into()))?;
    let prefix = pkl.trim_end_matches("data.pkl").to_string();
    let program = read_entry(&mut zip, &pkl).map_err(fail)?;
    let object = Machine::default()
        .run(&program)
        .map_err(|e| fail(format!("data.pkl: {e}")))?;
    let dict = match object {
        Value::Dict(items) => {
            let inner = items.iter().find_map(|(k, v)| match (k, v) {
                (Value::Str(k), Value::Dict(d)) if k == "state_dict" => Some(d.clone()),
                _ => None,
            });
            inner.unwrap_or(items)
        }
        other => {
            return Err(fail(format!(
                "the saved object is a {}, not a state dict",
                other.kind()
            )))
        }
    };
    let mut out = Vec::new();
    for (k, v) in dict {
        let t = match (k, v) {
            (Value::Str(name), Value::Tensor(t)) => (name, t),
            (Value::Str(name), Value::Opaque(what)) => {
                return Err(fail(format!(
                    "entry `{name}` is an object of `{what}`, not a tensor; refused (nothing is executed)"
                )))
            }
            _ => continue, // plain values beside the tensors (an epoch, a name)
        };
        let (name, t) = t;
        let raw = read_entry(&mut zip, &format!("{prefix}data/{}", t.storage.key)).map_err(fail)?;
        let tensor = t
            .materialise(&raw)
            .map_err(|e| fail(format!("`{name}`: {e}")))?;
        out.push((name, tensor));
    }
    if out.is_empty() {
        return Err(fail("the state dict holds no tensors".into()));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn read_entry<R: Read + std::io::Seek>(
    zip: &mut zip::ZipArchive<R>,
    name: &str,
) -> Result<Vec<u8>, String> {
    let mut f = zip
        .by_name(name)
        .map_err(|e| format!("`{name}` in the archive: {e}"))?;
    let mut buf = Vec::with_capacity(f.size().min(1 << 30) as usize);
    f.read_to_end(&mut buf)
        .map_err(|e| format!("`{name}` in the archive: {e}"))?;
    Ok(buf)
}

/// The element types of storages this reader accepts.
#[derive(Clone, Debug, PartialEq)]
enum Dtype {
    F32,
    F64,
    /// Any other storage (read past; an error if a state-dict tensor uses it).
    Other(String),
}

#[derive(Clone, Debug, PartialEq)]
struct Storage {
    dtype: Dtype,
    key: String,
    numel: usize,
}

#[derive(Clone, Debug, PartialEq)]
struct TensorRef {
    storage: Storage,
    offset: usize,
    size: Vec<usize>,
    stride: Vec<usize>,
}

impl TensorRef {
    /// The tensor's values gathered from its storage's bytes (little-endian, as torch
    /// writes them on every platform it runs on).
    fn materialise(&self, raw: &[u8]) -> Result<Tensor<f32>, String> {
        let width = match &self.storage.dtype {
            Dtype::F32 => 4,
            Dtype::F64 => 8,
            Dtype::Other(ty) => {
                return Err(format!(
                    "a `{ty}` tensor: only float32 and float64 tensors are read"
                ))
            }
        };
        let available = raw.len() / width;
        if available < self.storage.numel {
            return Err(format!(
                "its storage holds {available} values, {} expected",
                self.storage.numel
            ));
        }
        if self.size.len() != self.stride.len() {
            return Err("size and stride differ in length".into());
        }
        let numel = self
            .size
            .iter()
            .try_fold(1usize, |a, &s| a.checked_mul(s))
            .ok_or("its size overflows")?;
        // The last element read must lie inside the storage.
        let last = self
            .size
            .iter()
            .zip(&self.stride)
            .try_fold(self.offset, |a, (&s, &st)| {
                if s == 0 {
                    Some(a)
                } else {
                    a.checked_add((s - 1).checked_mul(st)?)
                }
            });
        if numel > 0 && last.is_none_or(|l| l >= self.storage.numel) {
            return Err("its size and strides reach past its storage".into());
        }
        // More values than the storage holds means overlapping (e.g. zero) strides.
        if numel > self.storage.numel {
            return Err("overlapping strides (more values than its storage holds)".into());
        }
        let value = |i: usize| -> f32 {
            let b = &raw[i * width..(i + 1) * width];
            match self.storage.dtype {
                Dtype::F32 => f32::from_le_bytes(b.try_into().expect("4 bytes")),
                _ => f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32,
            }
        };
        let mut values = Vec::with_capacity(numel);
        let mut index = vec![0usize; self.size.len()];
        for _ in 0..numel {
            let at = self.offset
                + index
                    .iter()
                    .zip(&self.stride)
                    .map(|(i, s)| i * s)
                    .sum::<usize>();
            values.push(value(at));
            // Row-major odometer over the size.
            for d in (0..index.len()).rev() {
                index[d] += 1;
                if index[d] < self.size[d] {
                    break;
                }
                index[d] = 0;
            }
        }
        Ok(Tensor::from_vec(values, &self.size))
    }
}

/// The values of the restricted pickle machine.
#[derive(Clone, Debug, PartialEq)]
enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global(String, String),
    Storage(Storage),
    Tensor(TensorRef),
    /// An object of this class (or bytes): kept in place, never constructed.
    Opaque(String),
    Mark,
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::Global(..) => "global",
            Value::Storage(_) => "storage",
            Value::Tensor(_) => "tensor",
            Value::Opaque(_) => "opaque object",
            Value::Mark => "mark",
        }
    }

    /// How many values this one is made of (itself and everything inside it).
    fn weight(&self) -> usize {
        match self {
            Value::Tuple(v) | Value::List(v) => 1 + v.iter().map(Value::weight).sum::<usize>(),
            Value::Dict(d) => {
                1 + d
                    .iter()
                    .map(|(k, v)| k.weight() + v.weight())
                    .sum::<usize>()
            }
            _ => 1,
        }
    }

    fn usize(&self, what: &str) -> Result<usize, String> {
        match self {
            Value::Int(v) if *v >= 0 => Ok(*v as usize),
            other => Err(format!(
                "{what}: expected a non-negative int, got {}",
                other.kind()
            )),
        }
    }

    fn usizes(&self, what: &str) -> Result<Vec<usize>, String> {
        match self {
            Value::Tuple(v) | Value::List(v) => v.iter().map(|x| x.usize(what)).collect(),
            other => Err(format!("{what}: expected a tuple, got {}", other.kind())),
        }
    }
}

/// The most values the machine may create, copies from its memo included (a state dict
/// needs a few thousand; a pickle that copies a value into itself would otherwise double
/// its memory with every few bytes).
const MAX_VALUES: usize = 1 << 22;

#[derive(Default)]
struct Machine {
    stack: Vec<Value>,
    memo: HashMap<u32, Value>,
    created: usize,
}

/// Reads little-endian integers and byte strings from the program.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| format!("truncated at byte {}", self.at))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().expect("2")))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }
    fn line(&mut self) -> Result<String, String> {
        let rest = &self.bytes[self.at..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("unterminated line")?;
        let s = std::str::from_utf8(&rest[..n]).map_err(|_| "a name that is not UTF-8")?;
        self.at += n + 1;
        Ok(s.to_string())
    }
    fn utf8(&mut self, n: usize) -> Result<String, String> {
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| "a string that is not UTF-8".to_string())
    }
}

impl Machine {
    fn pop(&mut self) -> Result<Value, String> {
        self.stack
            .pop()
            .ok_or_else(|| "stack underflow".to_string())
    }

    fn push(&mut self, v: Value) -> Result<(), String> {
        self.count(1)?;
        self.stack.push(v);
        Ok(())
    }

    fn count(&mut self, values: usize) -> Result<(), String> {
        self.created += values;
        if self.created > MAX_VALUES {
            return Err(format!("more than {MAX_VALUES} values; refused"));
        }
        Ok(())
    }

    /// The values above the topmost mark (the mark removed).
    fn pop_mark(&mut self) -> Result<Vec<Value>, String> {
        let at = self
            .stack
            .iter()
            .rposition(|v| *v == Value::Mark)
            .ok_or("no mark on the stack")?;
        let items = self.stack.split_off(at + 1);
        self.stack.pop();
        Ok(items)
    }

    fn top(&mut self) -> Result<&mut Value, String> {
        self.stack
            .last_mut()
            .ok_or_else(|| "stack underflow".to_string())
    }

    fn memoise(&mut self, key: u32) -> Result<(), String> {
        let v = self.stack.last().cloned().ok_or("stack underflow")?;
        self.memo.insert(key, v);
        Ok(())
    }

    fn get(&mut self, key: u32) -> Result<(), String> {
        let weight = self
            .memo
            .get(&key)
            .ok_or_else(|| format!("memo {key} not set"))?
            .weight();
        // The copy is counted before it is made.
        self.count(weight)?;
        let v = self.memo[&key].clone();
        self.stack.push(v);
        Ok(())
    }

    fn run(mut self, program: &[u8]) -> Result<Value, String> {
        let mut r = Reader {
            bytes: program,
            at: 0,
        };
        loop {
            let at = r.at;
            let op = r.u8()?;
            match op {
                0x80 => {
                    r.u8()?; // PROTO n
                }
                0x95 => {
                    r.u64()?; // FRAME length
                }
                b'.' => return self.pop(),
                b'}' => self.push(Value::Dict(Vec::new()))?,
                b']' => self.push(Value::List(Vec::new()))?,
                b')' => self.push(Value::Tuple(Vec::new()))?,
                b'(' => self.push(Value::Mark)?,
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Value::Tuple(items))?
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        return Err("stack underflow".into());
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.push(Value::Tuple(items))?
                }
                b'q' => {
                    let k = r.u8()? as u32;
                    self.memoise(k)?
                }
                b'r' => {
                    let k = r.u32()?;
                    self.memoise(k)?
                }
                0x94 => {
                    let k = self.memo.len() as u32;
                    self.memoise(k)?
                }
                b'h' => {
                    let k = r.u8()? as u32;
                    self.get(k)?
                }
                b'j' => {
                    let k = r.u32()?;
                    self.get(k)?
                }
                b'X' => {
                    let n = r.u32()? as usize;
                    let s = r.utf8(n)?;
                    self.push(Value::Str(s))?
                }
                0x8c => {
                    let n = r.u8()? as usize;
                    let s = r.utf8(n)?;
                    self.push(Value::Str(s))?
                }
                0x8d => {
                    let n = usize::try_from(r.u64()?).map_err(|_| "string too long")?;
                    let s = r.utf8(n)?;
                    self.push(Value::Str(s))?
                }
                b'J' => {
                    let v = r.u32()? as i32 as i64;
                    self.push(Value::Int(v))?
                }
                b'K' => {
                    let v = r.u8()? as i64;
                    self.push(Value::Int(v))?
                }
                b'M' => {
                    let v = r.u16()? as i64;
                    self.push(Value::Int(v))?
                }
                0x8a => {
                    // LONG1: a little-endian two's-complement integer of n bytes.
                    let n = r.u8()? as usize;
                    let b = r.take(n)?;
                    if n > 8 {
                        return Err(format!("an integer of {n} bytes"));
                    }
                    let mut v: i64 = 0;
                    for (i, &x) in b.iter().enumerate() {
                        v |= (x as i64) << (8 * i);
                    }
                    if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                        v -= 1i64 << (8 * n);
                    }
                    self.push(Value::Int(v))?
                }
                b'G' => {
                    let v = f64::from_be_bytes(r.take(8)?.try_into().expect("8"));
                    self.push(Value::Float(v))?
                }
                0x88 => self.push(Value::Bool(true))?,
                0x89 => self.push(Value::Bool(false))?,
                b'N' => self.push(Value::None)?,
                b'c' => {
                    let module = r.line()?;
                    let name = r.line()?;
                    self.push(Value::Global(module, name))?
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(m), Value::Str(n)) => self.push(Value::Global(m, n))?,
                        _ => return Err("STACK_GLOBAL needs two strings".into()),
                    }
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = reduce(callable, args)?;
                    self.push(v)?
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let v = persistent_load(pid)?;
                    self.push(v)?
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    match self.top()? {
                        Value::Dict(d) => d.push((k, v)),
                        other => return Err(format!("SETITEM on a {}", other.kind())),
                    }
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    if items.len() % 2 != 0 {
                        return Err("SETITEMS with an odd number of values".into());
                    }
                    let mut it = items.into_iter();
                    let Value::Dict(d) = self.top()? else {
                        return Err("SETITEMS on a value that is not a dict".into());
                    };
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        d.push((k, v));
                    }
                }
                b'a' => {
                    let v = self.pop()?;
                    match self.top()? {
                        Value::List(l) => l.push(v),
                        other => return Err(format!("APPEND on a {}", other.kind())),
                    }
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    match self.top()? {
                        Value::List(l) => l.extend(items),
                        other => return Err(format!("APPENDS on a {}", other.kind())),
                    }
                }
                b'b' => {
                    // BUILD: the state of a dict (a state dict's `_metadata`), a tensor or an
                    // opaque object is not needed.
                    self.pop()?;
                    match self.top()? {
                        Value::Dict(_) | Value::Tensor(_) | Value::Opaque(_) => {}
                        other => return Err(format!("BUILD on a {}", other.kind())),
                    }
                }
                0x81 | 0x92 => {
                    // NEWOBJ(_EX): `cls.__new__(cls, *args)`, kept opaque, never run.
                    if op == 0x92 {
                        self.pop()?; // kwargs
                    }
                    self.pop()?; // args
                    let cls = self.pop()?;
                    let Value::Global(module, name) = cls else {
                        return Err(format!("NEWOBJ of a {}", cls.kind()));
                    };
                    self.push(Value::Opaque(format!("{module}.{name}")))?
                }
                b'B' | b'C' | 0x8e | 0x96 => {
                    // BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8: data a state dict
                    // does not use.
                    let n = match op {
                        b'C' => r.u8()? as usize,
                        b'B' => r.u32()? as usize,
                        _ => usize::try_from(r.u64()?).map_err(|_| "bytes too long")?,
                    };
                    r.take(n)?;
                    self.push(Value::Opaque("bytes".into()))?
                }
                0x8b => {
                    // LONG4: an integer too large for any size or offset here.
                    let n = r.u32()? as usize;
                    r.take(n)?;
                    self.push(Value::Opaque("int".into()))?
                }
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = self.stack.last().cloned().ok_or("stack underflow")?;
                    let weight = v.weight();
                    self.count(weight)?;
                    self.stack.push(v);
                }
                0x8f => self.push(Value::List(Vec::new()))?, // EMPTY_SET, as a list
                0x90 => {
                    let items = self.pop_mark()?;
                    match self.top()? {
                        Value::List(l) => l.extend(items),
                        other => return Err(format!("ADDITEMS on a {}", other.kind())),
                    }
                }
                0x91 => {
                    let items = self.pop_mark()?;
                    self.push(Value::List(items))?
                }
                other => {
                    return Err(format!(
                        "opcode 0x{other:02x} at byte {at} is not one a state dict needs; refused"
                    ))
                }
            }
        }
    }
}

/// The callables a state dict is built from, and nothing else.
fn reduce(callable: Value, args: Value) -> Result<Value, String> {
    let Value::Global(module, name) = callable else {
        return Err(format!("REDUCE of a {}", callable.kind()));
    };
    let Value::Tuple(args) = args else {
        return Err("REDUCE with arguments that are not a tuple".into());
    };
    match (module.as_str(), name.as_str()) {
        ("collections", "OrderedDict") if args.is_empty() => Ok(Value::Dict(Vec::new())),
        ("torch._utils", "_rebuild_tensor_v2") if args.len() >= 4 => {
            let Value::Storage(storage) = &args[0] else {
                return Err(format!("_rebuild_tensor_v2 of a {}", args[0].kind()));
            };
            Ok(Value::Tensor(TensorRef {
                storage: storage.clone(),
                offset: args[1].usize("storage offset")?,
                size: args[2].usizes("size")?,
                stride: args[3].usizes("stride")?,
            }))
        }
        ("torch._utils", "_rebuild_parameter") if !args.is_empty() => match &args[0] {
            t @ Value::Tensor(_) => Ok(t.clone()),
            other => Err(format!("_rebuild_parameter of a {}", other.kind())),
        },
        // Anything else stays a placeholder of its class: never called.
        _ => Ok(Value::Opaque(format!("{module}.{name}"))),
    }
}

/// `('storage', torch.FloatStorage, key, location, numel)`: a storage in `data/KEY`.
fn persistent_load(pid: Value) -> Result<Value, String> {
    let Value::Tuple(t) = pid else {
        return Err(format!("a persistent id that is a {}", pid.kind()));
    };
    let [Value::Str(kind), Value::Global(module, ty), Value::Str(key), _location, numel] = &t[..]
    else {
        return Err("a persistent id that is not a storage".into());
    };
    if kind != "storage" || module != "torch" {
        return Err(format!("a persistent id `{kind}` of `{module}`"));
    }
    let dtype = match ty.as_str() {
        "FloatStorage" => Dtype::F32,
        "DoubleStorage" => Dtype::F64,
        other => Dtype::Other(other.to_string()),
    };
    if key.contains(['/', '\\']) || key.contains("..") {
        return Err(format!("a storage key `{key}` that is not a plain name"));
    }
    Ok(Value::Storage(Storage {
        dtype,
        key: key.clone(),
        numel: numel.usize("storage size")?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pickle of `{'state_dict': OrderedDict(w=tensor)}` with a transposed 2 x 3 view of a
    /// 6-value storage, written as `torch.save` writes it (protocol 2).
    fn program(global: &str) -> Vec<u8> {
        let mut p = vec![0x80, 2, b'}'];
        let s = |p: &mut Vec<u8>, v: &str| {
            p.push(b'X');
            p.extend((v.len() as u32).to_le_bytes());
            p.extend(v.as_bytes());
        };
        s(&mut p, "state_dict");
        p.extend(b"ccollections\nOrderedDict\n)R(");
        s(&mut p, "w");
        p.extend(format!("c{global}\n(").as_bytes());
        p.push(b'(');
        s(&mut p, "storage");
        p.extend(b"ctorch\nFloatStorage\n");
        s(&mut p, "0");
        s(&mut p, "cpu");
        p.extend([
            b'K', 6, b't', b'Q', b'K', 0, b'K', 2, b'K', 3, 0x86, b'K', 1, b'K', 2, 0x86, 0x89,
        ]);
        p.extend(b"ccollections\nOrderedDict\n)R");
        p.extend([b't', b'R', b'u', b's', b'.']);
        p
    }

    fn archive(pickle: &[u8], storage: &[f32]) -> Vec<u8> {
        let mut buf = Cursor::new(Vec::new());
        let mut w = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        use std::io::Write;
        w.start_file("archive/data.pkl", opts).unwrap();
        w.write_all(pickle).unwrap();
        w.start_file("archive/data/0", opts).unwrap();
        for v in storage {
            w.write_all(&v.to_le_bytes()).unwrap();
        }
        w.finish().unwrap();
        buf.into_inner()
    }

    #[test]
    fn a_strided_tensor_of_a_state_dict_is_read_by_name() {
        let bytes = archive(
            &program("torch._utils\n_rebuild_tensor_v2"),
            &[0., 1., 2., 3., 4., 5.],
        );
        let t = read_state_dict(&bytes, "m.pth").unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].0, "w");
        assert_eq!(t[0].1.shape(), &[2, 3]);
        // stride (1, 2): element (i, j) is storage[i + 2 j].
        assert_eq!(t[0].1.to_vec(), vec![0., 2., 4., 1., 3., 5.]);
    }

    #[test]
    fn any_other_callable_or_a_short_storage_is_refused() {
        let bytes = archive(&program("os\nsystem"), &[0.; 6]);
        let e = read_state_dict(&bytes, "m.pth").unwrap_err().to_string();
        assert!(
            e.contains("entry `w` is an object of `os.system`, not a tensor; refused"),
            "{e}"
        );
        let bytes = archive(&program("torch._utils\n_rebuild_tensor_v2"), &[0.; 5]);
        let e = read_state_dict(&bytes, "m.pth").unwrap_err().to_string();
        assert!(
            e.contains("`w`: its storage holds 5 values, 6 expected"),
            "{e}"
        );
        let e = read_state_dict(b"\x80\x02}q\x00.", "old.pth")
            .unwrap_err()
            .to_string();
        assert!(e.contains("legacy"), "{e}");
    }

    /// `X`-encoded string.
    fn text(p: &mut Vec<u8>, v: &str) {
        p.push(b'X');
        p.extend((v.len() as u32).to_le_bytes());
        p.extend(v.as_bytes());
    }

    /// A tensor of `numel` values of storage `key` of type `ty`, contiguous, 1-d.
    fn tensor(p: &mut Vec<u8>, ty: &str, key: &str, numel: u8) {
        p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n((");
        text(p, "storage");
        p.extend(format!("ctorch\n{ty}\n").as_bytes());
        text(p, key);
        text(p, "cpu");
        p.extend([
            b'K', numel, b't', b'Q', b'K', 0, b'K', numel, 0x85, b'K', 1, 0x85, 0x89,
        ]);
        p.extend(b"ccollections\nOrderedDict\n)Rt");
        p.push(b'R');
    }

    #[test]
    fn a_recbole_checkpoint_dict_is_read_past_its_config_and_optimiser() {
        // {'config': Config.__new__ + BUILD({'device': torch.device('cpu')}), 'epoch': 5,
        //  'state_dict': OrderedDict(w=float tensor), 'other_parameter': b'..',
        //  'optimizer': {'step': a LongStorage tensor}}, as RecBole's `_save_checkpoint`.
        let mut p = vec![0x80, 2, b'}', b'('];
        text(&mut p, "config");
        p.extend(b"crecbole.config.configurator\nConfig\n)\x81}");
        text(&mut p, "device");
        p.extend(b"ctorch\ndevice\n");
        text(&mut p, "cpu");
        p.extend([0x85, b'R', b's', b'b']);
        text(&mut p, "epoch");
        p.extend([b'K', 5]);
        text(&mut p, "state_dict");
        p.extend(b"ccollections\nOrderedDict\n)R(");
        text(&mut p, "w");
        tensor(&mut p, "FloatStorage", "0", 6);
        p.push(b'u');
        text(&mut p, "other_parameter");
        p.extend([b'C', 3, 1, 2, 3]);
        text(&mut p, "optimizer");
        p.push(b'}');
        text(&mut p, "step");
        tensor(&mut p, "LongStorage", "1", 1);
        p.extend([b's', b'u', b'.']);
        let bytes = archive(&p, &[1., 2., 3., 4., 5., 6.]);
        let t = read_state_dict(&bytes, "recbole.pth").unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(
            (t[0].0.as_str(), t[0].1.to_vec()),
            ("w", vec![1., 2., 3., 4., 5., 6.])
        );
        // A non-float tensor inside the state dict is named.
        let mut q = vec![0x80, 2, b'}'];
        text(&mut q, "w");
        tensor(&mut q, "LongStorage", "0", 6);
        q.extend([b's', b'.']);
        let e = read_state_dict(&archive(&q, &[0.; 12]), "m.pth")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`w`: a `LongStorage` tensor: only float32 and float64"),
            "{e}"
        );
    }

    #[test]
    fn a_pickle_that_copies_a_value_into_itself_is_stopped_not_grown() {
        let mut doubling = vec![0x80, 2, b']', b'q', 0];
        for _ in 0..64 {
            doubling.extend([b'h', 0, b'a', b'q', 0]);
        }
        doubling.push(b'.');
        let e = Machine::default().run(&doubling).unwrap_err();
        assert!(e.contains("values; refused"), "{e}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// Random edits of the pickle and random bytes are errors, never a panic.
        #[test]
        fn reading_never_panics(
            edits in proptest::collection::vec((proptest::num::usize::ANY, proptest::num::u8::ANY), 1..5),
            noise in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
        ) {
            let mut p = program("torch._utils\n_rebuild_tensor_v2");
            for &(at, b) in &edits {
                let at = at % p.len();
                p[at] = b;
            }
            let _ = read_state_dict(&archive(&p, &[1.; 6]), "m.pth");
            let _ = Machine::default().run(&noise);
            let mut z = archive(&program("torch._utils\n_rebuild_tensor_v2"), &[1.; 6]);
            for &(at, b) in &edits {
                let at = at % z.len();
                z[at] = b;
            }
            let _ = read_state_dict(&z, "m.pth");
        }
    }
}
