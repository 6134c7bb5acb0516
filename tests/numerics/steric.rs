//! The steric term (SPEC §10, `jko::energy::steric`) against its definition
//! and its derivative, for two species, in d = 1, 2, 3, in free space and
//! in the unit box (reflecting walls), with one bandwidth for both species
//! and with two (the exact cross-species form):
//!
//! - value: the total densities s_i against the O(N^2) sum
//!   s_i = sum_l sum_{j in l} w_j K_{eps_l}(X_i - X_j) (in the box over the
//!   particles' mirror images too), and E_st against sum_i w_i g(s_i) of
//!   those sums, both to 1e-12 relative (neighbour lists: rounding of sums
//!   of ~100 positive terms is ~1e-15; 1e-12 leaves room and still fails
//!   on any wrong kernel, weight or image: those are O(1e-3) or more);
//! - gradient: against central differences of E_st computed by the same
//!   term, every 7th coordinate (every 29th on the mesh), 1e-6 of the
//!   largest gradient component
//!   (argument in `gradients.rs`: the Wendland C2 kernel and g are C^2 below
//!   close packing, so with step 1e-5 eps the truncation is ~1e-10 relative
//!   and the rounding ~1e-16 |E| / step ~ 1e-10 against a gradient scale
//!   ~1e-2). The trial volume puts the most crowded particle at v s = 0.8,
//!   where g is far from linear.

use jko::density::{DensityMethod, DensityPlan};
use jko::energy::EnergyTerm;
use jko::energy::steric::{StericEnergy, TotalDensity};
use jko::model::kernel::{RadialKernel, WendlandC2};
use jko::model::steric::Steric;
use jko::particles::{Cloud, SpeciesBlock};

use crate::support;

/// Two species of `sizes` particles in the unit cube's first D axes: a
/// quasi-random fill bent by a smoothstep (denser towards the walls, where
/// the reflected images matter), weights varying by a factor 5, species
/// masses 1 and 0.6.
fn cloud<const D: usize>(sizes: [usize; 2]) -> Cloud<D> {
    let n = sizes[0] + sizes[1];
    let positions: Vec<[f64; D]> = (0..n)
        .map(|i| {
            std::array::from_fn(|a| {
                let u = ((i + 1) as f64 * [0.754_877_7, 0.569_840_3, 0.438_579_5][a]).fract();
                u * u * (3.0 - 2.0 * u)
            })
        })
        .collect();
    let mut weights = vec![0.0; n];
    let mut blocks = Vec::new();
    let mut start = 0;
    for (k, (&nk, mass)) in sizes.iter().zip([1.0, 0.6]).enumerate() {
        let range = start..start + nk;
        let raw: Vec<f64> = range.clone().map(|i| 1.0 + (i % 5) as f64).collect();
        let sum: f64 = raw.iter().sum();
        for (i, r) in range.clone().zip(raw) {
            weights[i] = mass * r / sum;
        }
        blocks.push(SpeciesBlock {
            name: ["plus", "minus"][k].into(),
            range: range.clone(),
            charge: [1.0, -1.0][k],
            diffusion: 1.0,
            exponent: 1.0,
            mass,
        });
        start += nk;
    }
    Cloud {
        ids: (0..n as u64).collect(),
        positions,
        weights,
        blocks,
    }
}

/// The images of `p` across the walls of the unit box that a kernel of
/// support < 1 can reach: x, -x, 2 - x on each axis (3^D of them); with
/// `walls` false, `p` alone.
fn images<const D: usize>(p: &[f64; D], walls: bool) -> Vec<[f64; D]> {
    if !walls {
        return vec![*p];
    }
    (0..3usize.pow(D as u32))
        .map(|m| {
            std::array::from_fn(|a| match (m / 3usize.pow(a as u32)) % 3 {
                0 => p[a],
                1 => -p[a],
                _ => 2.0 - p[a],
            })
        })
        .collect()
}

