//! Kernel density estimates at the particles (the blob method, SPEC §2):
//!
//!   rho_eps(X_i) = sum_j w_j K_eps(X_i - X_j),   self term j = i included,
//!
//! over the particles of one species, K a smooth kernel of unit mass and
//! per-axis standard deviation eps (the Wendland C2 kernel,
//! [`crate::model::kernel`]), and the gradient of any E = sum_i w_i g(rho_i)
//! given the slopes s_i = g'(rho_i):
//!
//!   dE/dX_l = w_l sum_j w_j (s_l + s_j) grad K(X_l - X_j).
//!
//! Every estimator implements [`DensityEstimator`]; callers hold a
//! `Box<dyn DensityEstimator<D>>` built from a [`DensityPlan`] and never
//! match on the kind. The estimators:
//!
//! - [`blob`]: kernel sums over Verlet neighbour lists ([`neighbours`]);
//! - [`mesh`]: particle-mesh (B-spline deposit, FFT convolution, interpolation);
//! - [`sorted1d`]: d = 1 only, the exact sums by sorted sweeps of the
//!   kernel's polynomial moments, O(N log N).
//!
//! Adding one: its file here, its variant of [`Estimator`] and its line in
//! [`DensityPlan::build`] (the registration), and its line in the
//! conformance harness (`tests/numerics`). This module also holds the
//! bandwidth rules (`bandwidth = "auto"`) and the choice of estimator
//! (`method = "auto"`).

pub mod blob;
#[cfg(test)]
mod conformance;
pub mod mesh;
pub mod neighbours;
pub mod reflect;
pub mod sorted1d;

pub use blob::{BlobDensity, SKIN_FRACTION};
pub use sorted1d::SortedDensity1d;

use rayon::prelude::*;

use crate::density::mesh::{MESH_GROWTH, MeshDensity, MeshTooLarge};
use crate::model::kernel::{RadialKernel, WendlandC2};
use crate::util::parallel::{CHUNK, sum_chunks};

/// Why an estimator refused a cloud (the mesh: spread over more cells than
/// its limit). A trial point of a line search that is refused is not a
/// candidate: the energy counts it as infinite.
pub type EstimateRefused = MeshTooLarge;

/// A density estimator of one species (module docs for the formulas).
///
/// Protocol: `compute(x, w)` at the current positions, then (for energies)
/// `add_gradient` with the same `x` and `w`; `reset` at the start of a JKO
/// step, so that what is carried between calls (a neighbour list's order, a
/// mesh's size limit) depends on the step's start alone.
pub trait DensityEstimator<const D: usize>: Send + std::fmt::Debug {
    /// The kernel's standard deviation eps.
    fn bandwidth(&self) -> f64;

    /// rho_eps at every particle of `x` (one species, weights `w`).
    fn compute(&mut self, x: &[[f64; D]], w: &[f64]) -> Result<&[f64], EstimateRefused>;

    /// After `compute(x, w)`: adds to `grad` the gradient of
    /// E = sum_i w_i g(rho_i), given `slope[i]` = g'(rho_i).
    fn add_gradient(&mut self, x: &[[f64; D]], w: &[f64], slope: &[f64], grad: &mut [[f64; D]]);

    /// After `compute(x, w)`: adds to `grad` the gradient in X of the linear
    /// form L(X) = sum_i c_i rho_i(X) at fixed `c`,
    ///
    /// ```text
    ///   dL/dX_l = sum_j (c_l w_j + c_j w_l) grad K(X_l - X_j),
    /// ```
    ///
    /// which is, by the chain rule, the gradient of any F(rho_1, .., rho_N)
    /// with c_i = dF/drho_i. [`add_gradient`](Self::add_gradient) is the
    /// case c_i = w_i g'(rho_i); this form also serves weights that differ
    /// between the sources and the energy, as when the densities of one
    /// species are wanted at the particles of all (`w` zero off the
    /// species, `c` not: [`crate::energy::steric`]).
    fn add_linear_gradient(&mut self, x: &[[f64; D]], w: &[f64], c: &[f64], grad: &mut [[f64; D]]);

