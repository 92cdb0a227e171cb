//! `model.onnx`: the float network, node for node what `train::model::Cnn::forward` computes:
//! Conv, Relu, MaxPool, Conv, Relu, MaxPool, Flatten (CHW order, as candle's `flatten_from(1)`),
//! Gemm (`transB = 1`, weights kept in PyTorch `[out, in]` layout), Relu, Gemm.

use anyhow::Result;
use tract_onnx::pb::{GraphProto, ModelProto, tensor_proto::DataType};
use train::data::{CLASSES, IMAGE_SIDE};
use train::model::Cnn;

use super::{Dim, INPUT, OUTPUT, attr_int, model, node, tensor_f32, value_info, window_attrs};

pub fn build(cnn: &Cnn, labels: &[String]) -> Result<ModelProto> {
    let mut graph = GraphProto { name: "seed_cnn_f32".to_owned(), ..Default::default() };
    for (name, t) in cnn.named_tensors() {
        graph.initializer.push(tensor_f32(name, t.dims(), &t.flatten_all()?.to_vec1::<f32>()?));
    }
    let pool = || window_attrs([2, 2], [2, 2], [0, 0]);
    // Shapes were validated on load (`Cnn::from_tensors`): conv weights are `[out, in, kh, kw]`.
    let conv = |var: usize| {
        let d = cnn.vars[var].dims();
        window_attrs([d[2], d[3]], [1, 1], [0, 0])
    };
    graph.node = vec![
        node("Conv", "conv1", &[INPUT, "conv1.weight", "conv1.bias"], &["conv1.out"], conv(0)),
        node("Relu", "relu1", &["conv1.out"], &["relu1.out"], vec![]),
        node("MaxPool", "pool1", &["relu1.out"], &["pool1.out"], pool()),
        node("Conv", "conv2", &["pool1.out", "conv2.weight", "conv2.bias"], &["conv2.out"], conv(2)),
        node("Relu", "relu2", &["conv2.out"], &["relu2.out"], vec![]),
        node("MaxPool", "pool2", &["relu2.out"], &["pool2.out"], pool()),
        node("Flatten", "flatten", &["pool2.out"], &["flat"], vec![attr_int("axis", 1)]),
        node("Gemm", "fc1", &["flat", "fc1.weight", "fc1.bias"], &["fc1.out"], vec![attr_int("transB", 1)]),
        node("Relu", "relu3", &["fc1.out"], &["relu3.out"], vec![]),
        node("Gemm", "fc2", &["relu3.out", "fc2.weight", "fc2.bias"], &[OUTPUT], vec![attr_int("transB", 1)]),
    ];
    let (h, c) = (IMAGE_SIDE, CLASSES);
    graph.input = vec![value_info(INPUT, DataType::Float, &[Dim::Batch, Dim::Fixed(1), Dim::Fixed(h), Dim::Fixed(h)])];
    graph.output = vec![value_info(OUTPUT, DataType::Float, &[Dim::Batch, Dim::Fixed(c)])];
    let mut m = model(graph, "Seed MNIST CNN, f32. Input: images [N,1,28,28] = pixel/255. Output: logits [N,10].");
    super::add_metadata(&mut m, "labels", &serde_json::to_string(labels)?);
    Ok(m)
}
