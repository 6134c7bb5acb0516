//! The blob density in a box with no-flux walls (SPEC §7): the estimate of
//! the density reflected evenly across every wall,
//!
//!   rho_eps(X_i) = sum_j w_j sum_{R} K_eps(X_i - R X_j),
//!
//! R over the images of the box's reflection group within the kernel's
//! reach of the box (the identity, the mirror images across one wall, and
//! across two or three walls at edges and corners; across both walls of an
//! axis when the box is narrower than the reach). Near a wall the kernel's
//! mass that falls outside the box comes back as its image, so the
//! estimate's integral over the box is the species' mass, exactly: a wall
//! neither depletes nor piles up the estimate.
//!
//! Any estimator does the sums ([`DensityEstimator`]): this one hands it
//! the particles followed by their images (ghosts, with their sources'
//! weights) and keeps the first N densities. For E = sum_i w_i g(rho_i) over
//! the real particles, the inner estimator's gradient with slopes s_i on the
//! real particles and 0 on the ghosts is exactly dE/dX for every point,
//! ghost or not (the ghosts' own densities carry no energy); the gradient
//! at a ghost R X_j goes back to X_j through R^T (a sign flip on each
//! reflected axis).
//!
//! Which particles get images is decided from the positions: those within
//! the reach plus a skin of a wall at the first estimate after `reset`,
//! kept while every other particle stays out of the reach (then the set
//! is chosen again), so that the inner neighbour list is rebuilt only when
//! the particles move, as in free space. Images beyond the reach of the box
//! add exact zeros (the kernel has compact support).
//!
//! A caller that reads some particles' gradient only
//! ([`DensityEstimator::want`], a member of a team dividing a JKO step)
//! passes the inner estimator those particles and the ghosts of each of
//! them: a wanted particle's gradient is its own inner entry plus its
//! ghosts', and nothing else.

use super::{DensityEstimator, EstimateRefused};

/// The images of coordinate `v` on the axis [lo, hi] within `margin` of it,
/// the identity first: (offset or mirror center, flipped), the image being
/// `v + offset` or `center - v`.
fn axis_images(lo: f64, hi: f64, v: f64, margin: f64, out: &mut Vec<(f64, bool)>) {
    out.clear();
    out.push((0.0, false));
    let period = 2.0 * (hi - lo);
    // Across a narrow axis a particle is near both walls wherever it is:
    // take every image that can come within the margin for some position
    // in the box, so the set does not depend on where it is.
    let margin = if hi - lo < 2.0 * margin {
        margin + (hi - lo)
    } else {
        margin
    };
    // Images of the even periodic extension: v + k P and 2 lo - v + k P.
    let reach = |y: f64| y > lo - margin && y < hi + margin;
    let kmax = (margin / period).ceil() as i64 + 1;
    for k in -kmax..=kmax {
        let shift = k as f64 * period;
        if k != 0 && reach(v + shift) {
            out.push((shift, false));
        }
        let mirror = 2.0 * lo + shift;
        if reach(mirror - v) {
            out.push((mirror, true));
        }
    }
}

/// The mirror images of the points `x` across the walls of the box
/// [lower, upper] that lie within `reach` of it (the identity excluded),
/// and the index of each image's point: the sources a kernel estimate of
/// the evenly reflected density needs besides the points themselves.
pub fn mirror_images<const D: usize>(
    x: &[[f64; D]],
    lower: &[f64; D],
    upper: &[f64; D],
    reach: f64,
) -> (Vec<[f64; D]>, Vec<usize>) {
    let (mut images, mut sources) = (Vec::new(), Vec::new());
    let mut per_axis: Vec<Vec<(f64, bool)>> = vec![Vec::new(); D];
    for (i, p) in x.iter().enumerate() {
        if !(0..D).any(|a| p[a] - lower[a] < reach || upper[a] - p[a] < reach) {
            continue;
        }
        for a in 0..D {
            axis_images(lower[a], upper[a], p[a], reach, &mut per_axis[a]);
        }
        let counts: Vec<usize> = per_axis.iter().map(|v| v.len()).collect();
        let total: usize = counts.iter().product();
        for combo in 1..total {
            let mut rest = combo;
            let image = std::array::from_fn(|a| {
                let (c, flipped) = per_axis[a][rest % counts[a]];
                rest /= counts[a];
                if flipped { c - p[a] } else { p[a] + c }
            });
            images.push(image);
            sources.push(i);
        }
    }
    (images, sources)
}