    /// The local functional F(X) = sum_i e_i, (e_i, s_i) = `local`(w_i,
    /// rho_i) with e_i = w_i g(rho_i) and s_i = g'(rho_i), returned, and its
    /// gradient added to `grad`: [`compute`](Self::compute) and
    /// [`add_gradient`](Self::add_gradient) in one call, so that a divided
    /// estimator can evaluate its own particles only and exchange the
    /// slopes of its ghosts alone ([`BlobDensity`]: the e_i summed in
    /// chunks of its slots). The default: every density, the e_i summed in
    /// chunks of particle ids ([`crate::util::parallel::sum_chunks`]).
    /// `scratch` holds the per-particle arrays between calls. A value that
    /// is not finite (a steric term at close packing) is returned with no
    /// gradient added: the stepper refuses such a point.
    fn local_functional(
        &mut self,
        x: &[[f64; D]],
        w: &[f64],
        local: &LocalDensityFn,
        scratch: &mut LocalScratch,
        grad: &mut [[f64; D]],
    ) -> Result<f64, EstimateRefused> {
        let rho = self.compute(x, w)?;
        let LocalScratch { energy, slope } = scratch;
        energy.resize(rho.len(), 0.0);
        slope.resize(rho.len(), 0.0);
        energy
            .par_chunks_mut(CHUNK)
            .zip(slope.par_chunks_mut(CHUNK))
            .zip(rho.par_chunks(CHUNK).zip(w.par_chunks(CHUNK)))
            .for_each(|((e, s), (rho, w))| {
                for k in 0..e.len() {
                    (e[k], s[k]) = local(w[k], rho[k]);
                }
            });
        let value = sum_chunks(energy.len(), |r| energy[r].iter().sum());
        if value.is_finite() {
            self.add_gradient(x, w, slope, grad);
        }
        Ok(value)
    }

    /// [`local_functional`](Self::local_functional) in stages 0, 1, ..,
    /// called with the same arguments until one is [`Stage::Done`]. Under
    /// a team, a stage either exchanges (messages, and no more than light
    /// work) or computes the member's own sums (no message), so that a
    /// caller running several estimators side by side (stage k of each,
    /// then stage k + 1: the diffusion term's species) has every member do
    /// all its work of a stage before it waits at the next stage's
    /// messages: a member's light estimator fills its wait for another
    /// member's heavy one. Every member must call the same stages of the
    /// same estimators in the same order. The default is one stage,
    /// `local_functional` itself.
    fn local_functional_stage(
        &mut self,
        stage: usize,
        x: &[[f64; D]],
        w: &[f64],
        local: &LocalDensityFn,
        scratch: &mut LocalScratch,
        grad: &mut [[f64; D]],
    ) -> Result<Stage, EstimateRefused> {
        debug_assert_eq!(stage, 0, "one stage");
        Ok(Stage::Done(
            self.local_functional(x, w, local, scratch, grad)?,
        ))
    }

    /// Forget the state carried between calls (see the protocol above).
    fn reset(&mut self);

    /// Which particles' gradient entries the caller reads from the gradient
    /// methods ([`add_gradient`](Self::add_gradient),
    /// [`add_linear_gradient`](Self::add_linear_gradient),
    /// [`local_functional`](Self::local_functional)) until the next call:
    /// `Some(p)`, ascending particle indices, or `None`, all of them. Those
    /// entries must get the bits they would get with `None`; the others may
    /// be left as they are ([`crate::energy::FreeEnergy::want`]). The
    /// default ignores it and adds every entry, which is always correct.
    fn want(&mut self, _particles: Option<&[u32]>) {}

    /// The frame in which a JKO step orders its particles
    /// ([`crate::util::morton::Frame`]), or `None` outside a step. An
    /// estimator that orders particles by Morton keys (the neighbour
    /// lists) keys them in it, so that a member's particles of the step
    /// are a range of its order. The default ignores it.
    fn frame(&mut self, _frame: Option<&crate::util::morton::Frame<D>>) {}

