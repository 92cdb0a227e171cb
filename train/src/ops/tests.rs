//! Checks the fast ops against candle's stock ops (values and gradients) and for determinism.

use candle_core::{DType, Device, Result, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

fn rand_tensor(rng: &mut ChaCha8Rng, dims: &[usize], scale: f32) -> Tensor {
    let n = dims.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0) * scale).collect();
    Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
}

/// Asserts `|got - want| <= tol * max|want|` elementwise (error relative to the tensor's scale).
fn assert_close(what: &str, got: &Tensor, want: &Tensor, tol: f32) {
    assert_eq!(got.dims(), want.dims(), "{what}: shape");
    let g = got.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let w = want.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let scale = w.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    let (i, err) = g.iter().zip(&w).map(|(a, b)| (a - b).abs()).enumerate().fold((0, 0f32), |m, e| if e.1 > m.1 { e } else { m });
    assert!(err <= tol * scale, "{what}: |{} - {}| = {err} at {i} > {tol} * {scale}", g[i], w[i]);
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().map(|v| v.to_bits()).collect()
}

type Op3 = fn(&Tensor, &Tensor, &Tensor) -> Result<Tensor>;

/// Output of `op(x, w, b)` and the gradients of `sum(op(x, w, b) * r)` w.r.t. x, w, b.
struct Run {
    y: Tensor,
    dx: Tensor,
    dw: Tensor,
    db: Tensor,
}

fn run(op: Op3, x: &Var, w: &Var, b: &Var, r_seed: u64) -> Run {
    let y = op(x.as_tensor(), w.as_tensor(), b.as_tensor()).unwrap();
    let r = rand_tensor(&mut ChaCha8Rng::seed_from_u64(r_seed), y.dims(), 1.0);
    let grads = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
    let g = |v: &Var| grads.get(v.as_tensor()).expect("missing gradient").clone();
    Run { dx: g(x), dw: g(w), db: g(b), y }
}

/// Random (x, w, b) as variables for `x` [n, c, h, wd] and a `k x k` kernel with `co` outputs.
fn inputs(seed: u64, (n, c, h, wd): (usize, usize, usize, usize), co: usize, k: usize) -> (Var, Var, Var) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x = rand_tensor(&mut rng, &[n, c, h, wd], 1.0);
    let w = rand_tensor(&mut rng, &[co, c, k, k], 1.0 / ((c * k * k) as f32).sqrt());
    let b = rand_tensor(&mut rng, &[co], 0.1);
    (Var::from_tensor(&x).unwrap(), Var::from_tensor(&w).unwrap(), Var::from_tensor(&b).unwrap())
}

/// The model's two convolutions and odd shapes: C_in 3, K 1/3/4, odd and non-square outputs,
/// batches that are not a multiple of the chunk size.
/// `(x dims, C_out, K)`.
type Case = ((usize, usize, usize, usize), usize, usize);

const SHAPES: &[Case] = &[
    ((32, 1, 28, 28), 32, 5),
    ((32, 32, 12, 12), 64, 5),
    ((5, 3, 9, 9), 4, 3),
    ((3, 2, 10, 7), 6, 4),
    ((2, 3, 6, 6), 5, 1),
    ((1, 1, 6, 6), 1, 5),
];

/// Reference ReLU + 2x2 max-pool from differentiable stock ops whose backward routes the
/// gradient to the maximum (a max reduction over reshaped windows), unlike candle 0.11.1's
/// `max_pool2d` backward (see `stock_max_pool2d_backward_is_a_quarter`).
fn reference_pool(x: &Tensor) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let (ph, pw) = (h / 2, w / 2);
    x.narrow(2, 0, 2 * ph)?
        .narrow(3, 0, 2 * pw)?
        .reshape((n, c, ph, 2, pw, 2))?
        .max_keepdim(5)?
        .max_keepdim(3)?
        .reshape((n, c, ph, pw))
}

fn reference_fused(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    reference_pool(&stock_conv2d(x, w, b)?.relu()?)
}

fn check_against(op: Op3, reference: Op3) {
    for (i, &(xd, co, k)) in SHAPES.iter().enumerate() {
        let (x, w, b) = inputs(i as u64, xd, co, k);
        let got = run(op, &x, &w, &b, 100 + i as u64);
        let want = run(reference, &x, &w, &b, 100 + i as u64);
        let tag = format!("x {xd:?} co {co} k {k}");
        assert_close(&format!("{tag} y"), &got.y, &want.y, 1e-5);
        assert_close(&format!("{tag} dx"), &got.dx, &want.dx, 1e-4);
        assert_close(&format!("{tag} dw"), &got.dw, &want.dw, 1e-4);
        assert_close(&format!("{tag} db"), &got.db, &want.db, 1e-4);
    }
}

#[test]
fn conv2d_matches_stock() {
    check_against(conv2d, stock_conv2d);
}

#[test]
fn fused_matches_stock_conv_relu_and_reference_pool() {
    check_against(conv2d_relu_maxpool2, reference_fused);
}

#[test]
fn fused_equals_unfused_fast_ops() {
    let unfused: Op3 = |x, w, b| max_pool2x2(&conv2d(x, w, b)?.relu()?);
    check_against(conv2d_relu_maxpool2, unfused);
}

