//! One species at one step of either kind of run, as a measure: its mass,
//! mean and covariance (weighted sums over particles, or over cell centers
//! with weights rho_c V), the box where its density can be non-zero, and
//! its density at any point (the blob estimate for particles, multilinear
//! interpolation for a grid).
//!
//! The blob estimate here is the solver's kernel density sum
//! rho(x) = sum_j w_j K_eps(x - X_j) with the one statement of the kernel,
//! [`WendlandC2`], evaluated at the cell centers of the common grid rather
//! than at the particles: the solver's estimator
//! ([`BlobDensity`](crate::density::BlobDensity)) answers only at the
//! particles. At the particles the two agree to rounding (tested below).

use kiddo::{ImmutableKdTree, SquaredEuclidean};
use rayon::prelude::*;

use super::grid_run::GridFrame;
use crate::model::kernel::{RadialKernel, WendlandC2};
use crate::util::grid::Grid;
use crate::util::parallel::CHUNK;

/// One species at one step, ready for the metrics.
pub(super) enum Measure<'a, const D: usize> {
    Particles {
        x: Vec<[f64; D]>,
        w: Vec<f64>,
        kernel: WendlandC2,
        /// The run's box [lower, upper], if any: the estimate is then that
        /// of the density reflected across its walls, as the solver's
        /// (SPEC §7), and 0 outside.
        walls: Option<([f64; D], [f64; D])>,
    },
    Grid(&'a GridFrame<D>),
}

/// Mass, mean and covariance (of the normalized law, d x d row-major).
pub(super) struct Moments {
    pub(super) mass: f64,
    pub(super) mean: Vec<f64>,
    pub(super) cov: Vec<f64>,
}

/// M = sum_i w_i, mean = sum_i w_i x_i / M,
/// cov = sum_i w_i (x_i - mean)(x_i - mean)^T / M over `n` weighted points.
fn weighted_moments<const D: usize>(
    n: usize,
    point: impl Fn(usize) -> [f64; D],
    weight: impl Fn(usize) -> f64,
) -> Moments {
    let mut mass = 0.0;
    let mut first = [0.0; D];
    for i in 0..n {
        let (x, w) = (point(i), weight(i));
        mass += w;
        for a in 0..D {
            first[a] += w * x[a];
        }
    }
    let mean: Vec<f64> = first.iter().map(|s| s / mass).collect();
    let mut cov = vec![0.0; D * D];
    for i in 0..n {
        let (x, w) = (point(i), weight(i));
        for a in 0..D {
            for b in 0..D {
                cov[a * D + b] += w * (x[a] - mean[a]) * (x[b] - mean[b]);
            }
        }
    }
    for c in &mut cov {
        *c /= mass;
    }
    Moments { mass, mean, cov }
}

impl<const D: usize> Measure<'_, D> {
    /// Mass, mean and covariance: see the module documentation.
    pub(super) fn moments(&self) -> Moments {
        match self {
            Measure::Particles { x, w, .. } => weighted_moments::<D>(x.len(), |i| x[i], |i| w[i]),
            Measure::Grid(g) => {
                let v = g.cell_volume();
                weighted_moments::<D>(g.rho.len(), |i| g.center(i), |i| g.rho[i] * v)
            }
        }
    }

    /// The box where the measure's density can be non-zero.
    pub(super) fn bounds(&self) -> ([f64; D], [f64; D]) {
        match self {
            Measure::Particles {
                x, kernel, walls, ..
            } => {
                let (lo, hi) = crate::util::parallel::bounding_box(x);
                let r = kernel.support();
                match walls {
                    Some((l, u)) => (
                        std::array::from_fn(|a| (lo[a] - r).max(l[a])),
                        std::array::from_fn(|a| (hi[a] + r).min(u[a])),
                    ),
                    None => (lo.map(|v| v - r), hi.map(|v| v + r)),
                }
            }
            Measure::Grid(g) => (
                std::array::from_fn(|a| g.lower(a)),
                std::array::from_fn(|a| g.upper(a)),
            ),
        }
    }

    /// The density at every cell center of `grid`.
    pub(super) fn evaluate(&self, grid: &Grid) -> Vec<f64> {
        match self {
            Measure::Grid(g) => {
                let mut out = vec![0.0; grid.len()];
                out.par_chunks_mut(CHUNK).enumerate().for_each(|(c, o)| {
                    for (k, v) in o.iter_mut().enumerate() {
                        *v = g.interpolate(&grid.center_array(c * CHUNK + k));
                    }
                });
                out
            }
            Measure::Particles {
                x,
                w,
                kernel,
                walls: None,
            } => kernel_sum(x, w, kernel, grid.len(), |i| grid.center_array(i)),
            Measure::Particles {
                x,
                w,
                kernel,
                walls: Some((lower, upper)),
            } => {
                let (images, sources) =
                    crate::density::reflect::mirror_images(x, lower, upper, kernel.support());
                let xs: Vec<[f64; D]> = x.iter().chain(&images).copied().collect();
                let ws: Vec<f64> = w
                    .iter()
                    .copied()
                    .chain(sources.iter().map(|&i| w[i]))
                    .collect();
                let mut rho = kernel_sum(&xs, &ws, kernel, grid.len(), |i| grid.center_array(i));
                for (i, r) in rho.iter_mut().enumerate() {
                    let c: [f64; D] = grid.center_array(i);
                    if (0..D).any(|a| c[a] < lower[a] || c[a] > upper[a]) {
                        *r = 0.0;
                    }
                }
                rho
            }
        }
    }
}