    /// Adds to `cost[i]` the work the last evaluation spent on particle i,
    /// in pair evaluations (one kernel term of a density or gradient sum),
    /// the same numbers on every member of a team, so a JKO step can cut
    /// its vectors by cost ([`crate::energy::FreeEnergy::costs`]).
    /// Collective under a team (every member calls it at the same point).
    /// The default adds nothing: the work is even per particle, or unknown.
    fn add_costs(&self, _cost: &mut [f64]) {}

    /// Bytes this estimator will hold for the cloud `x`, beyond the
    /// per-particle allowance of the run's memory estimate (which counts
    /// neighbour lists of the neighbour rule); saturating. Known before
    /// anything is built, so a run that cannot fit is refused first.
    fn extra_memory(&self, x: &[[f64; D]], w: &[f64]) -> u64;
}

/// Where [`DensityEstimator::local_functional_stage`] left the local
/// functional.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stage {
    /// More stages to come.
    Next,
    /// Done: F, its gradient added (none when F is not finite).
    Done(f64),
}

/// The per-particle part of a local functional of the density
/// ([`DensityEstimator::local_functional`]): (w_i, rho_i) -> (e_i, s_i).
pub type LocalDensityFn = dyn Fn(f64, f64) -> (f64, f64) + Sync;

/// The per-particle arrays of [`DensityEstimator::local_functional`], held
/// by its caller so that an evaluation allocates nothing.
#[derive(Debug, Clone, Default)]
pub struct LocalScratch {
    energy: Vec<f64>,
    slope: Vec<f64>,
}

/// `v` bytes as a u64, saturating; NaN counts as too much.
pub(crate) fn saturating_bytes(v: f64) -> u64 {
    if v.is_nan() || v >= u64::MAX as f64 {
        u64::MAX
    } else {
        v.max(0.0) as u64
    }
}

/// |a - b|^2.
#[inline(always)]
pub(crate) fn dist2<const D: usize>(a: &[f64; D], b: &[f64; D]) -> f64 {
    let mut s = 0.0;
    for k in 0..D {
        let d = a[k] - b[k];
        s += d * d;
    }
    s
}

/// Rule for `bandwidth = "auto"`, part 1 (stated in the README): eps such that the
/// kernel's support ball, radius R (about 3.8 eps, see [`WendlandC2`]), holds on average
/// `TARGET_NEIGHBOURS[d-1]` particles of the species when it is distributed as a
/// Gaussian with the cloud's covariance.
///
/// For a Gaussian of covariance S, the density seen by a particle averages
/// E\[rho\] = 1 / ((4 pi)^(d/2) sqrt(det S)) (unit mass); the ball of radius R
/// holds N E\[rho\] V_d R^d particles, V_d the unit ball's volume.
pub const TARGET_NEIGHBOURS: [f64; 3] = [20.0, 50.0, 120.0];

/// Rule for `bandwidth = "auto"`, part 2: eps is at least this fraction of
/// the diffusion length of one step, sqrt(2 D_eff h) (see [`auto_bandwidth_for_step`]).
pub const STEP_LENGTH_FRACTION: f64 = 0.5;

/// Rule for `bandwidth = "auto"`, part 3: the step-length floor may raise the
/// neighbour count at most this many times (the density sums cost, and their
/// neighbour lists hold, N times the neighbour count).
pub const MAX_NEIGHBOUR_FACTOR: f64 = 10.0;

/// The determinant of the weighted covariance of a cloud.
fn covariance_determinant<const D: usize>(x: &[[f64; D]], w: &[f64]) -> f64 {
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
    cov.determinant()
}

/// Mass and Gaussian-fit mean density E[rho] (per unit mass) of a cloud.
fn gaussian_fit<const D: usize>(x: &[[f64; D]], w: &[f64]) -> (f64, f64) {
    let m: f64 = w.iter().sum();
    // A degenerate cloud (all particles at one point) gets a vanishing
    // scale, which a run refuses ([`degenerate_spread`]).
    let det = covariance_determinant(x, w).max(f64::MIN_POSITIVE);
    let pi = std::f64::consts::PI;
    (m, 1.0 / ((4.0 * pi).powf(D as f64 / 2.0) * det.sqrt()))
}

