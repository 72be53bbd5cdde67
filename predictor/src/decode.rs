//! Request decoding straight into typed tensors: the JSON of a V2 or KServe V1
//! request is read with serde visitors that push each element into the
//! `Vec<T>` of its datatype, so memory follows the decoded data (no generic
//! JSON tree), values the datatype cannot hold are refused where they are
//! read, and nested `data` must be rectangular.
//!
//! Large bodies are decoded as they arrive, on a thread of their own at a
//! lower priority ([`decode_streaming`]), away from the runtime's threads that
//! answer health probes.

use std::fmt;
use std::io::Read;

use bytes::Bytes;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::model::Model;
use crate::tensor::{element_count, DataType, TensorData};

/// Decoded tensor elements and the lengths of the nested arrays they came in,
/// outermost first (`[n]` for a flat list, `[]` for a bare scalar).
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub data: TensorData,
    pub nesting: Vec<usize>,
}

/// One element type's JSON reading rules.
trait Element: Sized {
    const DTYPE: DataType;
    fn from_u64(v: u64) -> Option<Self>;
    fn from_i64(v: i64) -> Option<Self>;
    fn from_f64(v: f64) -> Option<Self>;
    fn from_bool(_: bool) -> Option<Self> {
        None
    }
    fn wrap(v: Vec<Self>) -> TensorData;
}

macro_rules! int_element {
    ($t:ty, $dt:ident) => {
        impl Element for $t {
            const DTYPE: DataType = DataType::$dt;
            fn from_u64(v: u64) -> Option<Self> {
                <$t>::try_from(v).ok()
            }
            fn from_i64(v: i64) -> Option<Self> {
                <$t>::try_from(v).ok()
            }
            fn from_f64(_: f64) -> Option<Self> {
                None
            }
            fn wrap(v: Vec<Self>) -> TensorData {
                TensorData::$dt(v)
            }
        }
    };
}

int_element!(u8, U8);
int_element!(u16, U16);
int_element!(u32, U32);
int_element!(u64, U64);
int_element!(i8, I8);
int_element!(i16, I16);
int_element!(i32, I32);
int_element!(i64, I64);

impl Element for f32 {
    const DTYPE: DataType = DataType::Fp32;
    fn from_u64(v: u64) -> Option<Self> {
        Some(v as f32)
    }
    fn from_i64(v: i64) -> Option<Self> {
        Some(v as f32)
    }
    fn from_f64(v: f64) -> Option<Self> {
        // 3.5e38 is a finite JSON number that FP32 can only hold as infinity.
        let x = v as f32;
        x.is_finite().then_some(x)
    }
    fn wrap(v: Vec<Self>) -> TensorData {
        TensorData::Fp32(v)
    }
}

impl Element for f64 {
    const DTYPE: DataType = DataType::Fp64;
    fn from_u64(v: u64) -> Option<Self> {
        Some(v as f64)
    }
    fn from_i64(v: i64) -> Option<Self> {
        Some(v as f64)
    }
    fn from_f64(v: f64) -> Option<Self> {
        Some(v)
    }
    fn wrap(v: Vec<Self>) -> TensorData {
        TensorData::Fp64(v)
    }
}

impl Element for bool {
    const DTYPE: DataType = DataType::Bool;
    fn from_u64(_: u64) -> Option<Self> {
        None
    }
    fn from_i64(_: i64) -> Option<Self> {
        None
    }
    fn from_f64(_: f64) -> Option<Self> {
        None
    }
    fn from_bool(v: bool) -> Option<Self> {
        Some(v)
    }
    fn wrap(v: Vec<Self>) -> TensorData {
        TensorData::Bool(v)
    }
}

/// Where nested elements go: the values, and the array length seen at each
/// depth (every array at one depth must have the same length).
struct Sink<T> {
    out: Vec<T>,
    dims: Vec<Option<usize>>,
    leaf_depth: Option<usize>,
}

impl<T: Element> Sink<T> {
    fn new(reserve: usize) -> Self {
        Sink {
            out: Vec::with_capacity(reserve),
            dims: Vec::new(),
            leaf_depth: None,
        }
    }

