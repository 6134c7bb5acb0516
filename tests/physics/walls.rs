//! Boxes with walls (SPEC §7) against exact solutions.
//!
//! - Diffusion against a no-flux wall: the method of images. A Gaussian
//!   centered on the wall of a wide box, restricted to it, is a half-normal
//!   law; the heat equation with d rho/d nu = 0 keeps it half-normal with
//!   variance s^2 + 2 D t (the Gaussian plus its mirror image), so
//!   E[X] = sqrt(2/pi) sqrt(s^2 + 2 D t) and, for ANY initial law,
//!   d/dt E[X^2] = 2 D (the boundary terms of the integration by parts
//!   vanish at a no-flux wall). In 2D at a corner: E|X|^2 grows by 4 D t.
//! - The seed's setting: two species of opposite charges, coupled, in a box
//!   with insulating walls, relax to the uniform state; the energy never
//!   increases.
//! - Gouy–Chapman: the equilibrium of a symmetric electrolyte at an
//!   electrode.
//!
//! Every step of every run checks that no particle is outside the box.

use jko::Simulation;
use jko::model::domain::{BoxDomain, Domain, Side, WallCondition};
use jko::model::interval::Interval;
use jko::model::potential::PotentialSpec;
use jko::particles::InitialSpec;
use jko::stepper::Problem;

use jko::density::{Bandwidth, Density, DensityMethod};

fn density(eps: f64) -> Density {
    Density {
        bandwidth: Bandwidth::Fixed(eps),
        method: DensityMethod::Neighbours,
    }
}

/// Steps `sim` `steps` times; asserts the energy never increases and no
/// particle leaves `bx`.
fn advance<const D: usize>(sim: &mut Simulation<D>, bx: &BoxDomain, steps: usize) {
    let mut e = sim.initial_report().unwrap().parts.total();
    for s in 0..steps {
        let r = sim.advance().unwrap_or_else(|e| panic!("step {s}: {e}"));
        let e1 = r.parts.total();
        assert!(e1 <= e, "step {s}: the energy rose from {e} to {e1}");
        e = e1;
        for (i, p) in sim.cloud.positions.iter().enumerate() {
            assert!(
                bx.contains(p),
                "step {s}: particle {i} at {p:?} is outside the box"
            );
        }
    }
}

/// (E[X] growth error, E[X^2] growth error) relative to the exact growths,
/// for a half-normal of std s = 0.5 at the wall x = 0 of [0, 8], D = 1.
fn half_normal_errors(n: usize, h: f64, eps: f64) -> (f64, f64) {
    let (s, t) = (0.5, 0.2);
    let bx = BoxDomain::insulating(vec![0.0], vec![8.0]);
    let problem = Problem::builder(1, h)
        .seed(11)
        .domain(Domain::Box(bx.clone()))
        .density(density(eps))
        .species(
            "u",
            n,
            1.0,
            PotentialSpec::None,
            InitialSpec::Gaussian {
                mean: vec![0.0],
                std: vec![s],
            },
        )
        .build()
        .unwrap();
    let mut sim = Simulation::<1>::new(&problem).unwrap();
    let m = |sim: &Simulation<1>, p: i32| -> f64 {
        let c = &sim.cloud;
        c.positions
            .iter()
            .zip(&c.weights)
            .map(|(x, w)| w * x[0].powi(p))
            .sum()
    };
    let (m1, m2) = (m(&sim, 1), m(&sim, 2));
    advance(&mut sim, &bx, (t / h).round() as usize);
    let growth1 = m(&sim, 1) - m1;
    let growth2 = m(&sim, 2) - m2;
    let exact1 = (2.0 / std::f64::consts::PI).sqrt() * ((s * s + 2.0 * t).sqrt() - s);
    let exact2 = 2.0 * t;
    (
        (growth1 / exact1 - 1.0).abs(),
        (growth2 / exact2 - 1.0).abs(),
    )
}

/// The growths of E[X] and E[X^2] against the images solution. The scheme's
/// errors: O(h) in time (JKO is first order), O(eps^2 / s^2) from the blob
/// kernel's smoothing, and the particles' discreteness; the growths (not the
/// moments) are compared, so the initial sampling noise cancels to first
/// order. Tolerances: 6% for the coarse run (h = 0.02, eps = 0.05,
/// eps^2/s^2 = 1%, N = 500), 3% for the fine one (h = 0.005, eps = 0.025,
/// N = 2000), and the fine error below the coarse one.
#[test]
fn diffusion_against_a_wall_follows_the_images() {
    let coarse = half_normal_errors(500, 0.02, 0.05);
    let fine = half_normal_errors(2000, 0.005, 0.025);
    eprintln!("images: coarse {coarse:?}, fine {fine:?}");
    assert!(coarse.0 < 0.06 && coarse.1 < 0.06, "coarse {coarse:?}");
    assert!(fine.0 < 0.03 && fine.1 < 0.03, "fine {fine:?}");
    assert!(
        fine.0 + fine.1 < coarse.0 + coarse.1,
        "refining must lower the error: coarse {coarse:?}, fine {fine:?}"
    );
}