/// The neighbour-count bandwidth of one species (see [`TARGET_NEIGHBOURS`]).
pub fn auto_bandwidth<const D: usize>(x: &[[f64; D]], w: &[f64]) -> f64 {
    neighbour_bandwidth::<D>(x.len(), gaussian_fit(x, w).1)
}

/// Mean number of neighbours in the kernel support of bandwidth `eps`, for
/// the Gaussian fit of the cloud: TARGET_NEIGHBOURS (eps / eps_n)^d, eps_n
/// the neighbour-rule bandwidth ([`auto_bandwidth`]); at most the cloud's size.
pub fn expected_neighbours<const D: usize>(x: &[[f64; D]], w: &[f64], eps: f64) -> f64 {
    let n = x.len() as f64;
    (TARGET_NEIGHBOURS[D - 1].min(n) * (eps / auto_bandwidth(x, w)).powi(D as i32)).min(n)
}

/// eps whose support ball holds `TARGET_NEIGHBOURS` of `n` particles spread
/// with mean density `mean_density` per unit mass.
fn neighbour_bandwidth<const D: usize>(n: usize, mean_density: f64) -> f64 {
    let pi = std::f64::consts::PI;
    let unit_ball = match D {
        1 => 2.0,
        2 => pi,
        _ => 4.0 * pi / 3.0,
    };
    let n = n as f64;
    let target = TARGET_NEIGHBOURS[D - 1].min(n);
    let radius = (target / (n * mean_density * unit_ball)).powf(1.0 / D as f64);
    radius / WendlandC2::radius_per_bandwidth(D)
}

/// The bandwidth `bandwidth = "auto"` gives a species with diffusion
/// coefficient `diffusion` and exponent `exponent` (m) under time step `h`:
///
/// ```text
/// eps = min( max(eps_n, STEP_LENGTH_FRACTION sqrt(2 D_eff h)),  MAX_NEIGHBOUR_FACTOR^(1/d) eps_n ),
/// eps_n = auto_bandwidth(x, w)   (the neighbour-count rule),
/// D_eff = D m rho_bar^(m-1),   rho_bar = M E[rho]   (Gaussian fit, mass M),
/// ```
///
/// D_eff being the diffusivity of d rho/dt = D Laplace rho^m = div(D m rho^(m-1) grad rho).
///
/// Why the floor: one JKO step smooths the density over the diffusion length
/// sqrt(2 D_eff h), so a kernel narrower than that resolves nothing the time
/// discretization keeps; but it makes the step's minimization stiff (the
/// blob energy's Hessian grows like D_eff / eps^2 against the transport
/// term's 1/h), and L-BFGS iterations grow about like 1/eps^2
/// (BENCHMARKS.md, "Automatic bandwidth and L-BFGS iterations"). The cap
/// keeps the neighbour lists (and the cost of a density sum) within
/// MAX_NEIGHBOUR_FACTOR times those of the neighbour rule: with many
/// particles and a long step the floor would otherwise put thousands of
/// particles in every kernel; the mesh estimator,
/// whose cost does not grow with eps, takes the floor uncapped
/// ([`choose_estimator`]). Species without diffusion (D = 0) get the
/// neighbour rule alone.
pub fn auto_bandwidth_for_step<const D: usize>(
    x: &[[f64; D]],
    w: &[f64],
    diffusion: f64,
    exponent: f64,
    time_step: f64,
) -> f64 {
    step_bandwidths::<D>(x, w, diffusion, exponent, time_step).capped
}

/// The automatic bandwidth with and without the neighbour cap.
struct StepBandwidths {
    /// max(eps_n, floor).
    wide: f64,
    /// min(wide, cap).
    capped: f64,
}

fn step_bandwidths<const D: usize>(
    x: &[[f64; D]],
    w: &[f64],
    diffusion: f64,
    exponent: f64,
    time_step: f64,
) -> StepBandwidths {
    let (mass, mean_density) = gaussian_fit(x, w);
    let eps = neighbour_bandwidth::<D>(x.len(), mean_density);
    let d_eff = diffusion * exponent * (mass * mean_density).powf(exponent - 1.0);
    let floor = STEP_LENGTH_FRACTION * (2.0 * d_eff * time_step).sqrt();
    let cap = MAX_NEIGHBOUR_FACTOR.powf(1.0 / D as f64) * eps;
    if floor.is_finite() {
        let wide = eps.max(floor);
        StepBandwidths {
            wide,
            capped: wide.min(cap),
        }
    } else {
        StepBandwidths {
            wide: eps,
            capped: eps,
        }
    }
}