    fn leaf<E: de::Error>(
        &mut self,
        depth: usize,
        v: Option<T>,
        shown: &dyn fmt::Display,
    ) -> Result<(), E> {
        match self.leaf_depth {
            None => self.leaf_depth = Some(depth),
            Some(d) if d != depth => {
                return Err(E::custom(format!(
                    "ragged data: element {} ({shown}) is nested {depth} deep where others are nested {d} deep",
                    self.out.len()
                )))
            }
            Some(_) => {}
        }
        let x = v.ok_or_else(|| {
            E::custom(format!(
                "element {} ({shown}) is not a valid {} value",
                self.out.len(),
                T::DTYPE.name()
            ))
        })?;
        self.out.push(x);
        Ok(())
    }

    fn array<E: de::Error>(&mut self, depth: usize, len: usize) -> Result<(), E> {
        if self.dims.len() <= depth {
            self.dims.resize(depth + 1, None);
        }
        match self.dims[depth] {
            None => self.dims[depth] = Some(len),
            Some(n) if n != len => {
                return Err(E::custom(format!(
                    "ragged data: arrays {depth} deep have {n} and {len} elements"
                )))
            }
            Some(_) => {}
        }
        Ok(())
    }

    fn finish(self) -> Decoded {
        Decoded {
            data: T::wrap(self.out),
            nesting: self.dims.into_iter().map(|d| d.unwrap_or(0)).collect(),
        }
    }
}

/// Reads one JSON value (scalar or nested array) at `depth` into a sink.
struct Level<'a, T> {
    sink: &'a mut Sink<T>,
    depth: usize,
}

impl<'de, T: Element> DeserializeSeed<'de> for Level<'_, T> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, T: Element> Visitor<'de> for Level<'_, T> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} values, flat or in nested arrays", T::DTYPE.name())
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.sink.leaf(self.depth, T::from_bool(v), &v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.sink.leaf(self.depth, T::from_u64(v), &v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.sink.leaf(self.depth, T::from_i64(v), &v)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.sink.leaf(self.depth, T::from_f64(v), &v)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        let shown = format!("{v:?}");
        self.sink.leaf(self.depth, None, &shown)
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.sink.leaf(self.depth, None, &"null")
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(
            "tensor data must be numbers or booleans, found an object",
        ))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut n = 0;
        while seq
            .next_element_seed(Level {
                sink: &mut *self.sink,
                depth: self.depth + 1,
            })?
            .is_some()
        {
            n += 1;
        }
        self.sink.array(self.depth, n)
    }
}

fn decode_as<'de, T: Element, D: Deserializer<'de>>(
    d: D,
    reserve: usize,
) -> Result<Decoded, D::Error> {
    let mut sink = Sink::<T>::new(reserve);
    Level {
        sink: &mut sink,
        depth: 0,
    }
    .deserialize(d)?;
    Ok(sink.finish())
}

/// Reads one tensor's JSON data as `dtype`, reserving `reserve` elements.
pub struct TypedData {
    pub dtype: DataType,
    pub reserve: usize,
}

impl<'de> DeserializeSeed<'de> for TypedData {
    type Value = Decoded;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Decoded, D::Error> {
        let r = self.reserve;
        match self.dtype {
            DataType::Bool => decode_as::<bool, D>(d, r),
            DataType::U8 => decode_as::<u8, D>(d, r),
            DataType::U16 => decode_as::<u16, D>(d, r),
            DataType::U32 => decode_as::<u32, D>(d, r),
            DataType::U64 => decode_as::<u64, D>(d, r),
            DataType::I8 => decode_as::<i8, D>(d, r),
            DataType::I16 => decode_as::<i16, D>(d, r),
            DataType::I32 => decode_as::<i32, D>(d, r),
            DataType::I64 => decode_as::<i64, D>(d, r),
            DataType::Fp32 => decode_as::<f32, D>(d, r),
            DataType::Fp64 => decode_as::<f64, D>(d, r),
        }
    }
}

/// Decodes JSON text as tensor data of `dtype` (for data that came before its
/// datatype, kept as text until then).
pub fn decode_text(dtype: DataType, text: &str) -> Result<Decoded, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    TypedData { dtype, reserve: 0 }
        .deserialize(&mut de)
        .map_err(|e| e.to_string())
}

