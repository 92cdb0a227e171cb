//! The checks (wasm32 only).

use std::io::Read as _;
use std::path::Path;

use runtime_mobile::classifier::IMAGE_SCRATCH_BYTES;
use runtime_mobile::kernels::{Kernels, PACK_OC, Patches, scalar, wasm32};
use runtime_mobile::{Classifier, Model};
use testkit::mnist::{Digits, fixture_digits, parse_idx, repo_root};
use testkit::rng::Rng;

/// Cases run and cases that differed.
#[derive(Default)]
struct Tally {
    cases: usize,
    differ: usize,
}

impl Tally {
    fn compare<T: PartialEq + std::fmt::Debug>(&mut self, what: &str, want: &[T], got: &[T]) {
        self.cases += 1;
        if want != got {
            self.differ += 1;
            if self.differ <= 5 {
                eprintln!("kernel-check: {what} differs:\n  scalar  {want:?}\n  simd128 {got:?}");
            }
        }
    }
}

pub fn run(data_dir: Option<String>, limit: Option<String>) -> Result<(), String> {
    let limit: Option<usize> = limit.map(|n| n.parse().map_err(|_| format!("N must be a count, not {n}"))).transpose()?;
    let simd = wasm32::simd128();
    let mut t = Tally::default();
    let mut rng = Rng(0x5eed_0f3a_11ce);
    matvec_cases(simd, &mut rng, &mut t);
    pairs_cases(simd, &mut rng, &mut t);
    gemm_cases(simd, &mut rng, &mut t);
    println!("kernel-check: {} random kernel cases, {} differ", t.cases, t.differ);
    let kernel_differ = t.differ;
    let mut m = Tally::default();
    for dataset in testkit::mnist::DATASETS {
        let file = std::fs::read(repo_root().join(format!("models/{dataset}.int8.safetensors")))
            .map_err(|e| format!("{dataset} model: {e}"))?;
        let mut digits = fixture_digits(dataset);
        if let Some(dir) = &data_dir {
            digits = test_split(&Path::new(dir).join(dataset))?;
            if let Some(n) = limit {
                digits = digits.first(n.min(digits.len()));
            }
        }
        models(&file, &digits, simd, &mut m)?;
        println!("kernel-check: {dataset}: {} digits through Classifier, scalar vs {}", digits.len(), simd.name);
    }
    println!("kernel-check: {} classifications, {} differ in any score", m.cases, m.differ);
    if kernel_differ + m.differ > 0 {
        return Err(format!("{} kernel cases and {} classifications differ from the scalar reference", kernel_differ, m.differ));
    }
    Ok(())
}

fn matvec_cases(simd: &Kernels, rng: &mut Rng, t: &mut Tally) {
    let ks = [1, 2, 3, 15, 16, 17, 25, 31, 32, 33, 63, 64, 65, 100, 400, 800, 1024, 1600];
    for &k in &ks {
        for rows in 1..=9 {
            for edge in [false, true] {
                // Edge cases: every weight -128 or 127 and every input -128 (the largest products).
                let w: Vec<i8> =
                    (0..rows * k).map(|_| if edge { if rng.below(2) == 0 { -128 } else { 127 } } else { rng.i8() }).collect();
                let x: Vec<i8> = (0..k).map(|_| if edge { -128 } else { rng.i8() }).collect();
                let (mut want, mut got) = (vec![0; rows], vec![0; rows]);
                (scalar::KERNELS.matvec_i8)(&w, &x, &mut want);
                (simd.matvec_i8)(&w, &x, &mut got);
                t.compare(&format!("matvec_i8 rows {rows} k {k}"), &want, &got);
                let ws: Vec<i8> = w.iter().map(|&v| v.max(-127)).collect();
                (scalar::KERNELS.matvec_i8_sym)(&ws, &x, &mut want);
                (simd.matvec_i8_sym)(&ws, &x, &mut got);
                t.compare(&format!("matvec_i8_sym rows {rows} k {k}"), &want, &got);
            }
        }
    }
}

