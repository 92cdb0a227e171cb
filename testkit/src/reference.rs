//! The independent reference: unfused, layer by layer, wide integers, the format's definitions
//! (FORMAT.md) written out directly, not the runtime's code.

use runtime_mobile::{Activation, Op, Shape};

use crate::Desc;

/// `round(acc * M * 2^-31 * 2^-shift)` as FORMAT.md defines it.
pub fn ref_requant(acc: i32, m: i32, shift: i32, zp: i32, relu: bool) -> i8 {
    let x: i64 = if shift < 0 { ((acc as i64) * (1i64 << -shift)).clamp(i32::MIN as i64, i32::MAX as i64) } else { acc as i64 };
    // Round half up: floor((x*M + 2^30) / 2^31), saturated to i32.
    let hi = ((x as i128 * m as i128 + (1i128 << 30)).div_euclid(1i128 << 31)).min(i32::MAX as i128) as i64;
    // Round half away from zero for the right shift.
    let y = if shift > 0 {
        let d = 1i64 << shift;
        hi.signum() * ((hi.abs() + d / 2) / d)
    } else {
        hi
    };
    let lo = if relu { zp as i64 } else { -128 };
    (zp as i64 + y).clamp(lo, 127) as i8
}

fn ref_div_round(sum: i64, n: i64) -> i64 {
    sum.signum() * ((sum.abs() + n / 2) / n)
}

/// Runs `desc` on `input` naively. Returns the final int8 outputs.
pub fn reference(desc: &Desc, input: &[i8]) -> Vec<i8> {
    let mut x: Vec<i64> = input.iter().map(|&v| v as i64).collect();
    let mut shape = desc.input_shape;
    let mut zp = desc.input_quant.zero_point as i64;
    for (spec, t) in &desc.layers {
        match spec.op {
            Op::Conv2d {
                in_channels: c,
                out_channels: oc,
                kernel: [kh, kw],
                stride: [sh, sw],
                padding: [ph, pw],
                activation,
                output,
            } => {
                let t = t.as_ref().unwrap();
                let Shape::Chw(_, h, w) = shape else { panic!() };
                let Shape::Chw(_, oh, ow) = spec.output_shape else { panic!() };
                let mut y = vec![0i64; oc * oh * ow];
                for o in 0..oc {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let mut acc = t.bias[o] as i64;
                            for ic in 0..c {
                                for ky in 0..kh {
                                    for kx in 0..kw {
                                        let iy = (oy * sh + ky) as i64 - ph as i64;
                                        let ix = (ox * sw + kx) as i64 - pw as i64;
                                        if iy < 0 || ix < 0 || iy >= h as i64 || ix >= w as i64 {
                                            continue; // padding is real zero: contributes nothing
                                        }
                                        let v = x[(ic * h + iy as usize) * w + ix as usize] - zp;
                                        acc += v * t.weight[((o * c + ic) * kh + ky) * kw + kx] as i64;
                                    }
                                }
                            }
                            let q = ref_requant(
                                acc as i32,
                                t.multiplier[o],
                                t.shift[o],
                                output.zero_point,
                                activation == Activation::Relu,
                            );
                            y[(o * oh + oy) * ow + ox] = q as i64;
                        }
                    }
                }
                x = y;
                zp = output.zero_point as i64;
            }
            Op::Dense { in_features: n, out_features: m, activation, output } => {
                let t = t.as_ref().unwrap();
                x = (0..m)
                    .map(|o| {
                        let acc: i64 = t.bias[o] as i64 + (0..n).map(|i| (x[i] - zp) * t.weight[o * n + i] as i64).sum::<i64>();
                        ref_requant(acc as i32, t.multiplier[o], t.shift[o], output.zero_point, activation == Activation::Relu)
                            as i64
                    })
                    .collect();
                zp = output.zero_point as i64;
            }
            Op::MaxPool2d(p) | Op::AvgPool2d(p) => {
                let avg = matches!(spec.op, Op::AvgPool2d(_));
                let Shape::Chw(c, h, w) = shape else { panic!() };
                let Shape::Chw(_, oh, ow) = spec.output_shape else { panic!() };
                let mut y = vec![0i64; c * oh * ow];
                for ch in 0..c {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let mut vals = Vec::new();
                            for ky in 0..p.kernel[0] {
                                for kx in 0..p.kernel[1] {
                                    let iy = (oy * p.stride[0] + ky) as i64 - p.padding[0] as i64;
                                    let ix = (ox * p.stride[1] + kx) as i64 - p.padding[1] as i64;
                                    if iy >= 0 && ix >= 0 && iy < h as i64 && ix < w as i64 {
                                        vals.push(x[(ch * h + iy as usize) * w + ix as usize]);
                                    }
                                }
                            }
                            y[(ch * oh + oy) * ow + ox] = if avg {
                                ref_div_round(vals.iter().sum(), vals.len() as i64)
                            } else {
                                *vals.iter().max().unwrap()
                            };
                        }
                    }
                }
                x = y;
            }
            Op::Relu => x.iter_mut().for_each(|v| *v = (*v).max(zp)),
            Op::Flatten | Op::Softmax => {}
        }
        shape = spec.output_shape;
    }
    x.into_iter().map(|v| i8::try_from(v).unwrap()).collect()
}
