//! `--augment`: what a camera does to a digit, applied to MNIST's training images. Each epoch,
//! every image gets a fresh random stroke thickness (dilation or a soft erosion), rotation,
//! scale, shear, shift and a smooth elastic wobble, and is then resampled into 28x28 with its
//! bounding box as large as the original's and its centre of mass where the original's was
//! (so a thickened digit looks like a bold digit scaled into MNIST's 20x20 box, as the
//! runtime's preprocessing does with a photo).
//!
//! Deterministic and resumable without state: image `i` of epoch `e` draws from its own RNG
//! seeded by `(seed, e, i)`, so the result does not depend on threads or on where a run resumed.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::{IMAGE_PIXELS, IMAGE_SIDE};

const SIDE: usize = IMAGE_SIDE;
/// Largest rotation, radians (~15 degrees: photos are held up to ~12 degrees off).
const MAX_ROTATION: f32 = 0.26;
/// Scale of the digit relative to the original's box.
const SCALE: (f32, f32) = (0.85, 1.08);
const MAX_SHEAR: f32 = 0.15;
/// Largest shift of the centre of mass, pixels.
const MAX_SHIFT: f32 = 1.5;
/// Largest elastic displacement, pixels.
const MAX_ELASTIC: f32 = 1.2;
/// Pixels at or above this are ink when measuring the bounding box (MNIST's binary NIST level).
const INK: f32 = 128.0;

/// The augmented copy of every image in `images` (`n * 784` bytes) for `epoch`, written to `out`.
pub fn augment_epoch(images: &[u8], seed: u64, epoch: usize, out: &mut [u8]) {
    out.par_chunks_mut(IMAGE_PIXELS).zip(images.par_chunks(IMAGE_PIXELS)).enumerate().for_each(|(i, (dst, src))| {
        let mut rng = ChaCha8Rng::seed_from_u64(mix(mix(mix(0x5eed_a06e, seed), epoch as u64), i as u64));
        augment_image(src, dst, &mut rng);
    });
}

/// SplitMix64 of `a` combined with `b`: well-spread per-image seeds from small integers.
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a.wrapping_add(b.wrapping_mul(0x9e37_79b9_7f4a_7c15)).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One image: thickness, then one resampling pass for the geometry.
pub fn augment_image(src: &[u8], dst: &mut [u8], rng: &mut impl Rng) {
    let original: [f32; IMAGE_PIXELS] = core::array::from_fn(|i| f32::from(src[i]));
    let mut img = original;
    match rng.random_range(0..100) {
        0..15 => img = erode_soft(&img),
        15..55 => {}
        55..85 => img = dilate(&img),
        _ => img = dilate(&dilate(&img)),
    }
    let (Some(box_orig), Some(box_new)) = (ink_extent(&original), ink_extent(&img)) else {
        dst.copy_from_slice(src); // blank image: nothing to move
        return;
    };
    let (cx, cy) = centre_of_mass(&img);
    let (ox, oy) = centre_of_mass(&original);

    // Output -> source mapping: q = com + M^-1 (p - centre - shift), M = rotation * shear * scale.
    let scale = box_orig / box_new * rng.random_range(SCALE.0..SCALE.1);
    let angle = rng.random_range(-MAX_ROTATION..MAX_ROTATION);
    let shear = rng.random_range(-MAX_SHEAR..MAX_SHEAR);
    let (sx, sy) = (rng.random_range(-MAX_SHIFT..MAX_SHIFT), rng.random_range(-MAX_SHIFT..MAX_SHIFT));
    let (sin, cos) = angle.sin_cos();
    // M = R * [[1, shear], [0, 1]] * scale; its inverse in closed form.
    let m = [cos * scale, (cos * shear - sin) * scale, sin * scale, (sin * shear + cos) * scale];
    let det = m[0] * m[3] - m[1] * m[2];
    let inv = [m[3] / det, -m[1] / det, -m[2] / det, m[0] / det];
    let wobble = Elastic::random(rng);

    for y in 0..SIDE {
        for x in 0..SIDE {
            let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
            let (dx, dy) = wobble.at(px, py);
            let (rx, ry) = (px + dx - ox - sx, py + dy - oy - sy);
            let qx = cx + inv[0] * rx + inv[1] * ry;
            let qy = cy + inv[2] * rx + inv[3] * ry;
            dst[y * SIDE + x] = bilinear(&img, qx - 0.5, qy - 0.5).round().clamp(0.0, 255.0) as u8;
        }
    }
}

/// A smooth displacement field: one random low-frequency sinusoid per axis.
struct Elastic {
    amp: [f32; 2],
    freq: [(f32, f32); 2],
    phase: [f32; 2],
}

impl Elastic {
    fn random(rng: &mut impl Rng) -> Elastic {
        let mut wave = || {
            let wavelength = rng.random_range(10.0f32..24.0);
            let dir = rng.random_range(0.0f32..core::f32::consts::TAU);
            let k = core::f32::consts::TAU / wavelength;
            (k * dir.cos(), k * dir.sin())
        };
        let freq = [wave(), wave()];
        Elastic {
            amp: [rng.random_range(0.0..MAX_ELASTIC), rng.random_range(0.0..MAX_ELASTIC)],
            freq,
            phase: [rng.random_range(0.0..core::f32::consts::TAU), rng.random_range(0.0..core::f32::consts::TAU)],
        }
    }

    fn at(&self, x: f32, y: f32) -> (f32, f32) {
        let d = |a: usize| self.amp[a] * (self.freq[a].0 * x + self.freq[a].1 * y + self.phase[a]).sin();
        (d(0), d(1))
    }
}

