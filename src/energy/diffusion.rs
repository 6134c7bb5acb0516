//! The diffusion term (blob method, SPEC §2):
//!
//!   E_diff = sum_k D_k sum_{i in k} w_i f_m(rho_eps(X_i)),
//!   f_1(r) = log r,   f_m(r) = r^(m-1)/(m-1)  (m > 1).
//!
//! Differentiating rho_i = sum_j w_j K(X_i - X_j) and using that grad K is odd,
//!
//!   dE/dX_l = D_k w_l sum_j w_j (f'(rho_l) + f'(rho_j)) grad K(X_l - X_j),
//!
//! so one pass computes the densities and a second the gradient, both over
//! the same neighbour list. With the mesh estimator the same derivative is
//! taken through the mesh's deposit, convolution and interpolation
//! ([`crate::density::mesh`]).

use std::ops::Range;

use rayon::prelude::*;

use super::{EnergyTerm, Part};
use crate::density::neighbours::NeighbourList;
use crate::density::{BlobDensity, ClusterLanes, DensityEstimate, DensityPlan};
use crate::model::kernel::WendlandC2;
use crate::particles::Cloud;
use crate::util::lanes::V;
use crate::util::parallel::CHUNK;
use crate::util::simd_dispatch::{Isa, IsaTask, with_best_isa};

/// The blob diffusion energy of every species with D_k > 0.
pub struct Diffusion<const D: usize> {
    species: Vec<BlobSpecies<D>>,
}

struct BlobSpecies<const D: usize> {
    range: Range<usize>,
    coeff: f64,
    exponent: f64,
    weights: Vec<f64>,
    density: DensityEstimate<D>,
    /// D_k f'(rho_i), kept between the two passes, in particle order and
    /// (neighbour lists only) in slot order.
    slope: Vec<f64>,
    slope_s: Vec<f64>,
    /// Neighbour lists only: sum_j w_j (f'(rho_i) + f'(rho_j)) grad K(X_i - X_j),
    /// in slot order.
    acc_s: Vec<[f64; D]>,
    /// D_k w_i f(rho_i), kept so the energy is summed in a fixed order.
    energy: Vec<f64>,
}

/// f_m(r) and f_m'(r).
#[inline(always)]
fn f_and_slope(r: f64, m: f64) -> (f64, f64) {
    if m == 1.0 {
        (r.ln(), 1.0 / r)
    } else if m == 2.0 {
        (r, 1.0)
    } else {
        let p = r.powf(m - 2.0);
        (p * r / (m - 1.0), p)
    }
}

impl<const D: usize> Diffusion<D> {
    /// `plans[k]` is the estimator and kernel standard deviation of species k.
    pub fn new(cloud: &Cloud<D>, plans: &[DensityPlan]) -> Self {
        let species = cloud
            .blocks
            .iter()
            .zip(plans)
            .filter(|(b, _)| b.diffusion > 0.0)
            .map(|(b, plan)| BlobSpecies {
                range: b.range.clone(),
                coeff: b.diffusion,
                exponent: b.exponent,
                weights: cloud.weights[b.range.clone()].to_vec(),
                density: plan.estimator(),
                slope: vec![0.0; b.range.len()],
                slope_s: Vec::new(),
                acc_s: Vec::new(),
                energy: vec![0.0; b.range.len()],
            })
            .collect();
        Diffusion { species }
    }

    pub fn is_empty(&self) -> bool {
        self.species.is_empty()
    }
}

impl<const D: usize> BlobSpecies<D> {
    fn value_and_gradient(&mut self, x: &[[f64; D]], grad: &mut [[f64; D]]) -> f64 {
        let (coeff, m) = (self.coeff, self.exponent);
        let w = &self.weights[..];
        let Ok(rho) = self.density.compute(x, w) else {
            // A trial spread over more mesh than allowed is not a candidate
            // (the stepper refuses non-finite energies).
            return f64::INFINITY;
        };
        self.slope
            .par_chunks_mut(CHUNK)
            .zip(self.energy.par_chunks_mut(CHUNK))
            .enumerate()
            .for_each(|(c, (slope, energy))| {
                for k in 0..slope.len() {
                    let i = c * CHUNK + k;
                    let (f, fp) = f_and_slope(rho[i], m);
                    energy[k] = coeff * w[i] * f;
                    slope[k] = coeff * fp;
                }
            });
        let value =
            crate::util::parallel::sum_chunks(self.energy.len(), |r| self.energy[r].iter().sum());
        match &mut self.density {
            DensityEstimate::Neighbours(density) => neighbour_gradient(
                density,
                w,
                &self.slope,
                &mut self.slope_s,
                &mut self.acc_s,
                grad,
            ),
            DensityEstimate::Mesh(mesh) => mesh.add_gradient(x, w, &self.slope, grad),
        }
        value
    }
}