/// An estimator of the density reflected across the walls of the box
/// [lower, upper] (module docs).
#[derive(Debug)]
pub struct Reflecting<const D: usize> {
    inner: Box<dyn DensityEstimator<D>>,
    lower: [f64; D],
    upper: [f64; D],
    /// The kernel's support radius.
    reach: f64,
    /// Each particle's walls within the reach plus skin when the images were
    /// chosen (bit 2a: lower wall of axis a, bit 2a + 1: upper); the images
    /// stay valid while every particle's walls within the reach are among them.
    walls_near: Vec<u8>,
    chosen: bool,
    /// Each ghost's source particle and the axes it is reflected across
    /// an odd number of times (bit a: the sign of axis a is flipped).
    source: Vec<u32>,
    flips: Vec<u8>,
    /// Each ghost's image, per axis (c, flipped): the ghost's coordinate is
    /// c - x_a if flipped, else x_a + c, from its source's current x.
    images: Vec<[(f64, bool); D]>,
    /// Particles then ghosts, and their weights and slopes.
    xa: Vec<[f64; D]>,
    wa: Vec<f64>,
    slope_a: Vec<f64>,
    grad_a: Vec<[f64; D]>,
    /// The particles whose gradient the caller reads (`None`: all), and
    /// whether the inner estimator was told of their ghosts since the
    /// images were last chosen.
    wanted: Option<Vec<u32>>,
    told: bool,
}

impl<const D: usize> Reflecting<D> {
    /// Reflects `inner` (kernel support radius `reach`) across the walls of
    /// the box [lower, upper].
    pub fn new(
        inner: Box<dyn DensityEstimator<D>>,
        lower: [f64; D],
        upper: [f64; D],
        reach: f64,
    ) -> Self {
        Reflecting {
            inner,
            lower,
            upper,
            reach,
            walls_near: Vec::new(),
            chosen: false,
            source: Vec::new(),
            flips: Vec::new(),
            images: Vec::new(),
            xa: Vec::new(),
            wa: Vec::new(),
            slope_a: Vec::new(),
            grad_a: Vec::new(),
            wanted: None,
            told: true,
        }
    }

    /// Tells the inner estimator the wanted particles and their ghosts
    /// (module docs), ascending: the particles, then the ghosts in order.
    fn tell_inner(&mut self, n: usize) {
        self.told = true;
        let Some(wanted) = &self.wanted else {
            self.inner.want(None);
            return;
        };
        let mut mark = vec![false; n];
        wanted.iter().for_each(|&i| mark[i as usize] = true);
        let ghosts = (self.source.iter().enumerate())
            .filter(|(_, s)| mark[**s as usize])
            .map(|(g, _)| (n + g) as u32);
        let all: Vec<u32> = wanted.iter().copied().chain(ghosts).collect();
        self.inner.want(Some(&all));
    }

    /// The walls within `margin` of `x` (bits as in `walls_near`).
    fn walls_within(&self, x: &[f64; D], margin: f64) -> u8 {
        let mut bits = 0u8;
        for a in 0..D {
            if x[a] - self.lower[a] < margin {
                bits |= 1 << (2 * a);
            }
            if self.upper[a] - x[a] < margin {
                bits |= 1 << (2 * a + 1);
            }
        }
        bits
    }

    fn near_wall(&self, x: &[f64; D], margin: f64) -> bool {
        self.walls_within(x, margin) != 0
    }

    fn axis_images(&self, a: usize, v: f64, margin: f64, out: &mut Vec<(f64, bool)>) {
        axis_images(self.lower[a], self.upper[a], v, margin, out);
    }

    /// Chooses the particles with images and lists their ghosts.
    fn choose(&mut self, x: &[[f64; D]]) {
        let margin = self.reach * (1.0 + super::SKIN_FRACTION);
        self.walls_near.clear();
        self.walls_near.resize(x.len(), 0);
        self.source.clear();
        self.flips.clear();
        self.images.clear();
        let mut per_axis: Vec<Vec<(f64, bool)>> = vec![Vec::new(); D];
        for (i, p) in x.iter().enumerate() {
            self.walls_near[i] = self.walls_within(p, margin);
            if self.walls_near[i] == 0 {
                continue;
            }
            for a in 0..D {
                let mut v = std::mem::take(&mut per_axis[a]);
                self.axis_images(a, p[a], margin, &mut v);
                per_axis[a] = v;
            }
            // Every combination of per-axis images but the identity.
            let counts: Vec<usize> = per_axis.iter().map(|v| v.len()).collect();
            let total: usize = counts.iter().product();
            for combo in 1..total {
                let mut rest = combo;
                let mut image = [(0.0, false); D];
                let mut flips = 0u8;
                for a in 0..D {
                    let pick = per_axis[a][rest % counts[a]];
                    rest /= counts[a];
                    image[a] = pick;
                    if pick.1 {
                        flips |= 1 << a;
                    }
                }
                self.source.push(i as u32);
                self.flips.push(flips);
                self.images.push(image);
            }
        }
        self.chosen = true;
        self.told = false;
    }

