//! ONNX writers: [`f32`](mod@f32) (the float network) and [`qoperator`] (the int8 network in QOperator form,
//! uint8 activations and int8 weights).
//!
//! The protobuf types are tract-onnx's own prost-generated ones (`tract_onnx::pb`, a public
//! module), encoded with `prost::Message`: the same types tract parses with, so there is no second
//! protobuf stack and no generated code of ours to keep in sync with onnx.proto.

pub mod f32;
pub mod qoperator;

use prost::Message;
use tract_onnx::pb::{
    self, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto, attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto,
};

/// Opset 13: per-axis QuantizeLinear/DequantizeLinear, 8-bit MaxPool (12+), 8-bit Flatten (13+).
pub const OPSET: i64 = 13;
/// IR version 7 is the one that introduced opset 13; every runtime that reads opset 13 reads it.
pub const IR_VERSION: i64 = 7;
/// Graph input: images `[N, 1, 28, 28]`, f32 in [0, 1] (pixel / 255), as `train` feeds them.
pub const INPUT: &str = "image";
/// Graph output: logits `[N, 10]`, f32.
pub const OUTPUT: &str = "logits";
/// Name of the dynamic batch dimension.
pub const BATCH_DIM: &str = "N";

/// The bytes of an ONNX file.
pub fn encode(model: &ModelProto) -> Vec<u8> {
    model.encode_to_vec()
}

/// A dimension of a graph input/output: fixed or the named batch dimension.
pub enum Dim {
    Batch,
    Fixed(usize),
}

pub fn value_info(name: &str, elem: DataType, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            value: Some(match d {
                Dim::Batch => tensor_shape_proto::dimension::Value::DimParam(BATCH_DIM.to_owned()),
                Dim::Fixed(n) => tensor_shape_proto::dimension::Value::DimValue(*n as i64),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.to_owned(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: elem as i32,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn tensor(name: &str, dims: &[usize], data_type: DataType, raw_data: Vec<u8>) -> TensorProto {
    TensorProto {
        name: name.to_owned(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: data_type as i32,
        raw_data,
        ..Default::default()
    }
}

/// Initializers store little-endian raw bytes, as the ONNX spec requires for `raw_data`.
pub fn tensor_f32(name: &str, dims: &[usize], v: &[f32]) -> TensorProto {
    tensor(name, dims, DataType::Float, v.iter().flat_map(|x| x.to_le_bytes()).collect())
}

pub fn tensor_i8(name: &str, dims: &[usize], v: &[i8]) -> TensorProto {
    tensor(name, dims, DataType::Int8, v.iter().map(|&x| x as u8).collect())
}

pub fn tensor_u8(name: &str, dims: &[usize], v: &[u8]) -> TensorProto {
    tensor(name, dims, DataType::Uint8, v.to_vec())
}

pub fn tensor_i32(name: &str, dims: &[usize], v: &[i32]) -> TensorProto {
    tensor(name, dims, DataType::Int32, v.iter().flat_map(|x| x.to_le_bytes()).collect())
}

pub fn tensor_i64(name: &str, dims: &[usize], v: &[i64]) -> TensorProto {
    tensor(name, dims, DataType::Int64, v.iter().flat_map(|x| x.to_le_bytes()).collect())
}

pub fn attr_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto { name: name.to_owned(), r#type: AttributeType::Int as i32, i, ..Default::default() }
}

pub fn attr_ints(name: &str, ints: &[usize]) -> AttributeProto {
    AttributeProto {
        name: name.to_owned(),
        r#type: AttributeType::Ints as i32,
        ints: ints.iter().map(|&i| i as i64).collect(),
        ..Default::default()
    }
}

pub fn node(op_type: &str, name: &str, inputs: &[&str], outputs: &[&str], attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: op_type.to_owned(),
        name: name.to_owned(),
        input: inputs.iter().map(|s| (*s).to_owned()).collect(),
        output: outputs.iter().map(|s| (*s).to_owned()).collect(),
        attribute,
        ..Default::default()
    }
}

/// Conv/pool window attributes (ONNX pads are `[top, left, bottom, right]`).
pub fn window_attrs(kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2]) -> Vec<AttributeProto> {
    vec![
        attr_ints("kernel_shape", &kernel),
        attr_ints("strides", &stride),
        attr_ints("pads", &[padding[0], padding[1], padding[0], padding[1]]),
    ]
}

/// Wraps a graph into a model with our opset, IR version and provenance.
pub fn model(graph: GraphProto, doc_string: &str) -> ModelProto {
    ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: OPSET }],
        producer_name: "export".to_owned(),
        producer_version: env!("CARGO_PKG_VERSION").to_owned(),
        doc_string: doc_string.to_owned(),
        graph: Some(graph),
        metadata_props: Vec::new(),
        ..Default::default()
    }
}

/// Adds `key = value` to the model's metadata_props (shown by Netron and onnxruntime).
pub fn add_metadata(model: &mut ModelProto, key: &str, value: &str) {
    model.metadata_props.push(pb::StringStringEntryProto { key: key.to_owned(), value: value.to_owned() });
}
