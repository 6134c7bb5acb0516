//! Kernel density estimates at the particles (the blob method, SPEC §2):
//!
//!   rho_eps(X_i) = sum_j w_j K_eps(X_i - X_j),   self term j = i included,
//!
//! over the particles of one species, with K the Wendland C2 kernel of
//! standard deviation eps and the neighbours from a Verlet list.

use rayon::prelude::*;

use crate::kernel::{RadialKernel, WendlandC2};
use crate::neighbours::NeighbourList;
use crate::parallel::CHUNK;

/// Fraction of the kernel radius added to the neighbour search radius, so the
/// list stays valid while particles move by up to half of it.
pub const SKIN_FRACTION: f64 = 0.25;

/// The blob density estimate of one species, with its neighbour list.
#[derive(Debug, Clone)]
pub struct BlobDensity<const D: usize> {
    kernel: WendlandC2,
    list: NeighbourList<D>,
    rho: Vec<f64>,
}

#[inline(always)]
pub(crate) fn dist2<const D: usize>(a: &[f64; D], b: &[f64; D]) -> f64 {
    let mut s = 0.0;
    for k in 0..D {
        let d = a[k] - b[k];
        s += d * d;
    }
    s
}

impl<const D: usize> BlobDensity<D> {
    /// Estimator with kernel standard deviation `eps`.
    pub fn new(eps: f64) -> Self {
        let kernel = WendlandC2::new(D, eps);
        let r = kernel.support();
        BlobDensity {
            kernel,
            list: NeighbourList::new(r, SKIN_FRACTION * r),
            rho: Vec::new(),
        }
    }

    pub fn kernel(&self) -> &WendlandC2 {
        &self.kernel
    }

    pub fn list(&self) -> &NeighbourList<D> {
        &self.list
    }

    /// rho_eps at every particle of `x` (one species, weights `w`).
    pub fn compute(&mut self, x: &[[f64; D]], w: &[f64]) -> &[f64] {
        self.list.update(x);
        self.rho.resize(x.len(), 0.0);
        let (kernel, list) = (&self.kernel, &self.list);
        self.rho
            .par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(c, out)| {
                for (k, r) in out.iter_mut().enumerate() {
                    let i = c * CHUNK + k;
                    let xi = &x[i];
                    let mut s = 0.0;
                    for &j in list.of(i) {
                        let j = j as usize;
                        s += w[j] * kernel.value(dist2(xi, &x[j]));
                    }
                    *r = s;
                }
            });
        &self.rho
    }

    /// The densities of the last `compute`.
    pub fn rho(&self) -> &[f64] {
        &self.rho
    }
}

/// Rule for `bandwidth = "auto"` (stated in the README): eps such that the
/// kernel's support ball, radius R (about 3.8 eps, see [`WendlandC2`]), holds on average
/// `TARGET_NEIGHBOURS[d-1]` particles of the species when it is distributed as a
/// Gaussian with the cloud's covariance.
///
/// For a Gaussian of covariance S, the density seen by a particle averages
/// E[rho] = 1 / ((4 pi)^(d/2) sqrt(det S)) (unit mass); the ball of radius R
/// holds N E[rho] V_d R^d particles, V_d the unit ball's volume.
pub const TARGET_NEIGHBOURS: [f64; 3] = [20.0, 50.0, 120.0];

/// The automatic bandwidth of one species (see [`TARGET_NEIGHBOURS`]).
pub fn auto_bandwidth<const D: usize>(x: &[[f64; D]], w: &[f64]) -> f64 {
    let m: f64 = w.iter().sum();
    let mean: [f64; D] =
        std::array::from_fn(|a| x.iter().zip(w).map(|(p, wi)| wi * p[a]).sum::<f64>() / m);
    let cov = nalgebra::DMatrix::<f64>::from_fn(D, D, |a, b| {
        x.iter()
            .zip(w)
            .map(|(p, wi)| wi * (p[a] - mean[a]) * (p[b] - mean[b]))
            .sum::<f64>()
            / m
    });
    // A degenerate cloud (all particles at one point) gets the unit scale.
    let det = cov.determinant().max(f64::MIN_POSITIVE);
    let pi = std::f64::consts::PI;
    let mean_density = 1.0 / ((4.0 * pi).powf(D as f64 / 2.0) * det.sqrt());
    let unit_ball = match D {
        1 => 2.0,
        2 => pi,
        _ => 4.0 * pi / 3.0,
    };
    let n = x.len() as f64;
    let target = TARGET_NEIGHBOURS[D - 1].min(n);
    let radius = (target / (n * mean_density * unit_ball)).powf(1.0 / D as f64);
    radius / WendlandC2::radius_per_bandwidth(D)
}