/// An input's `data` as read.
#[derive(Debug)]
pub enum InputValues {
    Absent,
    Decoded(Decoded),
    /// `data` came before `datatype`: kept as text, decoded once the type is known.
    Text(Box<RawValue>),
}

#[derive(Debug)]
pub struct V2Input {
    pub name: String,
    pub shape: Vec<i64>,
    pub datatype: String,
    pub parameters: Map<String, Value>,
    pub data: InputValues,
}

#[derive(Debug, Deserialize)]
pub struct V2RequestedOutput {
    pub name: String,
    #[serde(default)]
    pub parameters: Map<String, Value>,
}

#[derive(Debug)]
pub struct V2Request {
    pub id: Option<Value>,
    pub parameters: Map<String, Value>,
    pub inputs: Vec<V2Input>,
    pub outputs: Vec<V2RequestedOutput>,
}

/// Elements to reserve for data of `shape`, never more than the body can hold
/// (two bytes an element at least), so a lying shape cannot allocate.
fn reserve_for(shape: Option<&[i64]>, body_len: usize) -> usize {
    shape
        .and_then(element_count)
        .map_or(0, |n| n.min(body_len / 2 + 1))
}

/// Reads a V2 request; `model` supplies the datatype of `data` that comes
/// before the input's own `datatype` (checked against it afterwards).
pub struct V2RequestSeed<'m> {
    pub model: &'m Model,
    pub body_len: usize,
}

impl<'de> DeserializeSeed<'de> for V2RequestSeed<'_> {
    type Value = V2Request;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<V2Request, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for V2RequestSeed<'_> {
    type Value = V2Request;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an inference request object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<V2Request, A::Error> {
        let mut req = V2Request {
            id: None,
            parameters: Map::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
        };
        let mut saw_inputs = false;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "id" => req.id = Some(map.next_value()?),
                "parameters" => req.parameters = map.next_value()?,
                "outputs" => req.outputs = map.next_value()?,
                "inputs" => {
                    saw_inputs = true;
                    req.inputs = map.next_value_seed(InputsSeed {
                        model: self.model,
                        body_len: self.body_len,
                    })?
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !saw_inputs {
            return Err(de::Error::missing_field("inputs"));
        }
        Ok(req)
    }
}

struct InputsSeed<'m> {
    model: &'m Model,
    body_len: usize,
}

impl<'de> DeserializeSeed<'de> for InputsSeed<'_> {
    type Value = Vec<V2Input>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<V2Input>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for InputsSeed<'_> {
    type Value = Vec<V2Input>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of input tensors")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<V2Input>, A::Error> {
        let mut out = Vec::new();
        while let Some(i) = seq.next_element_seed(InputSeed {
            model: self.model,
            body_len: self.body_len,
        })? {
            out.push(i);
        }
        Ok(out)
    }
}

struct InputSeed<'m> {
    model: &'m Model,
    body_len: usize,
}

impl<'de> DeserializeSeed<'de> for InputSeed<'_> {
    type Value = V2Input;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<V2Input, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for InputSeed<'_> {
    type Value = V2Input;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an input tensor object (name, shape, datatype, data)")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<V2Input, A::Error> {
        let mut name: Option<String> = None;
        let mut shape: Option<Vec<i64>> = None;
        let mut datatype: Option<String> = None;
        let mut parameters = Map::new();
        let mut data = InputValues::Absent;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "name" => name = Some(map.next_value()?),
                "shape" => shape = Some(map.next_value()?),
                "datatype" => datatype = Some(map.next_value()?),
                "parameters" => parameters = map.next_value()?,
                "data" => {
                    // The type to read as: the input's own, else the model's
                    // input of that name (checked against `datatype` later).
                    let dtype = datatype.as_deref().and_then(DataType::parse).or_else(|| {
                        let n = name.as_deref()?;
                        self.model
                            .inputs
                            .iter()
                            .find(|s| s.name == n)
                            .map(|s| s.dtype)
                    });
                    data = match dtype {
                        Some(dtype) => {
                            let reserve = reserve_for(shape.as_deref(), self.body_len);
                            let seed = TypedData { dtype, reserve };
                            match map.next_value_seed(seed) {
                                Ok(d) => InputValues::Decoded(d),
                                Err(e) => {
                                    let who = name
                                        .as_deref()
                                        .map_or(String::new(), |n| format!("input '{n}': "));
                                    return Err(de::Error::custom(format!("{who}{e}")));
                                }
                            }
                        }
                        None => InputValues::Text(map.next_value()?),
                    };
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(V2Input {
            name: name.ok_or_else(|| de::Error::missing_field("name"))?,
            shape: shape.ok_or_else(|| de::Error::missing_field("shape"))?,
            datatype: datatype.ok_or_else(|| de::Error::missing_field("datatype"))?,
            parameters,
            data,
        })
    }
}