/// Rule for every bandwidth, given or automatic: eps must be at least this
/// fraction of the cloud's coordinate scale `1 + max |x|`. Positions carry a
/// relative rounding of 1e-16, so a kernel narrower than that would see the
/// rounding of the particles' distances (and eps^2 of a coincident cloud's
/// automatic rule, around 1e-154, is not even a normal number); the unit
/// length of the scenario bounds the scale from below, so that a cloud
/// gathered at the origin is not judged by its own vanishing size.
pub const MIN_RELATIVE_BANDWIDTH: f64 = 1e-8;

/// The smallest bandwidth [`MIN_RELATIVE_BANDWIDTH`] allows on the cloud `x`.
pub fn min_bandwidth<const D: usize>(x: &[[f64; D]]) -> f64 {
    let reach = x.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
    MIN_RELATIVE_BANDWIDTH * (1.0 + reach)
}

/// Why `eps` cannot be the bandwidth of the cloud `x` (see
/// [`MIN_RELATIVE_BANDWIDTH`]), or `None` if it can.
pub fn unresolvable_bandwidth<const D: usize>(x: &[[f64; D]], eps: f64) -> Option<String> {
    let least = min_bandwidth(x);
    if !eps.is_finite() {
        Some(format!("eps = {eps} is not a finite number"))
    } else if eps < least {
        Some(format!(
            "eps = {eps:e} is below what f64 resolves at these coordinates \
             ({MIN_RELATIVE_BANDWIDTH:e} (1 + max |x|) = {least:e})"
        ))
    } else {
        None
    }
}

/// Whether the Gaussian fit of a cloud is degenerate: a single particle, or
/// particles that coincide or lie on a lower-dimensional set (a covariance
/// whose determinant is not a positive normal number). The neighbour-count
/// rule of `bandwidth = "auto"` has no length scale to go by there.
pub fn degenerate_spread<const D: usize>(x: &[[f64; D]], w: &[f64]) -> bool {
    // NaN (an overflowed sum) falls here too.
    let det = covariance_determinant(x, w);
    x.len() < 2 || det.is_nan() || det < f64::MIN_POSITIVE
}

/// How a species' densities are summed, with which bandwidth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DensityPlan {
    /// The kernel's standard deviation eps.
    pub eps: f64,
    /// Which estimator sums the densities.
    pub estimator: Estimator,
    /// In a box [lower, upper] (the first d components of each): the
    /// estimate is that of the density reflected across its walls
    /// ([`reflect`]).
    pub walls: Option<([f64; 3], [f64; 3])>,
}

/// The two density estimators of the blob method.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Estimator {
    /// Kernel sums over kd-tree neighbour lists ([`BlobDensity`]).
    Neighbours,
    /// Particle-mesh ([`MeshDensity`]); an estimate over more than
    /// `max_cells` cells is refused.
    Mesh {
        /// Most mesh cells an estimate may use.
        max_cells: usize,
    },
    /// d = 1: sorted moment sweeps ([`SortedDensity1d`]), exact, O(N log N);
    /// in other dimensions the plan builds the neighbour lists.
    Sorted1d,
}

impl DensityPlan {
    /// Neighbour-list estimates with standard deviation `eps`.
    pub fn neighbours(eps: f64) -> Self {
        DensityPlan {
            eps,
            estimator: Estimator::Neighbours,
            walls: None,
        }
    }

    /// The sorted 1D sums with standard deviation `eps` (d = 1).
    pub fn sorted_1d(eps: f64) -> Self {
        DensityPlan {
            eps,
            estimator: Estimator::Sorted1d,
            walls: None,
        }
    }

