//! Just enough of the ONNX protobuf schema to write graphs, declared with prost
//! derives (field numbers from onnx.proto), plus a small graph-building API.
//! Large initializers go to an external data file next to the model, so graphs
//! are not bound by protobuf's 2 GiB limit.

use crate::error::{Error, Result};
use prost::Message;
use std::io::Write;
use std::path::Path;

#[derive(Clone, PartialEq, Message)]
pub struct ModelProto {
    #[prost(int64, tag = "1")]
    pub ir_version: i64,
    #[prost(string, tag = "2")]
    pub producer_name: String,
    #[prost(string, tag = "3")]
    pub producer_version: String,
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSetIdProto>,
    #[prost(message, repeated, tag = "14")]
    pub metadata_props: Vec<StringStringEntryProto>,
}

#[derive(Clone, PartialEq, Message)]
pub struct OperatorSetIdProto {
    #[prost(string, tag = "1")]
    pub domain: String,
    #[prost(int64, tag = "2")]
    pub version: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct StringStringEntryProto {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct GraphProto {
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
    #[prost(message, repeated, tag = "12")]
    pub output: Vec<ValueInfoProto>,
}

#[derive(Clone, PartialEq, Message)]
pub struct NodeProto {
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    #[prost(string, tag = "3")]
    pub name: String,
    #[prost(string, tag = "4")]
    pub op_type: String,
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
    #[prost(string, tag = "7")]
    pub domain: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct AttributeProto {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(float, tag = "2")]
    pub f: f32,
    #[prost(int64, tag = "3")]
    pub i: i64,
    #[prost(bytes = "vec", tag = "4")]
    pub s: Vec<u8>,
    #[prost(message, optional, tag = "5")]
    pub t: Option<TensorProto>,
    #[prost(float, repeated, tag = "7")]
    pub floats: Vec<f32>,
    #[prost(int64, repeated, tag = "8")]
    pub ints: Vec<i64>,
    #[prost(int32, tag = "20")]
    pub r#type: i32,
}

#[derive(Clone, PartialEq, Message)]
pub struct TensorProto {
    #[prost(int64, repeated, tag = "1")]
    pub dims: Vec<i64>,
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    #[prost(string, tag = "8")]
    pub name: String,
    #[prost(bytes = "vec", tag = "9")]
    pub raw_data: Vec<u8>,
    #[prost(message, repeated, tag = "13")]
    pub external_data: Vec<StringStringEntryProto>,
    #[prost(int32, tag = "14")]
    pub data_location: i32,
}

#[derive(Clone, PartialEq, Message)]
pub struct ValueInfoProto {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TypeProto {
    #[prost(message, optional, tag = "1")]
    pub tensor_type: Option<TensorTypeProto>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TensorTypeProto {
    #[prost(int32, tag = "1")]
    pub elem_type: i32,
    #[prost(message, optional, tag = "2")]
    pub shape: Option<TensorShapeProto>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TensorShapeProto {
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<Dimension>,
}

/// `oneof value { dim_value = 1; dim_param = 2; }` — two optional fields
/// encode the same bytes.
#[derive(Clone, PartialEq, Message)]
pub struct Dimension {
    #[prost(int64, optional, tag = "1")]
    pub dim_value: Option<i64>,
    #[prost(string, optional, tag = "2")]
    pub dim_param: Option<String>,
}

/// ONNX element types used here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum DType {
    F32 = 1,
    U8 = 2,
    I8 = 3,
    I32 = 6,
    I64 = 7,
    Bool = 9,
    F16 = 10,
}

impl DType {
    fn size(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::I64 => 8,
            DType::F16 => 2,
            DType::U8 | DType::I8 | DType::Bool => 1,
        }
    }
}

/// A dimension of a graph input or output: fixed, or named (symbolic).
#[derive(Clone, Debug)]
pub enum Dim {
    Fixed(i64),
    Named(String),
}

impl From<i64> for Dim {
    fn from(v: i64) -> Self {
        Dim::Fixed(v)
    }
}

impl From<&str> for Dim {
    fn from(v: &str) -> Self {
        Dim::Named(v.to_string())
    }
}

/// A node attribute value.
#[derive(Clone, Debug)]
pub enum Attr {
    Int(i64),
    Float(f32),
    Ints(Vec<i64>),
    Floats(Vec<f32>),
    Str(String),
    Tensor(TensorProto),
}

pub const MS_DOMAIN: &str = "com.microsoft";

/// Initializers of at least this many bytes go to the external data file.
const EXTERNAL_THRESHOLD: usize = 1024;

/// Builds one graph: nodes, initializers (written to `<model>.data`), inputs
/// and outputs.
pub struct GraphBuilder {
    graph: GraphProto,
    data: Vec<(String, Vec<u8>)>,
    counter: usize,
    metadata: Vec<StringStringEntryProto>,
}

impl GraphBuilder {
    pub fn new(name: &str) -> Self {
        GraphBuilder {
            graph: GraphProto {
                name: name.to_string(),
                ..Default::default()
            },
            data: Vec::new(),
            counter: 0,
            metadata: Vec::new(),
        }
    }

    pub fn metadata(&mut self, key: &str, value: &str) {
        self.metadata.push(StringStringEntryProto {
            key: key.into(),
            value: value.into(),
        });
    }

    /// A fresh tensor name with the given stem.
    pub fn fresh(&mut self, stem: &str) -> String {
        self.counter += 1;
        format!("{stem}_{}", self.counter)
    }

    pub fn input(&mut self, name: &str, dtype: DType, dims: &[Dim]) {
        self.graph.input.push(value_info(name, dtype, dims));
    }

    pub fn output(&mut self, name: &str, dtype: DType, dims: &[Dim]) {
        self.graph.output.push(value_info(name, dtype, dims));
    }

    /// Adds an initializer from raw little-endian bytes.
    pub fn init_raw(&mut self, name: &str, dtype: DType, dims: &[i64], bytes: Vec<u8>) -> String {
        let n: i64 = dims.iter().product();
        debug_assert_eq!(n as usize * dtype.size(), bytes.len(), "initializer {name}");
        let mut t = TensorProto {
            dims: dims.to_vec(),
            data_type: dtype as i32,
            name: name.to_string(),
            ..Default::default()
        };
        if bytes.len() >= EXTERNAL_THRESHOLD {
            self.data.push((name.to_string(), bytes));
            t.data_location = 1;
        } else {
            t.raw_data = bytes;
        }
        self.graph.initializer.push(t);
        name.to_string()
    }

    pub fn init_f32(&mut self, name: &str, dims: &[i64], data: &[f32]) -> String {
        let bytes = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.init_raw(name, DType::F32, dims, bytes)
    }

    pub fn init_i64(&mut self, name: &str, dims: &[i64], data: &[i64]) -> String {
        let bytes = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.init_raw(name, DType::I64, dims, bytes)
    }

    pub fn init_i32(&mut self, name: &str, dims: &[i64], data: &[i32]) -> String {
        let bytes = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.init_raw(name, DType::I32, dims, bytes)
    }

    /// A 1-D int64 constant, e.g. a shape for Reshape.
    pub fn const_i64(&mut self, data: &[i64]) -> String {
        let name = self.fresh("const_i64");
        self.init_i64(&name, &[data.len() as i64], data)
    }

    /// Adds a node; returns its first output name.
    pub fn node(
        &mut self,
        op: &str,
        domain: &str,
        inputs: &[&str],
        outputs: &[&str],
        attrs: &[(&str, Attr)],
    ) -> String {
        let name = self.fresh(op);
        self.graph.node.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            name,
            op_type: op.to_string(),
            attribute: attrs.iter().map(|(n, a)| attribute(n, a)).collect(),
            domain: domain.to_string(),
        });
        outputs.first().map(|s| s.to_string()).unwrap_or_default()
    }

    /// A default-domain node with one fresh output.
    pub fn op(&mut self, op: &str, inputs: &[&str], attrs: &[(&str, Attr)]) -> String {
        let out = self.fresh(&op.to_lowercase());
        self.node(op, "", inputs, &[&out], attrs)
    }

    /// Writes `path` and, when there are large initializers, `path` + `.data`.
    /// Writes to temporary names first so a crash never leaves a half graph
    /// under the final name.
    pub fn save(mut self, path: &Path, opsets: &[(&str, i64)]) -> Result<()> {
        let data_name = format!(
            "{}.data",
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("model.onnx")
        );
        let data_path = path.with_file_name(&data_name);
        let data_tmp = path.with_file_name(format!("{data_name}.part"));
        let mut offsets = std::collections::HashMap::new();
        {
            let f = std::fs::File::create(&data_tmp).map_err(|e| Error::io(&data_tmp, e))?;
            let mut w = std::io::BufWriter::new(f);
            let mut off = 0usize;
            for (name, bytes) in &self.data {
                // 64-byte alignment lets ORT memory-map initializers directly.
                let pad = (64 - off % 64) % 64;
                w.write_all(&vec![0u8; pad])
                    .map_err(|e| Error::io(&data_tmp, e))?;
                off += pad;
                w.write_all(bytes).map_err(|e| Error::io(&data_tmp, e))?;
                offsets.insert(name.clone(), (off, bytes.len()));
                off += bytes.len();
            }
            w.flush().map_err(|e| Error::io(&data_tmp, e))?;
        }
        self.data.clear();
        for t in &mut self.graph.initializer {
            if t.data_location == 1 {
                let (off, len) = offsets[&t.name];
                t.external_data = vec![
                    kv("location", &data_name),
                    kv("offset", &off.to_string()),
                    kv("length", &len.to_string()),
                ];
            }
        }
        let model = ModelProto {
            ir_version: 8,
            producer_name: "mscr".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            graph: Some(self.graph),
            opset_import: opsets
                .iter()
                .map(|(d, v)| OperatorSetIdProto {
                    domain: d.to_string(),
                    version: *v,
                })
                .collect(),
            metadata_props: self.metadata,
        };
        let tmp = path.with_extension("onnx.part");
        std::fs::write(&tmp, model.encode_to_vec()).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&data_tmp, &data_path).map_err(|e| Error::io(&data_path, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
        Ok(())
    }
}

fn kv(k: &str, v: &str) -> StringStringEntryProto {
    StringStringEntryProto {
        key: k.into(),
        value: v.into(),
    }
}

fn value_info(name: &str, dtype: DType, dims: &[Dim]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: dtype as i32,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| match d {
                            Dim::Fixed(v) => Dimension {
                                dim_value: Some(*v),
                                dim_param: None,
                            },
                            Dim::Named(s) => Dimension {
                                dim_value: None,
                                dim_param: Some(s.clone()),
                            },
                        })
                        .collect(),
                }),
            }),
        }),
    }
}

fn attribute(name: &str, a: &Attr) -> AttributeProto {
    let mut p = AttributeProto {
        name: name.to_string(),
        ..Default::default()
    };
    match a {
        Attr::Float(f) => {
            p.f = *f;
            p.r#type = 1;
        }
        Attr::Int(i) => {
            p.i = *i;
            p.r#type = 2;
        }
        Attr::Str(s) => {
            p.s = s.as_bytes().to_vec();
            p.r#type = 3;
        }
        Attr::Tensor(t) => {
            p.t = Some(t.clone());
            p.r#type = 4;
        }
        Attr::Floats(f) => {
            p.floats = f.clone();
            p.r#type = 6;
        }
        Attr::Ints(i) => {
            p.ints = i.clone();
            p.r#type = 7;
        }
    }
    p
}