/// A KServe V1 request's instances, as one column per model input.
pub struct V1Columns {
    /// Per model input, in its order.
    pub columns: Vec<Decoded>,
    pub instances: usize,
}

/// Reads `{"instances": [...]}` (or `"inputs"`) for `model`: with one input
/// the instances are its rows; with several each instance is an object keyed
/// by input name.
pub struct V1RequestSeed<'m> {
    pub model: &'m Model,
}

impl<'de> DeserializeSeed<'de> for V1RequestSeed<'_> {
    type Value = V1Columns;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<V1Columns, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for V1RequestSeed<'_> {
    type Value = V1Columns;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a KServe V1 request object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<V1Columns, A::Error> {
        let mut found: Option<V1Columns> = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "instances" | "inputs" if found.is_none() => {
                    found = Some(map.next_value_seed(InstancesSeed { model: self.model })?)
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let cols = found.ok_or_else(|| {
            de::Error::custom("the request needs a non-empty \"instances\" array")
        })?;
        if cols.instances == 0 {
            return Err(de::Error::custom(
                "the request needs a non-empty \"instances\" array",
            ));
        }
        Ok(cols)
    }
}

struct InstancesSeed<'m> {
    model: &'m Model,
}

impl<'de> DeserializeSeed<'de> for InstancesSeed<'_> {
    type Value = V1Columns;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<V1Columns, D::Error> {
        if self.model.inputs.len() == 1 {
            let decoded = TypedData {
                dtype: self.model.inputs[0].dtype,
                reserve: 0,
            }
            .deserialize(d)?;
            let instances = match decoded.nesting.first() {
                Some(n) => *n,
                None => return Err(de::Error::custom("\"instances\" must be an array")),
            };
            return Ok(V1Columns {
                columns: vec![decoded],
                instances,
            });
        }
        d.deserialize_seq(self)
    }
}

/// One growing column per input for multi-input models.
enum AnySink {
    Bool(Sink<bool>),
    U8(Sink<u8>),
    U16(Sink<u16>),
    U32(Sink<u32>),
    U64(Sink<u64>),
    I8(Sink<i8>),
    I16(Sink<i16>),
    I32(Sink<i32>),
    I64(Sink<i64>),
    Fp32(Sink<f32>),
    Fp64(Sink<f64>),
}

macro_rules! any_sink {
    ($s:expr, $v:ident => $body:expr) => {
        match $s {
            AnySink::Bool($v) => $body,
            AnySink::U8($v) => $body,
            AnySink::U16($v) => $body,
            AnySink::U32($v) => $body,
            AnySink::U64($v) => $body,
            AnySink::I8($v) => $body,
            AnySink::I16($v) => $body,
            AnySink::I32($v) => $body,
            AnySink::I64($v) => $body,
            AnySink::Fp32($v) => $body,
            AnySink::Fp64($v) => $body,
        }
    };
}

impl AnySink {
    fn new(dtype: DataType) -> AnySink {
        match dtype {
            DataType::Bool => AnySink::Bool(Sink::new(0)),
            DataType::U8 => AnySink::U8(Sink::new(0)),
            DataType::U16 => AnySink::U16(Sink::new(0)),
            DataType::U32 => AnySink::U32(Sink::new(0)),
            DataType::U64 => AnySink::U64(Sink::new(0)),
            DataType::I8 => AnySink::I8(Sink::new(0)),
            DataType::I16 => AnySink::I16(Sink::new(0)),
            DataType::I32 => AnySink::I32(Sink::new(0)),
            DataType::I64 => AnySink::I64(Sink::new(0)),
            DataType::Fp32 => AnySink::Fp32(Sink::new(0)),
            DataType::Fp64 => AnySink::Fp64(Sink::new(0)),
        }
    }