#[test]
fn max_pool_matches_reference() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for dims in [[32, 32, 24, 24], [2, 3, 7, 5], [1, 1, 2, 2]] {
        let x = Var::from_tensor(&rand_tensor(&mut rng, &dims, 1.0)).unwrap();
        let r = rand_tensor(&mut rng, &[dims[0], dims[1], dims[2] / 2, dims[3] / 2], 1.0);
        let grad = |y: Tensor| (&y * &r).unwrap().sum_all().unwrap().backward().unwrap().get(&x).unwrap().clone();
        let got = max_pool2x2(&x).unwrap();
        let want = reference_pool(&x).unwrap();
        assert_eq!(bits(&got), bits(&want), "{dims:?}: forward is exact");
        assert_eq!(bits(&got), bits(&x.max_pool2d(2).unwrap()), "{dims:?}: same as stock forward");
        assert_eq!(bits(&grad(got)), bits(&grad(want)), "{dims:?}: gradient is exact");
    }
}

/// Documents why the fast pools do not match candle's stock `max_pool2d` gradient: with unique
/// maxima, stock hands each maximum a quarter of the gradient. If candle fixes this, this test
/// fails and the note in `ops::pool` should be revisited.
#[test]
fn stock_max_pool2d_backward_is_a_quarter() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let x = Var::from_tensor(&rand_tensor(&mut rng, &[2, 3, 6, 6], 1.0)).unwrap();
    let r = rand_tensor(&mut rng, &[2, 3, 3, 3], 1.0);
    let grad = |y: Tensor| (&y * &r).unwrap().sum_all().unwrap().backward().unwrap().get(&x).unwrap().clone();
    let stock = grad(x.max_pool2d(2).unwrap());
    let ours = grad(max_pool2x2(&x).unwrap());
    assert_close("stock * 4", &(stock * 4.0).unwrap(), &ours, 1e-6);
}

/// Same inputs, same bits, whatever the number of threads or their schedule.
#[test]
fn deterministic_across_runs_and_thread_counts() {
    let (x, w, b) = inputs(42, (32, 32, 12, 12), 64, 5);
    let once = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let f = run(conv2d_relu_maxpool2, &x, &w, &b, 9);
            let c = run(conv2d, &x, &w, &b, 9);
            [f.y, f.dx, f.dw, f.db, c.y, c.dx, c.dw, c.db].iter().map(bits).collect::<Vec<_>>()
        })
    };
    let first = once(2);
    assert_eq!(first, once(2));
    assert_eq!(first, once(1));
    assert_eq!(first, once(3));
}

/// Inputs that are not variables get no gradient (the first layer's images), and weight
/// gradients are unaffected by skipping that work.
#[test]
fn untracked_input_gets_no_gradient() {
    let (x, w, b) = inputs(3, (4, 1, 28, 28), 32, 5);
    let x = x.as_tensor().detach();
    for op in [conv2d as Op3, conv2d_relu_maxpool2] {
        let y = op(&x, &w, &b).unwrap();
        let r = rand_tensor(&mut ChaCha8Rng::seed_from_u64(1), y.dims(), 1.0);
        let grads = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(grads.get(&x).is_none());
        let xv = Var::from_tensor(&x).unwrap();
        let tracked = run(op, &xv, &w, &b, 1);
        assert_eq!(bits(grads.get(&w).unwrap()), bits(&tracked.dw));
        assert_eq!(bits(grads.get(&b).unwrap()), bits(&tracked.db));
    }
}

#[test]
fn non_contiguous_inputs() {
    let (x, w, b) = inputs(5, (3, 2, 9, 8), 4, 3);
    let xt = x.as_tensor().transpose(2, 3).unwrap();
    assert!(!xt.is_contiguous());
    let got = conv2d_relu_maxpool2(&xt, &w, &b).unwrap();
    let want = reference_fused(&xt, &w, &b).unwrap();
    assert_close("fused", &got, &want, 1e-5);
    assert_close("conv", &conv2d(&xt, &w, &b).unwrap(), &stock_conv2d(&xt, &w, &b).unwrap(), 1e-5);
    assert_close("pool", &max_pool2x2(&xt).unwrap(), &xt.max_pool2d(2).unwrap(), 0.0);
}

/// Other dtypes take candle's stock path.
#[test]
fn f64_falls_back_to_stock() {
    let (x, w, b) = inputs(6, (2, 3, 8, 8), 4, 3);
    let [x, w, b] = [&x, &w, &b].map(|v| v.to_dtype(DType::F64).unwrap());
    let got = conv2d_relu_maxpool2(&x, &w, &b).unwrap();
    let want = stock_conv2d(&x, &w, &b).unwrap().relu().unwrap().max_pool2d(2).unwrap();
    assert_eq!(got.dtype(), DType::F64);
    let diff = (got - want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap();
    assert_eq!(diff, 0.0);
}

/// A 1x1 convolution output pools to nothing; the ops must return an empty tensor, not panic.
#[test]
fn empty_pooled_output() {
    let (x, w, b) = inputs(11, (2, 1, 5, 5), 3, 5);
    let y = conv2d_relu_maxpool2(&x, &w, &b).unwrap();
    assert_eq!(y.dims(), &[2, 3, 0, 0]);
    let grads = y.sum_all().unwrap().backward().unwrap();
    assert_eq!(bits(grads.get(&w).unwrap()), vec![0; 3 * 25]);
    let p = max_pool2x2(&conv2d(&x, &w, &b).unwrap()).unwrap();
    assert_eq!(p.dims(), &[2, 3, 0, 0]);
    p.sum_all().unwrap().backward().unwrap();
}