    /// The mesh estimator for the cloud `x`, allowed to grow to
    /// [`MESH_GROWTH`] times the cells `x` needs (at least 2^20), and as
    /// much times those of the cloud at the start of each step.
    pub fn mesh<const D: usize>(x: &[[f64; D]], eps: f64) -> Self {
        Self::mesh_of_cells(eps, crate::density::mesh::cells_needed(x, eps))
    }

    /// [`mesh`](Self::mesh) for a cloud needing `cells` cells.
    fn mesh_of_cells(eps: f64, cells: usize) -> Self {
        DensityPlan {
            eps,
            estimator: Estimator::Mesh {
                max_cells: cells.saturating_mul(MESH_GROWTH).max(1 << 20),
            },
            walls: None,
        }
    }

    /// A fresh estimator of this plan (the registration of the estimators).
    pub fn build<const D: usize>(&self) -> Box<dyn DensityEstimator<D>> {
        let inner: Box<dyn DensityEstimator<D>> = match self.estimator {
            Estimator::Neighbours => Box::new(BlobDensity::new(self.eps)),
            Estimator::Mesh { max_cells } => Box::new(MeshDensity::new(self.eps, max_cells)),
            Estimator::Sorted1d if D == 1 => Box::new(SortedDensity1d::new(self.eps)),
            Estimator::Sorted1d => Box::new(BlobDensity::new(self.eps)),
        };
        match self.walls {
            None => inner,
            Some((lower, upper)) => Box::new(reflect::Reflecting::new(
                inner,
                std::array::from_fn(|a| lower[a]),
                std::array::from_fn(|a| upper[a]),
                WendlandC2::new(D, self.eps).support(),
            )),
        }
    }

    /// The same plan in the box [lower, upper] (reflected estimates).
    pub fn in_box(mut self, lower: &[f64], upper: &[f64]) -> Self {
        let mut lo = [0.0; 3];
        let mut hi = [0.0; 3];
        lo[..lower.len()].copy_from_slice(lower);
        hi[..upper.len()].copy_from_slice(upper);
        self.walls = Some((lo, hi));
        self
    }
}

/// Rule for `method = "auto"`: the mesh is used when the kernel would hold
/// more than MAX_NEIGHBOUR_FACTOR times the neighbour rule's particles and
/// the cloud needs at most this many mesh cells per particle (or 2^16).
pub const MESH_CELLS_PER_PARTICLE: usize = 16;

/// The estimator and bandwidth of a species (README, "Density estimate"):
///
/// - `bandwidth`: a given eps, or with "auto" the rule of
///   [`auto_bandwidth_for_step`], whose cap on the neighbour count only
///   binds the neighbour lists: the mesh takes the uncapped
///   eps = max(eps_n, STEP_LENGTH_FRACTION sqrt(2 D_eff h)).
/// - `method = "neighbours"`: kd-tree neighbour lists, capped eps.
/// - `method = "mesh"`: the mesh, uncapped eps.
/// - `method = "auto"`: the neighbour lists while the uncapped eps holds at
///   most MAX_NEIGHBOUR_FACTOR times the neighbour rule's particles (then
///   the cap does not bind and both give the same eps); beyond, in d = 2
///   and 3, the mesh if the cloud needs at most
///   max(MESH_CELLS_PER_PARTICLE N, 2^16) cells, else the neighbour lists
///   with the capped eps. In d = 1 always the exact sorted sums with the
///   capped eps (the lists' eps, so that the results are the lists' to
///   rounding): the mesh's steps take more L-BFGS iterations than the
///   lists' at the same eps there, where in 2D they take the same count
///   (BENCHMARKS.md, "Automatic bandwidth and L-BFGS iterations").
pub fn choose_estimator<const D: usize>(
    x: &[[f64; D]],
    w: &[f64],
    diffusion: f64,
    exponent: f64,
    time_step: f64,
    settings: &Density,
) -> DensityPlan {
    let (wide, capped) = match settings.bandwidth {
        Bandwidth::Fixed(eps) => (eps, eps),
        Bandwidth::Auto => {
            let rule = step_bandwidths::<D>(x, w, diffusion, exponent, time_step);
            (rule.wide, rule.capped)
        }
    };
    match settings.method {
        DensityMethod::Neighbours => DensityPlan::neighbours(capped),
        DensityMethod::Mesh => DensityPlan::mesh(x, wide),
        DensityMethod::Auto => {
            let target = TARGET_NEIGHBOURS[D - 1].min(x.len() as f64);
            let few =
                expected_neighbours(x, w, wide) <= MAX_NEIGHBOUR_FACTOR * target * (1.0 + 1e-9);
            let budget = (MESH_CELLS_PER_PARTICLE * x.len()).max(1 << 16);
            if D == 1 {
                return DensityPlan::sorted_1d(capped);
            }
            if few {
                return DensityPlan::neighbours(capped);
            }
            let cells = crate::density::mesh::cells_needed(x, wide);
            if cells <= budget {
                DensityPlan::mesh_of_cells(wide, cells)
            } else {
                DensityPlan::neighbours(capped)
            }
        }
    }
}