    /// Whether a particle has come within the reach of a wall it had no
    /// images across.
    fn stale(&self, x: &[[f64; D]]) -> bool {
        x.len() != self.walls_near.len()
            || x.iter()
                .zip(&self.walls_near)
                .any(|(p, &chosen)| self.walls_within(p, self.reach) & !chosen != 0)
    }

    /// The inner estimator's gradient over the particles and their ghosts,
    /// `values` (slopes, or with `linear` the c of the linear form) given on
    /// the particles and 0 on the ghosts; each ghost's share goes back to
    /// its source through R^T.
    fn augmented_gradient(
        &mut self,
        x: &[[f64; D]],
        values: &[f64],
        grad: &mut [[f64; D]],
        linear: bool,
    ) {
        let n = x.len();
        let total = self.xa.len();
        self.slope_a.clear();
        self.slope_a.extend_from_slice(values);
        self.slope_a.resize(total, 0.0);
        self.grad_a.clear();
        self.grad_a.resize(total, [0.0; D]);
        if linear {
            self.inner
                .add_linear_gradient(&self.xa, &self.wa, &self.slope_a, &mut self.grad_a);
        } else {
            self.inner
                .add_gradient(&self.xa, &self.wa, &self.slope_a, &mut self.grad_a);
        }
        for (gi, ga) in grad.iter_mut().zip(&self.grad_a[..n]) {
            for a in 0..D {
                gi[a] += ga[a];
            }
        }
        for g in 0..self.source.len() {
            let (i, flips) = (self.source[g] as usize, self.flips[g]);
            let ga = &self.grad_a[n + g];
            for a in 0..D {
                let sign = if flips & (1 << a) != 0 { -1.0 } else { 1.0 };
                grad[i][a] += sign * ga[a];
            }
        }
    }

    fn ghost(&self, g: usize, x: &[[f64; D]]) -> [f64; D] {
        let p = &x[self.source[g] as usize];
        std::array::from_fn(|a| {
            let (c, flipped) = self.images[g][a];
            if flipped { c - p[a] } else { p[a] + c }
        })
    }
}

impl<const D: usize> DensityEstimator<D> for Reflecting<D> {
    fn bandwidth(&self) -> f64 {
        self.inner.bandwidth()
    }

    fn compute(&mut self, x: &[[f64; D]], w: &[f64]) -> Result<&[f64], EstimateRefused> {
        if !self.chosen || self.stale(x) {
            self.choose(x);
        }
        let n = x.len();
        let ghosts = self.source.len();
        self.xa.clear();
        self.xa.extend_from_slice(x);
        self.wa.clear();
        self.wa.extend_from_slice(w);
        for g in 0..ghosts {
            let p = self.ghost(g, x);
            self.xa.push(p);
            self.wa.push(w[self.source[g] as usize]);
        }
        if !self.told {
            self.tell_inner(n);
        }
        let rho = self.inner.compute(&self.xa, &self.wa)?;
        Ok(&rho[..n])
    }

    fn add_gradient(&mut self, x: &[[f64; D]], _w: &[f64], slope: &[f64], grad: &mut [[f64; D]]) {
        // The inner gradient is w_l sum_j w_j (s_l + s_j) grad K with the
        // augmented weights (the ghosts carry their sources' weights).
        self.augmented_gradient(x, slope, grad, false);
    }

    /// The same argument as for `add_gradient`: c is 0 on the ghosts (their
    /// densities are in no energy), their sources' weights are theirs.
    fn add_linear_gradient(
        &mut self,
        x: &[[f64; D]],
        _w: &[f64],
        c: &[f64],
        grad: &mut [[f64; D]],
    ) {
        self.augmented_gradient(x, c, grad, true);
    }

    fn reset(&mut self) {
        self.chosen = false;
        self.inner.reset();
    }