    /// Reads one instance's value for this input, one level below the instances.
    fn read<'de, A: MapAccess<'de>>(&mut self, map: &mut A) -> Result<(), A::Error> {
        any_sink!(self, s => map.next_value_seed(Level { sink: s, depth: 1 }))
    }

    fn finish(self, instances: usize) -> Decoded {
        let mut d = any_sink!(self, s => s.finish());
        if d.nesting.is_empty() {
            d.nesting.push(instances);
        } else {
            d.nesting[0] = instances;
        }
        d
    }
}

impl<'de> Visitor<'de> for InstancesSeed<'_> {
    type Value = V1Columns;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of instances, each an object keyed by input name")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<V1Columns, A::Error> {
        let mut sinks: Vec<AnySink> = self
            .model
            .inputs
            .iter()
            .map(|s| AnySink::new(s.dtype))
            .collect();
        let mut n = 0;
        while seq
            .next_element_seed(InstanceSeed {
                model: self.model,
                sinks: &mut sinks,
                index: n,
            })?
            .is_some()
        {
            n += 1;
        }
        Ok(V1Columns {
            columns: sinks.into_iter().map(|s| s.finish(n)).collect(),
            instances: n,
        })
    }
}

struct InstanceSeed<'a> {
    model: &'a Model,
    sinks: &'a mut [AnySink],
    index: usize,
}

impl<'de> DeserializeSeed<'de> for InstanceSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for InstanceSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object keyed by input name (the model has several inputs)")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = vec![false; self.sinks.len()];
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match self
                .model
                .inputs
                .iter()
                .position(|s| s.name == key.as_ref())
            {
                Some(i) if !seen[i] => {
                    seen[i] = true;
                    self.sinks[i].read(&mut map)?;
                }
                Some(_) => {
                    return Err(de::Error::custom(format!(
                        "instance {}: input '{key}' is given twice",
                        self.index
                    )))
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if let Some(i) = seen.iter().position(|s| !s) {
            return Err(de::Error::custom(format!(
                "instance {}: missing input '{}' (the model has several inputs, so each instance is an object keyed by input name)",
                self.index, self.model.inputs[i].name
            )));
        }
        Ok(())
    }
}

/// What a body reader hands the decoding thread (bounded: a slow decoder
/// slows the connection down instead of piling the body up in memory).
pub type Chunks = tokio::sync::mpsc::Receiver<Bytes>;

/// `std::io::Read` over body chunks arriving from the connection: the
/// decoder sees the body as it comes, and each chunk is freed once read.
pub struct ChunkReader {
    rx: Chunks,
    cur: Bytes,
}

impl ChunkReader {
    pub fn new(rx: Chunks) -> Self {
        ChunkReader {
            rx,
            cur: Bytes::new(),
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(c) => self.cur = c,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        bytes::Buf::advance(&mut self.cur, n);
        Ok(n)
    }
}

/// Runs `f` on a new thread of lower scheduling priority, so that decoding a
/// large body never delays the runtime's threads (health probes, small
/// requests); the result comes back through the returned channel.
pub fn on_decode_thread<R: Send + 'static>(
    f: impl FnOnce() -> R + Send + 'static,
) -> std::io::Result<tokio::sync::oneshot::Receiver<R>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("predictor-decode".into())
        .spawn(move || {
            lower_priority();
            let _ = tx.send(f());
        })?;
    Ok(rx)
}

/// Nice 10 for the calling thread (Linux sets niceness per thread); best effort.
fn lower_priority() {
    // SAFETY: gettid and setpriority only read their arguments.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

/// Decodes a V2 request from a reader (a body still arriving).
pub fn decode_v2_reader(
    model: &Model,
    reader: impl Read,
    body_len: usize,
) -> Result<V2Request, String> {
    let mut de =
        serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(64 * 1024, reader));
    let req = V2RequestSeed { model, body_len }
        .deserialize(&mut de)
        .map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(req)
}

