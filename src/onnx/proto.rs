//! The subset of ONNX's protobuf messages the importer reads, as hand-written `prost` structs
//! (no protoc at build time). Field numbers are those of the official `onnx/onnx.proto`
//! (ONNX 1.23, Apache-2.0, `syntax = "proto2"`): ModelProto, GraphProto, NodeProto,
//! AttributeProto, ValueInfoProto, TypeProto(.Tensor), TensorShapeProto(.Dimension) and
//! TensorProto. Fields not listed are skipped by the decoder; the `oneof`s of TypeProto and
//! Dimension are read as plain optional fields (same wire format).

/// ModelProto: `graph = 7`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelProto {
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
}

/// GraphProto: `node = 1`, `initializer = 5`, `input = 11`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GraphProto {
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
}

/// NodeProto: `input = 1`, `output = 2`, `name = 3`, `op_type = 4`, `attribute = 5`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeProto {
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    #[prost(string, optional, tag = "3")]
    pub name: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub op_type: Option<String>,
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
}

/// AttributeProto: `name = 1`, `i = 3`, `s = 4`, `t = 5`, `ints = 8`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttributeProto {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(int64, optional, tag = "3")]
    pub i: Option<i64>,
    #[prost(bytes = "vec", optional, tag = "4")]
    pub s: Option<Vec<u8>>,
    #[prost(message, optional, tag = "5")]
    pub t: Option<TensorProto>,
    #[prost(int64, repeated, packed = "false", tag = "8")]
    pub ints: Vec<i64>,
}

/// ValueInfoProto: `name = 1`, `type = 2`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueInfoProto {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
}

/// TypeProto: the `tensor_type = 1` branch of its `value` oneof.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProto {
    #[prost(message, optional, tag = "1")]
    pub tensor_type: Option<TypeTensor>,
}

/// TypeProto.Tensor: `shape = 2`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeTensor {
    #[prost(message, optional, tag = "2")]
    pub shape: Option<TensorShapeProto>,
}

/// TensorShapeProto: `dim = 1`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<Dimension>,
}

/// TensorShapeProto.Dimension: `dim_value = 1` or `dim_param = 2` (a oneof).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Dimension {
    #[prost(int64, optional, tag = "1")]
    pub dim_value: Option<i64>,
    #[prost(string, optional, tag = "2")]
    pub dim_param: Option<String>,
}

/// TensorProto: `dims = 1`, `data_type = 2`, `int64_data = 7`, `name = 8`, `raw_data = 9`,
/// `int32_data = 5` (the only data the importer reads: the integer shapes and axes that
/// Reshape, Squeeze and Unsqueeze take as inputs).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    #[prost(int64, repeated, packed = "false", tag = "1")]
    pub dims: Vec<i64>,
    #[prost(int32, optional, tag = "2")]
    pub data_type: Option<i32>,
    #[prost(int32, repeated, tag = "5")]
    pub int32_data: Vec<i32>,
    #[prost(int64, repeated, tag = "7")]
    pub int64_data: Vec<i64>,
    #[prost(string, optional, tag = "8")]
    pub name: Option<String>,
    #[prost(bytes = "vec", optional, tag = "9")]
    pub raw_data: Option<Vec<u8>>,
}

/// TensorProto.DataType's INT32 (6) and INT64 (7).
pub const INT32: i32 = 6;
pub const INT64: i32 = 7;

impl TensorProto {
    /// The integer values of an INT64 or INT32 tensor (from `int64_data`/`int32_data` or the
    /// little-endian `raw_data`); None for other types.
    pub fn int_values(&self) -> Option<Vec<i64>> {
        let raw = self.raw_data.as_deref().unwrap_or(&[]);
        match self.data_type? {
            INT64 if !raw.is_empty() => Some(
                raw.chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
                    .collect(),
            ),
            INT64 => Some(self.int64_data.clone()),
            INT32 if !raw.is_empty() => Some(
                raw.chunks_exact(4)
                    .map(|c| i32::from_le_bytes(c.try_into().expect("4 bytes")) as i64)
                    .collect(),
            ),
            INT32 => Some(self.int32_data.iter().map(|&v| v as i64).collect()),
            _ => None,
        }
    }
}
