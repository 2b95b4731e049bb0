//! The subset of ONNX's protobuf messages qmap reads, and their decoder: a small reader of the
//! protobuf wire format (varints, fixed 32/64-bit and length-delimited fields; no protoc, no
//! generated code). Field numbers are those of the official `onnx/onnx.proto` (ONNX 1.23,
//! Apache-2.0, `syntax = "proto2"`): ModelProto, GraphProto, NodeProto, AttributeProto,
//! ValueInfoProto, TypeProto(.Tensor), TensorShapeProto(.Dimension) and TensorProto. Fields not
//! listed are skipped; the `oneof`s of TypeProto and Dimension are read as plain optional fields
//! (same wire format). A repeated scalar is accepted packed or not, as protobuf parsers must.

use std::fmt;

/// A malformed protobuf message.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeError(String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

type Result<T> = std::result::Result<T, DecodeError>;

/// Declares each message's struct and its [`Message`] decoder from its field list.
macro_rules! messages {
    ($($(#[$doc:meta])* $name:ident { $($num:literal => $field:ident: $ty:ty),* $(,)? })*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct $name {
            $(pub $field: $ty,)*
        }

        impl Message for $name {
            fn field(&mut self, number: u32, w: Wire<'_>) -> Result<()> {
                match number {
                    $($num => self.$field.read(w),)*
                    _ => Ok(()),
                }
            }
        }
    )*};
}

// The messages: `number => field: type` per field, as in `onnx.proto`. Each gets a struct and
// its decoder ([`Message`]); every field is optional or repeated (proto2).
messages! {
    /// ModelProto.
    ModelProto { 7 => graph: Option<GraphProto> }
    /// GraphProto.
    GraphProto { 1 => node: Vec<NodeProto>, 5 => initializer: Vec<TensorProto>, 11 => input: Vec<ValueInfoProto> }
    /// NodeProto.
    NodeProto { 1 => input: Vec<String>, 2 => output: Vec<String>, 3 => name: Option<String>, 4 => op_type: Option<String>, 5 => attribute: Vec<AttributeProto> }
    /// AttributeProto.
    AttributeProto { 1 => name: Option<String>, 2 => f: Option<f32>, 3 => i: Option<i64>, 4 => s: Option<Vec<u8>>, 5 => t: Option<TensorProto>, 7 => floats: Vec<f32>, 8 => ints: Vec<i64> }
    /// ValueInfoProto.
    ValueInfoProto { 1 => name: Option<String>, 2 => r#type: Option<TypeProto> }
    /// TypeProto: the `tensor_type` branch of its `value` oneof.
    TypeProto { 1 => tensor_type: Option<TypeTensor> }
    /// TypeProto.Tensor.
    TypeTensor { 2 => shape: Option<TensorShapeProto> }
    /// TensorShapeProto.
    TensorShapeProto { 1 => dim: Vec<Dimension> }
    /// TensorShapeProto.Dimension (`dim_value` and `dim_param` are a oneof).
    Dimension { 1 => dim_value: Option<i64>, 2 => dim_param: Option<String> }
    /// TensorProto (the data fields qmap reads: integer shapes and axes, float weights).
    TensorProto { 1 => dims: Vec<i64>, 2 => data_type: Option<i32>, 4 => float_data: Vec<f32>, 5 => int32_data: Vec<i32>, 7 => int64_data: Vec<i64>, 8 => name: Option<String>, 9 => raw_data: Option<Vec<u8>> }
}

/// TensorProto.DataType's FLOAT (1), INT32 (6) and INT64 (7).
pub const FLOAT: i32 = 1;
pub const INT32: i32 = 6;
pub const INT64: i32 = 7;

impl TensorProto {
    /// The integer values of an INT64 or INT32 tensor (from `int64_data`/`int32_data` or the
    /// little-endian `raw_data`); None for other types.
    pub fn int_values(&self) -> Option<Vec<i64>> {
        let raw = self.raw_data.as_deref().filter(|r| !r.is_empty());
        match (self.data_type?, raw) {
            (INT64, Some(raw)) => Some(little_endian(raw, i64::from_le_bytes)),
            (INT64, None) => Some(self.int64_data.clone()),
            (INT32, Some(raw)) => Some(little_endian(raw, |b| i32::from_le_bytes(b) as i64)),
            (INT32, None) => Some(self.int32_data.iter().map(|&v| v as i64).collect()),
            _ => None,
        }
    }

    /// The values of a FLOAT tensor (from `float_data` or the little-endian `raw_data`); None
    /// for other types.
    pub fn float_values(&self) -> Option<Vec<f32>> {
        let raw = self.raw_data.as_deref().filter(|r| !r.is_empty());
        match (self.data_type?, raw) {
            (FLOAT, Some(raw)) => Some(little_endian(raw, f32::from_le_bytes)),
            (FLOAT, None) => Some(self.float_data.clone()),
            _ => None,
        }
    }
}

/// The values of `raw`, `N` little-endian bytes each (a partial last value is dropped).
fn little_endian<const N: usize, T>(raw: &[u8], value: impl Fn([u8; N]) -> T) -> Vec<T> {
    raw.chunks_exact(N)
        .map(|c| value(c.try_into().expect("N bytes")))
        .collect()
}

impl ModelProto {
    /// Decodes a serialised ModelProto (the bytes of an `.onnx` file).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        decode(bytes)
    }
}