/// In a 2D corner: a Gaussian centered on the corner of [0, 6]^2 is the
/// product of two half-normals; E|X|^2 grows by exactly 4 D t. Tolerance
/// 4% (h = 0.01, eps = 0.05 against s = 0.5, N = 1500), from the same
/// error budget as the 1D case.
#[test]
fn diffusion_in_a_corner_follows_the_images() {
    let (s, h, t) = (0.5, 0.01, 0.1);
    let bx = BoxDomain::insulating(vec![0.0, 0.0], vec![6.0, 6.0]);
    let problem = Problem::builder(2, h)
        .seed(5)
        .domain(Domain::Box(bx.clone()))
        .density(density(0.05))
        .species(
            "u",
            1500,
            1.0,
            PotentialSpec::None,
            InitialSpec::Gaussian {
                mean: vec![0.0, 0.0],
                std: vec![s, s],
            },
        )
        .build()
        .unwrap();
    let mut sim = Simulation::<2>::new(&problem).unwrap();
    let m2 = |sim: &Simulation<2>| -> f64 {
        let c = &sim.cloud;
        c.positions
            .iter()
            .zip(&c.weights)
            .map(|(x, w)| w * (x[0] * x[0] + x[1] * x[1]))
            .sum()
    };
    let start = m2(&sim);
    advance(&mut sim, &bx, (t / h).round() as usize);
    let growth = m2(&sim) - start;
    let err = (growth / (4.0 * t) - 1.0).abs();
    eprintln!(
        "corner: E|X|^2 grew by {growth} (exact {}), error {err}",
        4.0 * t
    );
    assert!(err < 0.04, "error {err}");
}

/// The seed's setting in 1D: u (z = +1) and v (z = -1) of mass 1 each,
/// coupled (lambda = 1), in [0, 1] with insulating walls, start apart and
/// relax to the uniform state rho = 1. The slowest mode decays like
/// exp(-pi^2 t) (diffusion) or faster (the coupling pulls the charges
/// together): after t = 0.8 its amplitude is e^-8 of the start, so what
/// remains is the blob estimate's noise (eps = 0.04, N = 800: a few
/// percent). Tolerance: every particle's density within 8% of 1.
#[test]
fn two_species_in_an_insulating_box_relax_to_uniform() {
    let bx = BoxDomain::insulating(vec![0.0], vec![1.0]);
    let h = 0.02;
    let problem = Problem::builder(1, h)
        .seed(2)
        .domain(Domain::Box(bx.clone()))
        .density(density(0.04))
        .coupling(1.0, 0.005)
        .species(
            "u",
            800,
            1.0,
            PotentialSpec::None,
            InitialSpec::Gaussian {
                mean: vec![0.3],
                std: vec![0.15],
            },
        )
        .species(
            "v",
            800,
            1.0,
            PotentialSpec::None,
            InitialSpec::Gaussian {
                mean: vec![0.7],
                std: vec![0.15],
            },
        )
        .with_last(|s| s.charge = -1.0)
        .build()
        .unwrap();
    let mut sim = Simulation::<1>::new(&problem).unwrap();
    advance(&mut sim, &bx, 40);
    let rho = sim.densities();
    let worst = rho.iter().fold(0.0f64, |m, r| m.max((r - 1.0).abs()));
    eprintln!("seed setting: worst density error {worst}");
    assert!(worst < 0.08, "worst |rho - 1| = {worst}");
}