    fn want(&mut self, particles: Option<&[u32]>) {
        self.wanted = particles.map(<[u32]>::to_vec);
        self.told = false;
    }

    /// The inner estimator's, for the cloud and its images near the walls
    /// (at most 3^d - 1 ghosts for each of them).
    fn extra_memory(&self, x: &[[f64; D]], w: &[f64]) -> u64 {
        let margin = self.reach * (1.0 + super::SKIN_FRACTION);
        let near = x.iter().filter(|p| self.near_wall(p, margin)).count() as f64;
        let ghosts = near * (3f64.powi(D as i32) - 1.0);
        let per_point = (std::mem::size_of::<[f64; D]>() * 3 + 8 * 3 + D * 9) as f64;
        self.inner
            .extra_memory(x, w)
            .saturating_add(super::saturating_bytes(ghosts * per_point))
    }
}

#[cfg(test)]
mod tests {
    use crate::density::{DensityPlan, dist2};
    use crate::model::kernel::{RadialKernel, WendlandC2};

    /// A cloud of `n` points in the box [0, 1] x [0, 0.5] x [0, 0.3]
    /// (first D axes), a third of them within the kernel's reach of a wall.
    fn cloud<const D: usize>(n: usize) -> (Vec<[f64; D]>, Vec<f64>, [f64; D]) {
        let upper = [1.0, 0.5, 0.3];
        let x = (0..n)
            .map(|i| {
                std::array::from_fn(|a| {
                    let t = ((i * (2 * a + 3)) as f64 * 0.618_034 + 0.1 * a as f64).fract();
                    upper[a] * t
                })
            })
            .collect();
        let w = (0..n).map(|i| (1.0 + (i % 5) as f64) / n as f64).collect();
        (x, w, std::array::from_fn(|a| upper[a]))
    }

    /// The reflected estimate against its definition: the kernel sum over
    /// the particles and all their images across the box's walls (brute
    /// force over 5^d images per particle, which holds every image within
    /// reach here). Tolerance
    /// 1e-12 relative: rounding of ~100-term sums.
    #[test]
    fn reflected_sums_equal_the_definition() {
        fn check<const D: usize>(n: usize, eps: f64) {
            let (x, w, upper) = cloud::<D>(n);
            let kernel = WendlandC2::new(D, eps);
            for plan in [DensityPlan::neighbours(eps)] {
                let mut est = plan.in_box(&[0.0; D], &upper).build::<D>();
                let rho = est.compute(&x, &w).unwrap().to_vec();
                for i in (0..n).step_by(7) {
                    let mut exact = 0.0;
                    for j in 0..n {
                        for m in 0..5usize.pow(D as u32) {
                            let image: [f64; D] = std::array::from_fn(|a| {
                                let k = (m / 5usize.pow(a as u32)) % 5;
                                // images 2 k L +- x, k = -1, 0, 1 and the mirror pairs
                                let l = upper[a];
                                match k {
                                    0 => x[j][a],
                                    1 => -x[j][a],
                                    2 => 2.0 * l - x[j][a],
                                    3 => x[j][a] + 2.0 * l,
                                    _ => x[j][a] - 2.0 * l,
                                }
                            });
                            exact += w[j] * kernel.value(dist2(&x[i], &image));
                        }
                    }
                    assert!(
                        (rho[i] - exact).abs() <= 1e-12 * exact,
                        "D={D} i={i}: {} vs {exact}",
                        rho[i]
                    );
                }
            }
        }
        check::<1>(300, 0.01);
        check::<2>(800, 0.02);
        check::<3>(1500, 0.03);
    }