/// Kernel density estimation settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Density {
    /// The kernel's standard deviation eps, given or chosen.
    pub bandwidth: Bandwidth,
    /// Which estimator sums the densities.
    pub method: DensityMethod,
}

/// How the blob densities are summed (an extension of SPEC §3, README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DensityMethod {
    /// Kernel sums over kd-tree neighbour lists.
    Neighbours,
    /// Particle-mesh: B-spline deposit, FFT convolution, interpolation
    /// ([`crate::density::mesh`]); its cost does not grow with the kernel's width.
    Mesh,
    /// Neighbour lists while the kernel holds few enough neighbours, the
    /// mesh beyond (rule in [`crate::density::choose_estimator`]).
    Auto,
}

/// Kernel standard deviation eps, given or chosen from the initial cloud.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Bandwidth {
    /// eps chosen per species from N_k, d, the cloud's spread and the step
    /// (SPEC §3, [`auto_bandwidth_for_step`]).
    Auto,
    /// The same eps > 0 for every species.
    Fixed(f64),
}

#[cfg(test)]
mod auto_rule_tests {
    use super::*;

    /// 4000 equal particles spread evenly over the unit disc.
    fn sunflower() -> (Vec<[f64; 2]>, Vec<f64>) {
        let x = (0..4000)
            .map(|i| {
                let (a, r) = (i as f64 * 2.399_963, ((i as f64 + 0.5) / 4000.0).sqrt());
                [r * a.cos(), r * a.sin()]
            })
            .collect();
        (x, vec![1.0 / 4000.0; 4000])
    }

    /// The three regimes of the rule: the neighbour count alone (short step),
    /// the diffusion-length floor, and the cap at MAX_NEIGHBOUR_FACTOR times
    /// the neighbour count (long step).
    #[test]
    fn floor_and_cap_of_the_automatic_bandwidth() {
        let (x, w) = sunflower();
        let eps_n = auto_bandwidth(&x, &w);
        let cap = MAX_NEIGHBOUR_FACTOR.sqrt() * eps_n;
        assert_eq!(auto_bandwidth_for_step(&x, &w, 1.0, 1.0, 1e-8), eps_n);
        assert_eq!(auto_bandwidth_for_step(&x, &w, 0.0, 1.0, 1.0), eps_n);
        let h = (1.5 * eps_n / STEP_LENGTH_FRACTION).powi(2) / 2.0;
        let floor = auto_bandwidth_for_step(&x, &w, 1.0, 1.0, h);
        assert!((floor / eps_n - 1.5).abs() < 1e-12, "{floor} vs {eps_n}");
        assert_eq!(auto_bandwidth_for_step(&x, &w, 1.0, 1.0, 100.0 * h), cap);
    }