/// Gouy–Chapman. Units: D = 1 (the thermal unit), lambda = 1, so psi is in
/// thermal units and -psi'' = c+ - c-. A symmetric electrolyte of bulk
/// concentration c0 = 10 (kappa = sqrt(2 c0), Debye length 0.224) fills
/// [0, 3]: an electrode at psi_0 = 2 at x = 0, and a grounded electrode at
/// x = 3 (13 Debye lengths away: the bulk potential 0 is its own). The
/// equilibrium is psi = 4 artanh(tanh(psi_0/4) exp(-kappa x)),
/// c+- = c0 exp(-+psi), and the electrode's charge (its d psi / d nu) is
/// Grahame's sigma = 2 sqrt(2 c0) sinh(psi_0/2).
///
/// The species' masses are the profile's (the integral of c+- over the box,
/// in closed form); the particles start from an evenly spaced sample of a
/// *different* layer (psi_0 = 1.8, same masses), and the layer charges on
/// the double layer's RC time lambda_D L / D = 0.67 (Bazant, Thornton and
/// Ajdari 2004), the bulk carrying the current: after t = 1.5 what is left
/// of the initial deficit (sigma 9.3 against 10.5) is e^-2.2 of it, about
/// 1.3% of sigma (measured with psi_0 = 1.5 at t = 1.2: 5.1% left, as this
/// estimate says). So: psi over the layer within 0.06 thermal units
/// (the blob smoothing
/// eps = 0.02 and the pair softening delta = 0.002 against the layer's
/// 0.224, and N = 1500 per species), both densities within 3% of
/// c0 exp(-+psi) from 2 eps to 3 Debye lengths off the wall (the kernel's
/// smoothing of a profile that varies on the scale lambda_D / 2: about
/// (eps kappa)^2 = 0.8%, plus the particles' noise; measured 1.2%), and
/// sigma within 3% of Grahame's.
#[test]
fn an_electrode_holds_a_gouy_chapman_layer() {
    let (c0, psi0, l) = (10.0f64, 2.0f64, 3.0f64);
    let kappa = (2.0 * c0).sqrt();
    let phi = |p0: f64, x: f64| 4.0 * ((p0 / 4.0).tanh() * (-kappa * x).exp()).atanh();
    // The mass of c0 exp(-+ psi) on [0, x] (module docs of the test).
    let cumulative = |p0: f64, sign: f64, x: f64| {
        c0 * x - 2.0 * c0 / kappa * ((-sign * phi(p0, x) / 2.0).exp() - (-sign * p0 / 2.0).exp())
    };
    let n = 1500;
    let mut positions = Vec::new();
    let mut weights = Vec::new();
    let mut blocks = Vec::new();
    for (k, sign) in [1.0, -1.0].into_iter().enumerate() {
        let mass = cumulative(psi0, sign, l);
        // Start from the layer of psi_0 = 1.8 holding the same mass.
        let start_mass = cumulative(1.8, sign, l);
        let first = positions.len();
        for i in 0..n {
            let target = (i as f64 + 0.5) / n as f64 * start_mass;
            let (mut a, mut b) = (0.0, l);
            for _ in 0..60 {
                let m = 0.5 * (a + b);
                if cumulative(1.8, sign, m) < target {
                    a = m;
                } else {
                    b = m;
                }
            }
            positions.push([0.5 * (a + b)]);
            weights.push(mass / n as f64);
        }
        blocks.push(jko::particles::SpeciesBlock {
            name: ["plus", "minus"][k].into(),
            range: first..positions.len(),
            charge: sign,
            diffusion: 1.0,
            exponent: 1.0,
            mass,
        });
    }
    let masses = [cumulative(psi0, 1.0, l), cumulative(psi0, -1.0, l)];
    let bx = BoxDomain::insulating(vec![0.0], vec![l])
        .with_wall(0, Side::Lower, WallCondition::Electrode { potential: psi0 })
        .with_wall(0, Side::Upper, WallCondition::Electrode { potential: 0.0 });
    let h = 0.005;
    let mut b = Problem::builder(1, h)
        .domain(Domain::Box(bx.clone()))
        .density(density(0.02))
        .coupling(1.0, 0.002);
    for (k, sign) in [1.0, -1.0].into_iter().enumerate() {
        b = b
            .species(
                ["plus", "minus"][k],
                n,
                1.0,
                PotentialSpec::None,
                InitialSpec::Uniform {
                    lower: vec![0.0],
                    upper: vec![l],
                },
            )
            .with_last(|s| {
                s.charge = sign;
                s.mass = Some(masses[k]);
            });
    }
    let problem = b.build().unwrap();
    let cloud = jko::particles::Cloud {
        ids: (0..2 * n as u64).map(|i| i % n as u64).collect(),
        positions,
        weights,
        blocks,
    };
    let mut sim = Simulation::<1>::from_cloud(&problem, cloud).unwrap();
    advance(&mut sim, &bx, (1.5 / h).round() as usize);
    let rho = sim.densities();

    let iv = Interval::new(0.0, l, bx.walls[0]);
    let c = &sim.cloud;
    let q = c.charges();
    let psi = |x: f64| -> (f64, f64) {
        let (mut v, mut dv) = iv.wall_potential(x);
        for (p, qi) in c.positions.iter().zip(&q) {
            let (g, dg) = iv.green(x, p[0]);
            v += qi * g;
            dv += qi * dg;
        }
        (v, dv)
    };
    let mut worst: f64 = 0.0;
    for k in 0..=12 {
        let x = k as f64 * 0.25 / kappa;
        worst = worst.max((psi(x).0 - phi(psi0, x)).abs());
    }
    // The layer's charge that the electrode balances: -psi'(0+) (Gauss)
    // plus the ions resting exactly on the wall, which belong to the layer
    // (README: within eps of a wall the reflected estimate is flat, so some
    // counter-ions rest on the wall; seen from x > 0 their charge and its
    // image cancel).
    let on_wall: f64 = c
        .positions
        .iter()
        .zip(&q)
        .filter(|(p, _)| p[0] == 0.0)
        .map(|(_, qi)| qi)
        .sum();
    let sigma = -psi(1e-14).1 - on_wall;
    let grahame = 2.0 * (2.0 * c0).sqrt() * (psi0 / 2.0).sinh();
    eprintln!(
        "Gouy-Chapman: worst psi error {worst}, sigma {sigma} vs Grahame {grahame} \
         (charge on the wall {on_wall})"
    );
    assert!(worst < 0.06, "psi error {worst}");
    // Both densities over the layer, from two kernel widths off the wall
    // (where the reflected estimate is flat, README) to 3 Debye lengths:
    // c0 exp(-+ psi_GC).
    let mut worst_density: f64 = 0.0;
    for b in &c.blocks {
        for i in b.range.clone() {
            let x = c.positions[i][0];
            if (0.04..=3.0 / kappa).contains(&x) {
                let exact = c0 * (-b.charge * phi(psi0, x)).exp();
                worst_density = worst_density.max((rho[i] / exact - 1.0).abs());
            }
        }
    }
    eprintln!("Gouy-Chapman: worst relative density error over the layer {worst_density}");
    assert!(worst_density < 0.03, "density error {worst_density}");
    assert!(
        (sigma / grahame - 1.0).abs() < 0.03,
        "sigma {sigma} vs Grahame {grahame}"
    );
}

