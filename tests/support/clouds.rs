//! Synthetic point clouds with mixed charges, and relative error norms.
#![allow(dead_code)]

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub const CLOUDS: [&str; 4] = ["uniform", "gaussian", "two_clusters", "core_halo"];

fn gauss(r: &mut ChaCha8Rng) -> f64 {
    let a: f64 = r.random::<f64>().max(1e-300);
    let b: f64 = r.random();
    (-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos()
}

/// Positions of `kind` and mixed-sign charges (1/3 negative, magnitudes in [0.5, 1.5)).
pub fn cloud<const D: usize>(kind: &str, n: usize, seed: u64) -> (Vec<[f64; D]>, Vec<f64>) {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    let x = (0..n)
        .map(|i| -> [f64; D] {
            match kind {
                "uniform" => std::array::from_fn(|_| r.random::<f64>()),
                "gaussian" => std::array::from_fn(|_| 0.3 * gauss(&mut r)),
                // two dense clusters 100 widths apart
                "two_clusters" => {
                    let off = if i % 2 == 0 { -5.0 } else { 5.0 };
                    std::array::from_fn(|d| 0.05 * gauss(&mut r) + if d == 0 { off } else { 0.0 })
                }
                // 90% in a dense core of width 0.01, 10% in a halo of width 1
                "core_halo" => {
                    let w = if i % 10 == 0 { 1.0 } else { 0.01 };
                    std::array::from_fn(|_| w * gauss(&mut r))
                }
                _ => panic!("unknown cloud {kind}"),
            }
        })
        .collect();
    let q = (0..n)
        .map(|i| (if i % 3 == 0 { -1.0 } else { 1.0 }) * r.random_range(0.5..1.5))
        .collect();
    (x, q)
}

/// `max_i |a_i - b_i| / max_i |b_i|`.
pub fn rel_max(a: &[f64], b: &[f64]) -> f64 {
    let e = a
        .iter()
        .zip(b)
        .fold(0.0f64, |m, (u, v)| m.max((u - v).abs()));
    e / b.iter().fold(0.0f64, |m, v| m.max(v.abs()))
}

/// `max_i |a_i - b_i|_2 / max_i |b_i|_2` for vectors.
pub fn rel_max_vec<const D: usize>(a: &[[f64; D]], b: &[[f64; D]]) -> f64 {
    let norm = |v: [f64; D]| v.iter().map(|c| c * c).sum::<f64>().sqrt();
    let e = a.iter().zip(b).fold(0.0f64, |m, (u, v)| {
        m.max(norm(std::array::from_fn(|d| u[d] - v[d])))
    });
    e / b.iter().fold(0.0f64, |m, v| m.max(norm(*v)))
}

/// `sqrt(sum |a_i - b_i|^2 / sum |b_i|^2)` for vectors.
pub fn rel_rms_vec<const D: usize>(a: &[[f64; D]], b: &[[f64; D]]) -> f64 {
    let (mut e, mut s) = (0.0, 0.0);
    for (u, v) in a.iter().zip(b) {
        for d in 0..D {
            e += (u[d] - v[d]) * (u[d] - v[d]);
            s += v[d] * v[d];
        }
    }
    (e / s).sqrt()
}