/// One field's value as the wire carries it.
#[derive(Debug, Clone, Copy)]
enum Wire<'a> {
    Varint(u64),
    /// A double or fixed64 (no field qmap reads has one; skipped).
    Fixed64,
    Bytes(&'a [u8]),
    Fixed32(u32),
}

impl<'a> Wire<'a> {
    fn bytes(self) -> Result<&'a [u8]> {
        match self {
            Wire::Bytes(b) => Ok(b),
            _ => Err(DecodeError("expected a length-delimited field".into())),
        }
    }

    fn int(self) -> Result<i64> {
        match self {
            Wire::Varint(v) => Ok(v as i64),
            _ => Err(DecodeError("expected a varint field".into())),
        }
    }
}

/// A field's Rust type, read from one occurrence on the wire (a repeated field appends).
trait Field {
    fn read(&mut self, w: Wire<'_>) -> Result<()>;
}

/// The type of one value of a field.
trait Scalar: Sized {
    fn one(w: Wire<'_>) -> Result<Self>;

    /// The values of a packed run (numbers only); None for a type that is never packed.
    fn packed(_run: &[u8]) -> Option<Result<Vec<Self>>> {
        None
    }
}

impl<T: Scalar> Field for Option<T> {
    fn read(&mut self, w: Wire<'_>) -> Result<()> {
        *self = Some(T::one(w)?);
        Ok(())
    }
}

impl<T: Scalar> Field for Vec<T> {
    fn read(&mut self, w: Wire<'_>) -> Result<()> {
        match w {
            Wire::Bytes(run) => match T::packed(run) {
                Some(values) => self.extend(values?),
                None => self.push(T::one(w)?),
            },
            _ => self.push(T::one(w)?),
        }
        Ok(())
    }
}

impl Scalar for String {
    fn one(w: Wire<'_>) -> Result<Self> {
        String::from_utf8(w.bytes()?.to_vec())
            .map_err(|_| DecodeError("a string field is not UTF-8".into()))
    }
}

impl Scalar for Vec<u8> {
    fn one(w: Wire<'_>) -> Result<Self> {
        Ok(w.bytes()?.to_vec())
    }
}

impl Scalar for i64 {
    fn one(w: Wire<'_>) -> Result<Self> {
        w.int()
    }

    fn packed(mut run: &[u8]) -> Option<Result<Vec<Self>>> {
        let mut out = Vec::new();
        while !run.is_empty() {
            match varint(&mut run) {
                Ok(v) => out.push(v as i64),
                Err(e) => return Some(Err(e)),
            }
        }
        Some(Ok(out))
    }
}

impl Scalar for i32 {
    /// proto2 int32: the low 32 bits of the 64-bit varint.
    fn one(w: Wire<'_>) -> Result<Self> {
        Ok(w.int()? as i32)
    }