/// psi(x) of a 1D cloud in the interval `iv` with backgrounds: the walls'
/// term, the backgrounds' potentials and the pair sum (unsoftened G_box).
fn potential_1d(
    sim: &Simulation<1>,
    iv: &Interval,
    backgrounds: &[jko::model::background::Background],
) -> impl Fn(f64) -> f64 {
    use jko::coupling::ExternalPotential;
    let field = jko::coupling::interval::IntervalField::new(Some(*iv), backgrounds, 0.0);
    let c = &sim.cloud;
    let charges: Vec<(f64, f64)> = c.positions.iter().map(|p| p[0]).zip(c.charges()).collect();
    let iv = *iv;
    move |x: f64| {
        let mut v = field.value_and_gradient(&[x]).0;
        for &(y, q) in &charges {
            v += q * iv.green(x, y).0;
        }
        v
    }
}

/// A p-n junction at equilibrium. Donors (+1) on [0, 1] and acceptors (-1)
/// on [1, 2] as uniform backgrounds; electrons (z = -1) and holes (z = +1)
/// of mass 1.2 each; insulating walls (the box is neutral); D = 1,
/// lambda = 100 (Debye length ~0.09). At equilibrium the electrons are
/// Boltzmann-distributed, n ∝ exp(lambda psi / D), so the potential step
/// between the two sides is the built-in potential
/// psi(left) - psi(right) = (D / lambda) log(n_left / n_right), n the
/// electron densities far from the junction (here about 1.1 and 0.1:
/// about 0.024). Measured at x = 0.4 and 1.6 (6 Debye lengths from the
/// junction and the walls), the densities averaged over the particles
/// within 0.1 of those points. Tolerance 8% of the step: the blob estimate
/// of the minority density (about 40 particles in the window, eps = 0.03)
/// and the remaining relaxation after t = 1.5.
#[test]
fn a_pn_junction_holds_its_built_in_potential() {
    use jko::model::background::Background;
    let bx = BoxDomain::insulating(vec![0.0], vec![2.0]);
    let backgrounds = vec![
        Background::uniform("donors", 1.0, vec![0.0], vec![1.0]),
        Background::uniform("acceptors", -1.0, vec![1.0], vec![2.0]),
    ];
    let (h, lambda, n) = (0.01, 100.0, 1500);
    let uniform = || InitialSpec::Uniform {
        lower: vec![0.0],
        upper: vec![2.0],
    };
    let mut b = Problem::builder(1, h)
        .seed(4)
        .domain(Domain::Box(bx.clone()))
        .density(density(0.03))
        .coupling(lambda, 0.002);
    for bg in &backgrounds {
        b = b.background(bg.clone());
    }
    let problem = b
        .species("electrons", n, 1.0, PotentialSpec::None, uniform())
        .with_last(|s| {
            s.charge = -1.0;
            s.mass = Some(1.2);
        })
        .species("holes", n, 1.0, PotentialSpec::None, uniform())
        .with_last(|s| s.mass = Some(1.2))
        .build()
        .unwrap();
    let mut sim = Simulation::<1>::new(&problem).unwrap();
    advance(&mut sim, &bx, (1.5 / h).round() as usize);
    let iv = Interval::new(0.0, 2.0, bx.walls[0]);
    let rho = sim.densities();
    let psi = potential_1d(&sim, &iv, &backgrounds);
    let electrons = sim.cloud.blocks[0].range.clone();
    let mean_density = |x0: f64| {
        let near: Vec<f64> = electrons
            .clone()
            .filter(|&i| (sim.cloud.positions[i][0] - x0).abs() < 0.1)
            .map(|i| rho[i])
            .collect();
        near.iter().sum::<f64>() / near.len() as f64
    };
    let (n_left, n_right) = (mean_density(0.4), mean_density(1.6));
    let step = psi(0.4) - psi(1.6);
    let built_in = (n_left / n_right).ln() / lambda;
    eprintln!("p-n junction: n {n_left} | {n_right}, psi step {step}, built-in {built_in}");
    assert!(
        (step / built_in - 1.0).abs() < 0.08,
        "psi step {step} vs built-in {built_in}"
    );
}