/// rho(p_i) = sum_j w_j K(p_i - X_j) at the `n` query points `point(i)`: the
/// blob estimate of SPEC §2, at points that need not be particles. The
/// neighbours of each point come from a kd-tree and are summed in index
/// order, so the bits do not depend on the tree's visit order or the thread
/// count.
pub(super) fn kernel_sum<const D: usize>(
    x: &[[f64; D]],
    w: &[f64],
    kernel: &WendlandC2,
    n: usize,
    point: impl Fn(usize) -> [f64; D] + Sync,
) -> Vec<f64> {
    let mut out = vec![0.0; n];
    let tree: ImmutableKdTree<f64, D> =
        ImmutableKdTree::new_from_slice(x).expect("finite positions");
    let r = kernel.support();
    let r2 = r * r;
    out.par_chunks_mut(CHUNK).enumerate().for_each(|(c, o)| {
        let mut nb: Vec<usize> = Vec::new();
        for (k, v) in o.iter_mut().enumerate() {
            let p = point(c * CHUNK + k);
            nb.clear();
            tree.query(&p)
                .within::<SquaredEuclidean<f64>>(r2)
                .unsorted()
                .visit(|it| nb.push(it.item as usize));
            // Index order: the same sum whatever the tree's visit order.
            nb.sort_unstable();
            let mut s = 0.0;
            for &j in &nb {
                s += w[j] * kernel.value(dist2(&p, &x[j]));
            }
            *v = s;
        }
    });
    out
}

#[inline]
fn dist2<const D: usize>(a: &[f64; D], b: &[f64; D]) -> f64 {
    let mut s = 0.0;
    for k in 0..D {
        let d = a[k] - b[k];
        s += d * d;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::density::BlobDensity;

    /// A particle run in a box is estimated like the solver's density,
    /// reflected at the walls: an evenly spaced unit mass on [0, 1] gives
    /// 1 at every cell center, walls included (to the lattice's own
    /// ripple, 1e-3 here), where the free-space sum falls to about 1/2.
    #[test]
    fn a_box_run_is_estimated_reflected_at_the_walls() {
        let n = 1000;
        let x: Vec<[f64; 1]> = (0..n).map(|i| [(i as f64 + 0.5) / n as f64]).collect();
        let w = vec![1.0 / n as f64; n];
        let grid = Grid::from_spacing(vec![0.0], vec![0.01], vec![100]);
        let kernel = WendlandC2::new(1, 0.02);
        let walls = Measure::Particles {
            x: x.clone(),
            w: w.clone(),
            kernel,
            walls: Some(([0.0], [1.0])),
        };
        let rho = walls.evaluate(&grid);
        let worst = rho.iter().fold(0.0f64, |m, r| m.max((r - 1.0).abs()));
        assert!(worst < 1e-3, "reflected: worst |rho - 1| = {worst}");
        let free = Measure::Particles {
            x,
            w,
            kernel,
            walls: None,
        };
        let edge = free.evaluate(&grid)[0];
        assert!((edge - 0.5).abs() < 0.2, "free space at the wall: {edge}");
    }

    /// One kernel density sum: at the particles, compare's sum is the
    /// solver's estimate (up to the summation order).
    #[test]
    fn kernel_sum_at_the_particles_is_the_blob_density() {
        fn check<const D: usize>(n: usize, eps: f64) {
            let mut s = 0x2545_f491_4f6c_dd1du64;
            let mut u = || {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 11) as f64 / (1u64 << 53) as f64
            };
            let x: Vec<[f64; D]> = (0..n).map(|_| std::array::from_fn(|_| u())).collect();
            let w: Vec<f64> = (0..n).map(|_| (0.5 + u()) / n as f64).collect();
            let mut blob = BlobDensity::<D>::new(eps);
            let want = blob.compute(&x, &w).to_vec();
            let kernel = WendlandC2::new(D, blob.bandwidth());
            let got = kernel_sum(&x, &w, &kernel, n, |i| x[i]);
            for (i, (g, r)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - r).abs() <= 1e-12 * r.abs(),
                    "d = {D}, particle {i}: {g} vs {r}"
                );
            }
        }
        check::<1>(500, 0.02);
        check::<2>(800, 0.05);
        check::<3>(1000, 0.1);
    }
}
