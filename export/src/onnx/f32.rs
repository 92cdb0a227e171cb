//! `model.onnx` for any network `train` writes: node for node what `train::model::Cnn::forward`
//! computes, walking its layer list: Conv (with strides and pads), Relu, MaxPool, AveragePool,
//! Flatten (CHW order, as candle's `flatten_from(1)`), Gemm (`transB = 1`, weights kept in
//! PyTorch `[out, in]` layout).

use anyhow::Result;
use tract_onnx::pb::{GraphProto, ModelProto, NodeProto, tensor_proto::DataType};
use train::data::{CLASSES, IMAGE_SIDE};
use train::model::{Cnn, Layer, SEED};

use super::{Dim, INPUT, OUTPUT, add_metadata, attr_int, model, node, tensor_f32, value_info, window_attrs};

pub fn build(cnn: &Cnn, labels: &[String]) -> Result<ModelProto> {
    let arch = &cnn.arch;
    let seed = arch.name == SEED && *arch == train::model::Architecture::seed();
    let graph_name = if seed { "seed_cnn_f32".to_owned() } else { format!("{}_cnn_f32", arch.name) };
    let mut graph = GraphProto { name: graph_name, ..Default::default() };
    for (name, t) in cnn.named_tensors() {
        graph.initializer.push(tensor_f32(name, t.dims(), &t.flatten_all()?.to_vec1::<f32>()?));
    }
    let names = arch.layer_names();
    let (mut relus, mut pools, mut flattens) = (0, 0, 0);
    let mut cur = INPUT.to_owned();
    let mut nodes: Vec<NodeProto> = Vec::new();
    for (layer, name) in arch.layers.iter().zip(&names) {
        let (op, node_name, out, attrs, params) = match *layer {
            Layer::Conv2d { kernel, stride, padding, .. } => {
                let n = name.clone().expect("conv layers are named");
                let attrs = window_attrs([kernel, kernel], [stride, stride], [padding, padding]);
                ("Conv", n.clone(), format!("{n}.out"), attrs, Some(n))
            }
            Layer::Dense { .. } => {
                let n = name.clone().expect("dense layers are named");
                ("Gemm", n.clone(), format!("{n}.out"), vec![attr_int("transB", 1)], Some(n))
            }
            Layer::Relu => {
                relus += 1;
                ("Relu", format!("relu{relus}"), format!("relu{relus}.out"), vec![], None)
            }
            Layer::MaxPool2d { kernel, stride } | Layer::AvgPool2d { kernel, stride } => {
                pools += 1;
                let op = if matches!(layer, Layer::MaxPool2d { .. }) { "MaxPool" } else { "AveragePool" };
                (
                    op,
                    format!("pool{pools}"),
                    format!("pool{pools}.out"),
                    window_attrs([kernel, kernel], [stride, stride], [0, 0]),
                    None,
                )
            }
            Layer::Flatten => {
                flattens += 1;
                let n = if flattens == 1 { "flatten".to_owned() } else { format!("flatten{flattens}") };
                let out = if flattens == 1 { "flat".to_owned() } else { format!("flat{flattens}") };
                ("Flatten", n, out, vec![attr_int("axis", 1)], None)
            }
        };
        let inputs: Vec<String> = match &params {
            Some(p) => vec![cur.clone(), format!("{p}.weight"), format!("{p}.bias")],
            None => vec![cur.clone()],
        };
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        nodes.push(node(op, &node_name, &inputs, &[&out], attrs));
        cur = out;
    }
    // The last layer's output is the graph's.
    if let Some(last) = nodes.last_mut() {
        last.output = vec![OUTPUT.to_owned()];
    }
    graph.node = nodes;
    let (h, c) = (IMAGE_SIDE, CLASSES);
    graph.input = vec![value_info(INPUT, DataType::Float, &[Dim::Batch, Dim::Fixed(1), Dim::Fixed(h), Dim::Fixed(h)])];
    graph.output = vec![value_info(OUTPUT, DataType::Float, &[Dim::Batch, Dim::Fixed(c)])];
    let doc = if seed {
        "Seed MNIST CNN, f32. Input: images [N,1,28,28] = pixel/255. Output: logits [N,10].".to_owned()
    } else {
        format!("`{}` CNN ({}), f32. Input: images [N,1,28,28] = pixel/255. Output: logits [N,10].", arch.name, arch.describe())
    };
    let mut m = model(graph, &doc);
    add_metadata(&mut m, "labels", &serde_json::to_string(labels)?);
    Ok(m)
}

#[cfg(test)]
mod tests {
    use candle_core::Device;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use train::model::{Architecture, Cnn};

    #[test]
    fn the_seed_graph_is_the_seed_network() {
        let cnn = Cnn::init(&mut ChaCha8Rng::seed_from_u64(3), &Device::Cpu).unwrap();
        let labels: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        let g = super::build(&cnn, &labels).unwrap().graph.unwrap();
        let ops: Vec<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(ops, ["Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool", "Flatten", "Gemm", "Relu", "Gemm"]);
        assert_eq!(g.name, "seed_cnn_f32");
        assert_eq!(g.initializer.len(), 8);
    }

    #[test]
    fn other_networks_get_their_own_nodes() {
        let arch = Architecture::preset("wide").unwrap();
        let cnn = Cnn::with_arch(&arch, &mut ChaCha8Rng::seed_from_u64(3), &Device::Cpu).unwrap();
        let labels: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        let m = super::build(&cnn, &labels).unwrap();
        let g = m.graph.unwrap();
        let ops: Vec<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(ops, ["Conv", "Relu", "MaxPool", "Conv", "Relu", "AveragePool", "Flatten", "Gemm", "Relu", "Gemm"]);
        assert_eq!(g.node.last().unwrap().output, [crate::onnx::OUTPUT]);
        assert_eq!(g.name, "wide_cnn_f32");
    }
}