fn pairs_cases(simd: &Kernels, rng: &mut Rng, t: &mut Tally) {
    for n in [1, 3, 4, 5, 8, 16, 31, 32, 33, 64] {
        for p in [1, 2, 13, 25] {
            for edge in [false, true] {
                let v = |rng: &mut Rng| if edge { i32::MIN + (rng.below(2) as i32) * 0x8000 } else { rng.next() as i32 };
                let wt: Vec<i32> = (0..n * p).map(|_| v(rng)).collect();
                let xp: Vec<i32> = (0..p).map(|_| v(rng)).collect();
                let (mut want, mut got) = (vec![0; n], vec![0; n]);
                (scalar::KERNELS.matvec_pairs_i16)(&wt, &xp, &mut want);
                (simd.matvec_pairs_i16)(&wt, &xp, &mut got);
                t.compare(&format!("matvec_pairs_i16 n {n} p {p}"), &want, &got);
            }
        }
    }
}

fn gemm_cases(simd: &Kernels, rng: &mut Rng, t: &mut Tally) {
    for ocp in [PACK_OC, 2 * PACK_OC, 4 * PACK_OC] {
        for rows in 1..=5 {
            for seg in [4, 8, 20, 32] {
                for n in [1, 2, 4, 7] {
                    let row_stride = seg + 4 * rng.below(4) as usize;
                    let span = (rows - 1) * row_stride + seg;
                    let xu: Vec<u8> = (0..span + 64).map(|_| rng.next() as u8).collect();
                    let starts: Vec<usize> = (0..n).map(|_| rng.below(65) as usize).collect();
                    let wp: Vec<i8> = (0..rows * seg / 4 * ocp * 4).map(|_| rng.i8()).collect();
                    let bias: Vec<i32> = (0..ocp).map(|_| rng.next() as i32 >> 8).collect();
                    let src = Patches { xu: &xu, starts: &starts, rows, row_stride, seg };
                    let (mut want, mut got) = (vec![0; n * ocp], vec![0; n * ocp]);
                    (scalar::KERNELS.gemm_u8i8)(&wp, &src, &bias, &mut want);
                    (simd.gemm_u8i8)(&wp, &src, &bias, &mut got);
                    t.compare(&format!("gemm_u8i8 ocp {ocp} rows {rows} seg {seg} n {n}"), &want, &got);
                    let start: Vec<i32> = (0..ocp).map(|_| rng.next() as i32 >> 4).collect();
                    let (mut want, mut got) = (start.clone(), start);
                    (scalar::KERNELS.gemm_u8i8_max)(&wp, &src, &bias, &mut want);
                    (simd.gemm_u8i8_max)(&wp, &src, &bias, &mut got);
                    t.compare(&format!("gemm_u8i8_max ocp {ocp} rows {rows} seg {seg} n {n}"), &want, &got);
                }
            }
        }
    }
}

/// Every digit through the front door with the reference table and with `simd`.
fn models(file: &[u8], digits: &Digits, simd: &Kernels, t: &mut Tally) -> Result<(), String> {
    let model = Model::parse(file).map_err(|e| e.to_string())?;
    let mut arenas = [vec![0u8; model.session_arena_bytes()], vec![0u8; model.session_arena_bytes()]];
    let mut scratch = [vec![0u8; IMAGE_SCRATCH_BYTES], vec![0u8; IMAGE_SCRATCH_BYTES]];
    let [a0, a1] = &mut arenas;
    let [s0, s1] = &mut scratch;
    let mut reference = Classifier::new(&model, &scalar::KERNELS, a0, s0).map_err(|e| e.to_string())?;
    let mut fast = Classifier::new(&model, simd, a1, s1).map_err(|e| e.to_string())?;
    if !fast.is_packed() {
        return Err(format!("{} did not pack the weights: the packed path is untested", simd.name));
    }
    for (i, (image, _)) in digits.iter().enumerate() {
        let want = reference.classify_image(image).map_err(|e| e.to_string())?.scores.to_vec();
        let got = fast.classify_image(image).map_err(|e| e.to_string())?.scores.to_vec();
        t.compare(&format!("digit {i}"), &want, &got);
    }
    Ok(())
}

/// The t10k files in `dir` (gzip IDX).
fn test_split(dir: &Path) -> Result<Digits, String> {
    let read = |name: &str| -> Result<Vec<u8>, String> {
        let path = dir.join(name);
        let gz = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut out).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(out)
    };
    Ok(parse_idx(&read("t10k-images-idx3-ubyte.gz")?, &read("t10k-labels-idx1-ubyte.gz")?))
}