/// s_i by the O(N^2) definition, species k at bandwidth eps[k].
fn definition<const D: usize>(cloud: &Cloud<D>, eps: [f64; 2], walls: bool) -> Vec<f64> {
    let kernels = eps.map(|e| WendlandC2::new(D, e));
    let dist2 = |a: &[f64; D], b: &[f64; D]| (0..D).map(|k| (a[k] - b[k]).powi(2)).sum::<f64>();
    (0..cloud.len())
        .map(|i| {
            let xi = &cloud.positions[i];
            cloud
                .blocks
                .iter()
                .zip(&kernels)
                .map(|(b, k)| {
                    b.range
                        .clone()
                        .map(|j| {
                            images(&cloud.positions[j], walls)
                                .iter()
                                .map(|y| cloud.weights[j] * k.value(dist2(xi, y)))
                                .sum::<f64>()
                        })
                        .sum::<f64>()
                })
                .sum()
        })
        .collect()
}

fn plans<const D: usize>(eps: [f64; 2], walls: bool) -> Vec<DensityPlan> {
    eps.iter()
        .map(|&e| {
            let plan = DensityPlan::neighbours(e);
            if walls {
                plan.in_box(&[0.0; D], &[1.0; D])
            } else {
                plan
            }
        })
        .collect()
}

/// The steric settings that put the most crowded particle of `s` at v s = 0.8.
fn crowded(s: &[f64]) -> Steric {
    let top = s.iter().fold(0.0f64, |m, &v| m.max(v));
    Steric {
        volume: 0.8 / top,
        temperature: 1.3,
    }
}

/// Value and total densities against the definition (neighbour lists);
/// returns the worst relative errors (s_i, E).
fn check_value<const D: usize>(sizes: [usize; 2], eps: [f64; 2], walls: bool) -> (f64, f64) {
    let cloud = cloud::<D>(sizes);
    let exact = definition(&cloud, eps, walls);
    let mut total = TotalDensity::new(&cloud, &plans::<D>(eps, walls), DensityMethod::Neighbours);
    let s = total.compute(&cloud.positions).unwrap().to_vec();
    let err_s = s
        .iter()
        .zip(&exact)
        .map(|(a, b)| (a - b).abs() / b)
        .fold(0.0, f64::max);
    let steric = crowded(&exact);
    let e_exact: f64 = exact
        .iter()
        .zip(&cloud.weights)
        .map(|(s, w)| w * steric.per_mass(*s))
        .sum();
    let mut term = StericEnergy::with_total(steric, total);
    let mut grad = vec![[0.0; D]; cloud.len()];
    let e = term.value_and_gradient(&cloud.positions, &mut grad);
    let err_e = (e - e_exact).abs() / e_exact.abs();
    let label = format!("d={D} eps={eps:?} walls={walls}");
    assert!(err_s <= 1e-12, "{label}: s_i off by {err_s:e} relative");
    assert!(
        err_e <= 1e-12,
        "{label}: E {e} vs {e_exact}, {err_e:e} relative"
    );
    eprintln!("value {label}: s_i {err_s:.1e}, E {err_e:.1e} (E = {e:.6})");
    (err_s, err_e)
}