/// Adds the gradient over the neighbour list of the last density sum of
/// `density` (module docs), given `slope` = D_k f'(rho) in particle order.
/// The sums run in the list's slot order, like the densities (see
/// [`BlobDensity`]), then go back to particle order.
fn neighbour_gradient<const D: usize>(
    density: &BlobDensity<D>,
    w: &[f64],
    slope: &[f64],
    slope_s: &mut Vec<f64>,
    acc_s: &mut Vec<[f64; D]>,
    grad: &mut [[f64; D]],
) {
    let list = density.list();
    let (order, rank) = (list.order(), list.rank());
    slope_s.resize(w.len(), 0.0);
    acc_s.resize(w.len(), [0.0; D]);
    slope_s
        .par_chunks_mut(CHUNK)
        .zip(order.par_chunks(CHUNK))
        .for_each(|(out, order)| {
            for (v, &i) in out.iter_mut().zip(order) {
                *v = slope[i as usize];
            }
        });
    let kernel = density.kernel();
    let (xs, ws) = density.sorted_particles();
    let slope_s = &slope_s[..];
    acc_s.par_chunks_mut(CHUNK).enumerate().for_each_init(
        ClusterLanes::new,
        |lanes, (chunk, out)| {
            with_best_isa(GradientChunk {
                kernel,
                list,
                xs,
                ws,
                slope_s,
                chunk,
                out,
                lanes,
            })
        },
    );
    let acc_s = &acc_s[..];
    grad.par_chunks_mut(CHUNK)
        .zip(w.par_chunks(CHUNK))
        .zip(rank.par_chunks(CHUNK))
        .for_each(|((g, w), rank)| {
            for ((gi, wi), &s) in g.iter_mut().zip(w).zip(rank) {
                for a in 0..D {
                    gi[a] += wi * acc_s[s as usize][a];
                }
            }
        });
}

/// The gradient sums of the slots of chunk `chunk` (`out`), cluster by
/// cluster:
///
///   acc_s = sum_t w_t (f'_s + f'_t) grad K(x_s - x_t),
///   grad K(x) = -20 C/R^2 (1 - q)^3 x   (zero for q >= 1),
///
/// over the cluster's candidates t, eight at a time from contiguous lanes
/// (`ClusterLanes`: padding lanes have w = f' = 0, and t = s adds
/// x_s - x_s = 0). Lanes are added in lane order: the same bits on any
/// thread count.
struct GradientChunk<'a, const D: usize> {
    kernel: &'a WendlandC2,
    list: &'a NeighbourList<D>,
    xs: &'a [[f64; D]],
    ws: &'a [f64],
    slope_s: &'a [f64],
    chunk: usize,
    out: &'a mut [[f64; D]],
    lanes: &'a mut ClusterLanes<D, 2>,
}

impl<const D: usize> IsaTask for GradientChunk<'_, D> {
    type Output = ();

    #[inline(always)]
    fn run<I: Isa>(self) {
        let GradientChunk {
            kernel,
            list,
            xs,
            ws,
            slope_s,
            chunk,
            out,
            lanes,
        } = self;
        let first = chunk * CHUNK;
        let scale = -20.0 * kernel.norm() * kernel.inv_radius() * kernel.inv_radius();
        for cluster in list.clusters_of_chunk(chunk) {
            lanes.gather(cluster.candidates, xs, [ws, slope_s]);
            for s in cluster.slots {
                let (xi, si) = (&xs[s], V::splat(slope_s[s]));
                let mut acc = [V::ZERO; D];
                for (xt, [wt, st]) in lanes.x.iter().zip(&lanes.values) {
                    let d: [V; D] = std::array::from_fn(|a| V::splat(xi[a]) - xt[a]);
                    let r2 = d.iter().fold(V::ZERO, |r2, &da| I::mul_add(da, da, r2));
                    let (_, t3) = kernel.shape_lanes(r2);
                    // `I::mul`, not `*`: with lane-wise products LLVM packed
                    // this loop in 2-lane registers, at half the speed.
                    let f = I::mul(I::mul(*wt, si + *st), t3);
                    for a in 0..D {
                        acc[a] = I::mul_add(f, d[a], acc[a]);
                    }
                }
                out[s - first] = std::array::from_fn(|a| scale * acc[a].sum());
            }
        }
    }
}

impl<const D: usize> EnergyTerm<D> for Diffusion<D> {
    fn part(&self) -> Part {
        Part::Diffusion
    }

    fn value_and_gradient(&mut self, x: &[[f64; D]], grad: &mut [[f64; D]]) -> f64 {
        let mut total = 0.0;
        for s in &mut self.species {
            let r = s.range.clone();
            total += s.value_and_gradient(&x[r.clone()], &mut grad[r]);
        }
        total
    }

    /// The lists' summation order follows the positions of their last build:
    /// rebuild from X^n so a step depends on X^n alone. The mesh's size
    /// limit is set from X^n too.
    fn reset(&mut self) {
        self.species.iter_mut().for_each(|s| s.density.reset());
    }
}