pub fn decode_v2_slice(model: &Model, body: &[u8]) -> Result<V2Request, String> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let req = V2RequestSeed {
        model,
        body_len: body.len(),
    }
    .deserialize(&mut de)
    .map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(req)
}

pub fn decode_v1_reader(model: &Model, reader: impl Read) -> Result<V1Columns, String> {
    let mut de =
        serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(64 * 1024, reader));
    let cols = V1RequestSeed { model }
        .deserialize(&mut de)
        .map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(cols)
}

pub fn decode_v1_slice(model: &Model, body: &[u8]) -> Result<V1Columns, String> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let cols = V1RequestSeed { model }
        .deserialize(&mut de)
        .map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(cols)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(dtype: DataType, text: &str) -> Result<Decoded, String> {
        decode_text(dtype, text)
    }

    #[test]
    fn elements_go_straight_into_the_datatype() {
        let d = typed(DataType::I32, "[[1, 2], [3, -4]]").unwrap();
        assert_eq!(d.data, TensorData::I32(vec![1, 2, 3, -4]));
        assert_eq!(d.nesting, vec![2, 2]);
        let d = typed(DataType::Fp32, "[0.5, 2, -3]").unwrap();
        assert_eq!(d.data, TensorData::Fp32(vec![0.5, 2.0, -3.0]));
        assert_eq!(d.nesting, vec![3]);
        assert_eq!(
            typed(DataType::Bool, "[true]").unwrap().data,
            TensorData::Bool(vec![true])
        );
        assert_eq!(
            typed(DataType::Fp64, "7").unwrap().nesting,
            Vec::<usize>::new()
        );
    }

    #[test]
    fn values_the_datatype_cannot_hold_are_refused() {
        let e = typed(DataType::Fp32, "[1, 3.5e38]").unwrap_err();
        assert!(e.contains("element 1") && e.contains("FP32"), "{e}");
        assert!(typed(DataType::Fp64, "[3.5e38]").is_ok());
        let e = typed(DataType::U8, "[1, 300]").unwrap_err();
        assert!(e.contains("element 1") && e.contains("UINT8"), "{e}");
        assert!(typed(DataType::I8, "[-129]").is_err());
        assert!(typed(DataType::U32, "[-1]").is_err());
        assert!(typed(DataType::I64, "[9223372036854775808]").is_err());
        assert!(typed(DataType::U64, "[18446744073709551615]").is_ok());
        assert!(typed(DataType::I64, "[1.5]").is_err());
        assert!(typed(DataType::Fp32, "[\"a\"]").is_err());
        assert!(typed(DataType::Fp32, "[null]").is_err());
        assert!(typed(DataType::Bool, "[true, 1]").is_err());
        assert!(typed(DataType::Fp32, "[{\"a\": 1}]").is_err());
    }

    #[test]
    fn ragged_nesting_is_refused() {
        let e = typed(DataType::Fp32, "[[1, 2, 3], [4]]").unwrap_err();
        assert!(e.contains("ragged"), "{e}");
        let e = typed(DataType::Fp32, "[[1, 2], 3, 4]").unwrap_err();
        assert!(e.contains("ragged"), "{e}");
        let e = typed(DataType::Fp32, "[[[1], [2]], [[3], [4], [5]]]").unwrap_err();
        assert!(e.contains("ragged"), "{e}");
    }

    #[test]
    fn a_reader_over_chunks_sees_the_whole_body() {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        for part in ["[1, 2", ", 3]"] {
            tx.try_send(Bytes::from(part)).unwrap();
        }
        drop(tx);
        let mut de = serde_json::Deserializer::from_reader(ChunkReader::new(rx));
        let d = TypedData {
            dtype: DataType::I16,
            reserve: 0,
        }
        .deserialize(&mut de)
        .unwrap();
        assert_eq!(d.data, TensorData::I16(vec![1, 2, 3]));
    }

    #[test]
    fn a_lying_shape_cannot_reserve_more_than_the_body_holds() {
        assert_eq!(reserve_for(Some(&[1 << 40, 4]), 100), 51);
        assert_eq!(reserve_for(Some(&[2, 4]), 100), 8);
        assert_eq!(reserve_for(Some(&[-1]), 100), 0);
        assert_eq!(reserve_for(None, 100), 0);
    }
}