/// The gradient of the term (estimators `groups` for the merged cloud, or
/// the neighbour lists of `plans`) against central differences; returns
/// the worst error relative to the largest component.
fn check_gradient<const D: usize>(
    sizes: [usize; 2],
    eps: [f64; 2],
    walls: bool,
    mesh: bool,
) -> f64 {
    // Every 13th coordinate (19 in 1D, 100 in 2D, 185 in 3D); every 53rd on
    // the mesh, whose evaluations (deposit, FFTs) cost more: still 25 (2D)
    // and 45 (3D) coordinates, near the walls and inside, of particles of
    // both species.
    let stride = if mesh { 53 } else { 13 };
    let cloud = cloud::<D>(sizes);
    let species_plans = plans::<D>(eps, walls);
    let total = if mesh {
        let groups = eps
            .iter()
            .enumerate()
            .map(|(k, &e)| {
                let mut plan = DensityPlan::mesh(&cloud.positions, e);
                plan.walls = species_plans[k].walls;
                (plan, vec![k])
            })
            .collect();
        TotalDensity::with_plans(&cloud, groups)
    } else {
        TotalDensity::new(&cloud, &species_plans, DensityMethod::Neighbours)
    };
    let mut probe = TotalDensity::new(&cloud, &species_plans, DensityMethod::Neighbours);
    let steric = crowded(probe.compute(&cloud.positions).unwrap());
    let mut term = StericEnergy::with_total(steric, total);
    let x = cloud.positions.clone();
    let n = x.len();
    let mut grad = vec![[0.0; D]; n];
    let e = term.value_and_gradient(&x, &mut grad);
    assert!(e.is_finite());
    let scale = grad.iter().flatten().fold(0.0f64, |m, g| m.max(g.abs()));
    assert!(scale > 0.0, "a zero gradient: the check would be vacuous");
    let step = 1e-5 * eps[0].min(eps[1]);
    let mut worst: f64 = 0.0;
    let mut sink = vec![[0.0; D]; n];
    for k in (0..n * D).step_by(stride) {
        let (i, a) = (k / D, k % D);
        let fd = support::central_difference(&x, i, a, step, |xp| {
            term.value_and_gradient(xp, &mut sink)
        });
        worst = worst.max((fd - grad[i][a]).abs() / scale);
    }
    let label = format!("d={D} eps={eps:?} walls={walls} mesh={mesh}");
    assert!(
        worst <= 1e-6,
        "{label}: worst relative gradient error {worst:e}"
    );
    eprintln!("gradient {label}: worst {worst:.1e} of the largest component {scale:.3e}");
    worst
}

/// Bandwidths of 2D and 3D (in 1D a third of them): kernels of ~100
/// neighbours whose reach (3.8 eps) is well inside the unit box, so that
/// only particles near a wall have images.
const SAME: [f64; 2] = [0.06, 0.06];
const DIFFERENT: [f64; 2] = [0.05, 0.08];

#[test]
fn steric_value_matches_the_definition() {
    for walls in [false, true] {
        for eps in [SAME, DIFFERENT] {
            check_value::<1>([150, 90], eps.map(|e| e / 3.0), walls);
            check_value::<2>([400, 250], eps, walls);
            check_value::<3>([500, 300], eps, walls);
        }
    }
}

#[test]
fn steric_gradient_matches_differences() {
    for walls in [false, true] {
        for eps in [SAME, DIFFERENT] {
            check_gradient::<1>([150, 90], eps.map(|e| e / 3.0), walls, false);
            check_gradient::<2>([400, 250], eps, walls, false);
            check_gradient::<3>([500, 300], eps, walls, false);
        }
    }
}

/// The mesh estimator's groups (two bandwidths: the linear-form gradient
/// through deposit, convolution and interpolation), in free space and in
/// the box; the value is the mesh's, differentiated exactly.
#[test]
fn steric_gradient_on_the_mesh() {
    for walls in [false, true] {
        check_gradient::<2>([400, 250], DIFFERENT, walls, true);
        check_gradient::<3>([500, 300], DIFFERENT, walls, true);
    }
}

/// The value check can fail: one kernel for both species (the larger
/// bandwidth, the approximation the exact form avoids) is far more than
/// 1e-12 from the definition with two bandwidths.
#[test]
fn one_kernel_for_two_bandwidths_is_caught() {
    let cloud = cloud::<2>([400, 250]);
    let exact = definition(&cloud, DIFFERENT, false);
    let wide = [DIFFERENT[1]; 2];
    let mut total = TotalDensity::new(&cloud, &plans::<2>(wide, false), DensityMethod::Neighbours);
    let s = total.compute(&cloud.positions).unwrap();
    let err = s
        .iter()
        .zip(&exact)
        .map(|(a, b)| (a - b).abs() / b)
        .fold(0.0, f64::max);
    eprintln!("one kernel for eps {DIFFERENT:?}: s_i off by up to {err:.2e}");
    assert!(err > 1e-3, "{err:e}");
}