    fn packed(run: &[u8]) -> Option<Result<Vec<Self>>> {
        i64::packed(run).map(|r| r.map(|v| v.into_iter().map(|x| x as i32).collect()))
    }
}

impl Scalar for f32 {
    fn one(w: Wire<'_>) -> Result<Self> {
        match w {
            Wire::Fixed32(v) => Ok(f32::from_bits(v)),
            _ => Err(DecodeError("expected a 32-bit float field".into())),
        }
    }

    fn packed(run: &[u8]) -> Option<Result<Vec<Self>>> {
        if !run.len().is_multiple_of(4) {
            return Some(Err(DecodeError("a packed float field is not whole".into())));
        }
        Some(Ok(little_endian(run, f32::from_le_bytes)))
    }
}

impl<T: Message> Scalar for T {
    fn one(w: Wire<'_>) -> Result<Self> {
        decode(w.bytes()?)
    }
}

/// A message decoded field by field.
trait Message: Default {
    /// Reads field `number`; unknown fields are ignored.
    fn field(&mut self, number: u32, w: Wire<'_>) -> Result<()>;
}

/// Decodes a message from its serialised fields.
fn decode<T: Message>(mut buf: &[u8]) -> Result<T> {
    let mut msg = T::default();
    while !buf.is_empty() {
        let key = varint(&mut buf)?;
        let (number, wire) = ((key >> 3) as u32, key & 7);
        let w = match wire {
            0 => Wire::Varint(varint(&mut buf)?),
            1 => {
                take(&mut buf, 8)?;
                Wire::Fixed64
            }
            2 => {
                let len = varint(&mut buf)?;
                let len =
                    usize::try_from(len).map_err(|_| DecodeError("length overflow".into()))?;
                Wire::Bytes(take(&mut buf, len)?)
            }
            5 => Wire::Fixed32(u32::from_le_bytes(take(&mut buf, 4)?.try_into().unwrap())),
            k => {
                return Err(DecodeError(format!(
                    "unsupported wire type {k} (field {number})"
                )))
            }
        };
        if number == 0 {
            return Err(DecodeError("field number 0".into()));
        }
        msg.field(number, w)?;
    }
    Ok(msg)
}

/// The next `n` bytes of `buf`.
fn take<'a>(buf: &mut &'a [u8], n: usize) -> Result<&'a [u8]> {
    if buf.len() < n {
        return Err(DecodeError("the message ends inside a field".into()));
    }
    let (head, tail) = buf.split_at(n);
    *buf = tail;
    Ok(head)
}

/// A base-128 varint.
fn varint(buf: &mut &[u8]) -> Result<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *take(buf, 1)?.first().expect("one byte");
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(DecodeError("a varint longer than 10 bytes".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_packed_and_unpacked_and_errors() {
        // TensorProto: dims 3 (unpacked), dims [1, 300] packed, data_type 1, float_data packed.
        let mut b = vec![0x08, 3, 0x0a, 3, 1, 0xac, 0x02, 0x10, 1, 0x22, 8];
        b.extend(1.5f32.to_le_bytes());
        b.extend((-2.0f32).to_le_bytes());
        let t: TensorProto = decode(&b).unwrap();
        assert_eq!(t.dims, vec![3, 1, 300]);
        assert_eq!(t.float_values(), Some(vec![1.5, -2.0]));
        // A negative int32 is a 10-byte varint (two's complement of the 64-bit value).
        let mut n = vec![0x28];
        n.extend([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        let t: TensorProto = decode(&n).unwrap();
        assert_eq!(t.int32_data, vec![-1]);
        // Truncated: a length past the end; a group wire type.
        assert!(decode::<TensorProto>(&[0x4a, 5, 1]).is_err());
        assert!(decode::<TensorProto>(&[0x0b]).is_err());
    }
}