    /// The gradient of E = sum_i w_i log rho_i against central differences
    /// for particles near walls, edges and corners (step 1e-6 of a kernel
    /// width; tolerance 1e-6 relative to the largest component: the
    /// difference's truncation and rounding are well below).
    #[test]
    fn reflected_gradient_matches_differences() {
        fn check<const D: usize>(n: usize, eps: f64) {
            let (x, w, upper) = cloud::<D>(n);
            let plan = DensityPlan::neighbours(eps).in_box(&[0.0; D], &upper);
            let mut est = plan.build::<D>();
            let mut energy = |x: &[[f64; D]]| -> f64 {
                est.reset();
                let rho = est.compute(x, &w).unwrap();
                rho.iter().zip(&w).map(|(r, wi)| wi * r.ln()).sum()
            };
            let e0 = energy(&x);
            assert!(e0.is_finite());
            let mut est = plan.build::<D>();
            let rho = est.compute(&x, &w).unwrap().to_vec();
            let slope: Vec<f64> = rho.iter().map(|r| 1.0 / r).collect();
            let mut grad = vec![[0.0; D]; n];
            est.add_gradient(&x, &w, &slope, &mut grad);
            let scale = grad.iter().flatten().fold(0.0f64, |m, g| m.max(g.abs()));
            let h = 1e-6 * eps;
            for i in (0..n).step_by(5) {
                for a in 0..D {
                    let mut xp = x.clone();
                    xp[i][a] += h;
                    let ep = energy(&xp);
                    xp[i][a] -= 2.0 * h;
                    let em = energy(&xp);
                    let fd = (ep - em) / (2.0 * h);
                    assert!(
                        (fd - grad[i][a]).abs() <= 1e-6 * scale,
                        "D={D} i={i} a={a}: {} vs {fd} (x = {:?})",
                        grad[i][a],
                        x[i]
                    );
                }
            }
        }
        check::<1>(200, 0.01);
        check::<2>(400, 0.03);
        check::<3>(300, 0.06);
    }

    /// Members of a team of 2-3 (threads standing for MPI ranks), each
    /// wanting the particles of its band of the first axis, with the
    /// neighbour-list and the mesh estimators inside (the mesh divided by
    /// slabs, whatever its size): every wanted
    /// particle's gradient (of E and of a linear form, after moves that
    /// choose the images again) has the single process's bits, its ghosts'
    /// shares included.
    #[test]
    fn members_wanting_some_particles_get_their_bits() {
        use crate::density::mesh::MeshDensity;
        use crate::density::{BlobDensity, DensityEstimator};
        use crate::util::team::{Team, ThreadTeam};
        use std::sync::Arc;
        let (x0, w, upper) = cloud::<2>(6000);
        let eps = 0.02;
        let reach = WendlandC2::new(2, eps).support();
        let s: Vec<f64> = (0..x0.len()).map(|i| (i % 5) as f64 - 2.0).collect();
        let run = |team: Option<Arc<dyn Team>>, mesh: bool, wanted: Option<Vec<u32>>| {
            let inner: Box<dyn DensityEstimator<2>> = match (mesh, team) {
                (true, Some(t)) => Box::new(
                    MeshDensity::new(eps, usize::MAX)
                        .with_team(t)
                        .dividing_every_window(),
                ),
                (true, None) => Box::new(MeshDensity::new(eps, usize::MAX)),
                (false, Some(t)) => Box::new(BlobDensity::new(eps).with_team(t)),
                (false, None) => Box::new(BlobDensity::new(eps)),
            };
            let mut est = super::Reflecting::new(inner, [0.0; 2], upper, reach);
            est.want(wanted.as_deref());
            let mut grads = Vec::new();
            for step in [0.0, 0.5, 3.0] {
                let x: Vec<[f64; 2]> = (x0.iter().enumerate())
                    .map(|(i, p)| {
                        std::array::from_fn(|a| {
                            (p[a] + step * eps * ((i + a) as f64).sin()).clamp(0.0, upper[a])
                        })
                    })
                    .collect();
                est.compute(&x, &w).unwrap();
                let mut g = vec![[0.0; 2]; x.len()];
                est.add_gradient(&x, &w, &s, &mut g);
                est.add_linear_gradient(&x, &w, &s, &mut g);
                grads.push(g);
            }
            grads
        };
        for mesh in [false, true] {
            let single = run(None, mesh, None);
            for size in [2, 3] {
                let members = ThreadTeam::run(size, |t| {
                    let band = |p: &[f64; 2]| ((p[0] * size as f64) as usize).min(size - 1);
                    let wanted: Vec<u32> = (0..x0.len() as u32)
                        .filter(|&i| band(&x0[i as usize]) == t.rank())
                        .collect();
                    let grads = run(Some(t), mesh, Some(wanted.clone()));
                    (wanted, grads)
                });
                for (rank, (wanted, grads)) in members.iter().enumerate() {
                    for (k, (g, one)) in grads.iter().zip(&single).enumerate() {
                        for &i in wanted {
                            let i = i as usize;
                            assert_eq!(
                                g[i].map(f64::to_bits),
                                one[i].map(f64::to_bits),
                                "mesh {mesh}, member {rank} of {size}, evaluation {k}, particle {i}"
                            );
                        }
                    }
                }
            }
        }
    }
}