fn pixel(img: &[f32; IMAGE_PIXELS], x: isize, y: isize) -> f32 {
    if (0..SIDE as isize).contains(&x) && (0..SIDE as isize).contains(&y) { img[y as usize * SIDE + x as usize] } else { 0.0 }
}

/// `f` over each pixel's 4-neighbourhood (plus itself); outside the image is black.
fn cross(img: &[f32; IMAGE_PIXELS], f: fn(f32, f32) -> f32) -> [f32; IMAGE_PIXELS] {
    core::array::from_fn(|i| {
        let (x, y) = ((i % SIDE) as isize, (i / SIDE) as isize);
        [(1, 0), (-1, 0), (0, 1), (0, -1)].iter().fold(img[i], |acc, (dx, dy)| f(acc, pixel(img, x + dx, y + dy)))
    })
}

/// Grey dilation by a cross: strokes about 2 pixels wider.
fn dilate(img: &[f32; IMAGE_PIXELS]) -> [f32; IMAGE_PIXELS] {
    cross(img, f32::max)
}

/// Half-strength grey erosion: edges fade, cores stay, so thin digits thin without breaking.
fn erode_soft(img: &[f32; IMAGE_PIXELS]) -> [f32; IMAGE_PIXELS] {
    let eroded = cross(img, f32::min);
    core::array::from_fn(|i| (img[i] + eroded[i]) / 2.0)
}

/// The longer side of the ink's bounding box, `None` when there is no ink.
fn ink_extent(img: &[f32; IMAGE_PIXELS]) -> Option<f32> {
    let (mut x0, mut y0, mut x1, mut y1) = (SIDE, SIDE, 0, 0);
    for (i, &v) in img.iter().enumerate() {
        if v >= INK {
            let (x, y) = (i % SIDE, i / SIDE);
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
        }
    }
    (x1 >= x0 && y1 >= y0).then(|| ((x1 - x0).max(y1 - y0) + 1) as f32)
}

/// Intensity-weighted centre, continuous coordinates (pixel `i` spans `[i, i+1)`).
fn centre_of_mass(img: &[f32; IMAGE_PIXELS]) -> (f32, f32) {
    let (mut sum, mut sx, mut sy) = (0.0f32, 0.0f32, 0.0f32);
    for (i, &v) in img.iter().enumerate() {
        sum += v;
        sx += v * ((i % SIDE) as f32 + 0.5);
        sy += v * ((i / SIDE) as f32 + 0.5);
    }
    if sum > 0.0 { (sx / sum, sy / sum) } else { (SIDE as f32 / 2.0, SIDE as f32 / 2.0) }
}

/// Bilinear sample at pixel-index coordinates (pixel centres at integers).
fn bilinear(img: &[f32; IMAGE_PIXELS], x: f32, y: f32) -> f32 {
    let (fx, fy) = (x.floor(), y.floor());
    let (ax, ay) = (x - fx, y - fy);
    let (ix, iy) = (fx as isize, fy as isize);
    let top = pixel(img, ix, iy) * (1.0 - ax) + pixel(img, ix + 1, iy) * ax;
    let bottom = pixel(img, ix, iy + 1) * (1.0 - ax) + pixel(img, ix + 1, iy + 1) * ax;
    top * (1.0 - ay) + bottom * ay
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A vertical bar 3 pixels wide, rows 4..24.
    fn bar() -> Vec<u8> {
        (0..IMAGE_PIXELS).map(|i| if (13..16).contains(&(i % SIDE)) && (4..24).contains(&(i / SIDE)) { 255 } else { 0 }).collect()
    }

    #[test]
    fn the_same_seed_epoch_and_index_give_the_same_bytes_and_others_differ() {
        let images: Vec<u8> = [bar(), bar()].concat();
        let (mut a, mut b, mut c) = (vec![0; images.len()], vec![0; images.len()], vec![0; images.len()]);
        augment_epoch(&images, 7, 3, &mut a);
        augment_epoch(&images, 7, 3, &mut b);
        augment_epoch(&images, 7, 4, &mut c);
        assert_eq!(a, b);
        assert_ne!(a, c, "another epoch draws other transforms");
        assert_ne!(a[..IMAGE_PIXELS], a[IMAGE_PIXELS..], "each image draws its own transform");
    }

    #[test]
    fn dilation_widens_strokes_and_soft_erosion_fades_their_edges() {
        let img: [f32; IMAGE_PIXELS] = core::array::from_fn(|i| f32::from(bar()[i]));
        let row = |im: &[f32; IMAGE_PIXELS]| im[14 * SIDE..15 * SIDE].iter().filter(|&&v| v >= INK).count();
        assert_eq!((row(&img), row(&dilate(&img)), row(&dilate(&dilate(&img)))), (3, 5, 7));
        let thin = erode_soft(&img);
        assert_eq!((thin[14 * SIDE + 14], thin[14 * SIDE + 13]), (255.0, 127.5));
    }

    #[test]
    fn augmented_digits_keep_their_ink_box_and_centre_roughly() {
        let images = bar();
        for epoch in 0..50 {
            let mut out = vec![0; IMAGE_PIXELS];
            augment_epoch(&images, 0, epoch, &mut out);
            let img: [f32; IMAGE_PIXELS] = core::array::from_fn(|i| f32::from(out[i]));
            let extent = ink_extent(&img).expect("ink survives");
            assert!((15.0..=24.0).contains(&extent), "epoch {epoch}: box {extent}");
            let (x, y) = centre_of_mass(&img);
            assert!((x - 14.5).abs() < 2.5 && (y - 14.0).abs() < 2.5, "epoch {epoch}: centre ({x}, {y})");
        }
    }
}