    /// One particle, coincident particles and a line in 2D have no spread;
    /// the rule's eps on them is below the resolution floor. A fixed eps is
    /// judged against 1e-8 (1 + max |x|).
    #[test]
    fn degenerate_clouds_and_the_resolution_floor() {
        let (x, w) = sunflower();
        assert!(!degenerate_spread(&x, &w));
        assert!(unresolvable_bandwidth(&x, auto_bandwidth(&x, &w)).is_none());
        let one = [[0.3, 0.4]];
        assert!(degenerate_spread(&one, &[1.0]));
        let same = vec![[1e6, -2.0]; 10];
        let w10 = vec![0.1; 10];
        assert!(unresolvable_bandwidth(&same, auto_bandwidth(&same, &w10)).is_some());
        let line: Vec<[f64; 2]> = (0..10).map(|i| [i as f64, 2.0 * i as f64]).collect();
        assert!(degenerate_spread(&line, &w10));
        assert!(unresolvable_bandwidth(&one, 1e-9).is_some());
        assert!(unresolvable_bandwidth(&one, 2e-8).is_none());
        assert!(unresolvable_bandwidth(&same, 2e-3).is_some());
        assert!(unresolvable_bandwidth(&same, f64::INFINITY).is_some());
    }

    /// `method = "auto"` keeps the neighbour lists (and their eps) while the
    /// cap does not bind, takes the mesh with the uncapped floor where it
    /// would, and the lists with the cap where the mesh would be too large;
    /// a forced method takes its own eps.
    #[test]
    fn the_automatic_method() {
        use super::{Bandwidth, Density, DensityMethod};
        let (x, w) = sunflower();
        let eps_n = auto_bandwidth(&x, &w);
        let h_floor = |factor: f64| (factor * eps_n / STEP_LENGTH_FRACTION).powi(2) / 2.0;
        let plan = |bandwidth, method, h| {
            choose_estimator(&x, &w, 1.0, 1.0, h, &Density { bandwidth, method })
        };
        let auto = |h| plan(Bandwidth::Auto, DensityMethod::Auto, h);
        // Below the cap (1.5^2 < 10 times the neighbours): the lists.
        let short = auto(h_floor(1.5));
        assert_eq!(short, DensityPlan::neighbours(1.5 * eps_n));
        // Above it (5^2 = 25 times): the mesh, uncapped.
        let long = auto(h_floor(5.0));
        assert!(matches!(long.estimator, Estimator::Mesh { .. }));
        assert!((long.eps / eps_n - 5.0).abs() < 1e-12);
        // The same with the lists forced: capped.
        let forced = plan(Bandwidth::Auto, DensityMethod::Neighbours, h_floor(5.0));
        assert_eq!(
            forced,
            DensityPlan::neighbours(MAX_NEIGHBOUR_FACTOR.sqrt() * eps_n)
        );
        // A given eps: the lists while few neighbours, else the mesh.
        let fine = Bandwidth::Fixed(eps_n / 2.0);
        assert_eq!(
            plan(fine, DensityMethod::Auto, 1.0),
            DensityPlan::neighbours(eps_n / 2.0)
        );
        let wide = Bandwidth::Fixed(eps_n * 5.0);
        assert!(matches!(
            plan(wide, DensityMethod::Auto, 1.0).estimator,
            Estimator::Mesh { .. }
        ));
        // A far particle (of weight 0: the Gaussian fit is unchanged) makes
        // the mesh over 16 cells per particle: the lists, capped.
        let (mut x, mut w) = (x.clone(), w.clone());
        x.push([300.0, 0.0]);
        w.push(0.0);
        let far = choose_estimator(
            &x,
            &w,
            1.0,
            1.0,
            h_floor(5.0),
            &Density {
                bandwidth: Bandwidth::Auto,
                method: DensityMethod::Auto,
            },
        );
        assert!(far.estimator == Estimator::Neighbours && far.eps < long.eps);
        // In 1D, the exact sorted sums, at any width.
        let x1: Vec<[f64; 1]> = (0..4000).map(|i| [i as f64 / 4000.0]).collect();
        let eps1 = auto_bandwidth(&x1, &w);
        let in_1d = choose_estimator(
            &x1,
            &w,
            1.0,
            1.0,
            1.0,
            &Density {
                bandwidth: Bandwidth::Fixed(50.0 * eps1),
                method: DensityMethod::Auto,
            },
        );
        assert_eq!(in_1d, DensityPlan::sorted_1d(50.0 * eps1));
        assert!(matches!(
            plan(fine, DensityMethod::Mesh, 1.0).estimator,
            Estimator::Mesh { .. }
        ));
    }
}