/// The seed's setting in 2D, with the box's particle-mesh Poisson solve:
/// u (z = +1) and v (z = -1), mass 1 each, coupled (lambda = 1, softening
/// 0.03), in the unit square with insulating walls, start 0.4 apart and
/// relax to the uniform state. The slowest mode decays at least like
/// exp(-pi^2 t): after t = 0.5 the centers of mass, 0.4 apart at the start,
/// are within 0.02 of each other and of the box's center (e^-5 of 0.4 is
/// 0.003, plus the particles' noise), and every particle's density is
/// within 20% of 1 (the blob noise of N = 600, eps = 0.06 in 2D: about
/// 100 neighbours, 10%). The energy never increases, no particle leaves.
#[test]
fn two_species_in_an_insulating_square_relax_to_uniform() {
    let bx = BoxDomain::insulating(vec![0.0, 0.0], vec![1.0, 1.0]);
    let h = 0.02;
    let law = |x: f64| InitialSpec::Gaussian {
        mean: vec![x, 0.5],
        std: vec![0.15, 0.15],
    };
    let problem = Problem::builder(2, h)
        .seed(8)
        .domain(Domain::Box(bx.clone()))
        .density(density(0.06))
        .coupling(1.0, 0.03)
        .species("u", 600, 1.0, PotentialSpec::None, law(0.3))
        .species("v", 600, 1.0, PotentialSpec::None, law(0.7))
        .with_last(|s| s.charge = -1.0)
        .build()
        .unwrap();
    let mut sim = Simulation::<2>::new(&problem).unwrap();
    advance(&mut sim, &bx, 25);
    let center = |k: usize| -> [f64; 2] {
        let r = sim.cloud.blocks[k].range.clone();
        let (x, w) = (&sim.cloud.positions[r.clone()], &sim.cloud.weights[r]);
        crate::support::moments(x, w).0
    };
    let (cu, cv) = (center(0), center(1));
    let gap = ((cu[0] - cv[0]).powi(2) + (cu[1] - cv[1]).powi(2)).sqrt();
    let off = ((cu[0] - 0.5).powi(2) + (cu[1] - 0.5).powi(2)).sqrt();
    let rho = sim.densities();
    let worst = rho.iter().fold(0.0f64, |m, r| m.max((r - 1.0).abs()));
    eprintln!("2D seed setting: gap {gap}, off center {off}, worst density error {worst}");
    assert!(gap < 0.02 && off < 0.02, "centers {cu:?} {cv:?}");
    assert!(worst < 0.2, "worst |rho - 1| = {worst}");
}
