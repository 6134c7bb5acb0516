//! Finite ion size (SPEC §10): JKO runs where a stiff confining potential
//! pushes two species together harder than close packing allows.
//!
//! Without the steric term the total density of the compressed state rises
//! above 1/v (checked: that is what makes the runs with it a test); with it,
//! at every step:
//!
//! - every particle's total density s_i stays below 1/v (v s_i < 1), the
//!   tolerance being zero: the energy is +infinity at v s_i >= 1, so no
//!   accepted state can have it;
//! - the energy decreases by at least the transport cost,
//!   E(X^{n+1}) + W^2/(2h) <= E(X^n) (the JKO step's invariant, also
//!   through sub-steps), with rounding slack 1e-12 |E| (the neighbour lists
//!   are rebuilt at each step's start, which changes the sums' last bits);
//! - no step fails, and every reported number is finite (trial points at or
//!   beyond close packing have infinite energy and are refused by the
//!   optimizer, not propagated).

use jko::Simulation;
use jko::density::{Bandwidth, Density, DensityMethod};
use jko::energy::steric::TotalDensity;
use jko::model::domain::{BoxDomain, Domain};
use jko::model::potential::PotentialSpec;
use jko::model::steric::Steric;
use jko::particles::InitialSpec;
use jko::stepper::Problem;

/// Two species of `n` particles each, charges +1 and -1 (no coupling), both
/// pulled to `center` by U = k |x - center|^2 / 2, D = T = 1, drawn from
/// `initial`, in `domain`; with `[steric]` of volume `v` if `steric`.
#[allow(clippy::too_many_arguments)]
fn problem(
    d: usize,
    h: f64,
    n: usize,
    eps: f64,
    k: f64,
    center: Vec<f64>,
    initial: InitialSpec,
    domain: Domain,
    steric: Option<f64>,
) -> Problem {
    let potential = PotentialSpec::Quadratic {
        center,
        stiffness: vec![k; d],
    };
    let mut b = Problem::builder(d, h)
        .seed(5)
        .domain(domain)
        .density(Density {
            bandwidth: Bandwidth::Fixed(eps),
            method: DensityMethod::Neighbours,
        })
        .species("plus", n, 1.0, potential.clone(), initial.clone())
        .species("minus", n, 1.0, potential, initial)
        .with_last(|s| s.charge = -1.0);
    if let Some(volume) = steric {
        b = b.steric(Steric {
            volume,
            temperature: 1.0,
        });
    }
    b.build().unwrap()
}

/// max_i v s_i at the current cloud of `sim`, summed with `sim`'s own
/// bandwidths (works without `[steric]` too).
fn packing<const D: usize>(sim: &Simulation<D>, v: f64) -> f64 {
    let mut total = TotalDensity::new(&sim.cloud, &sim.plans, DensityMethod::Neighbours);
    let s = total.compute(&sim.cloud.positions).unwrap();
    v * s.iter().fold(0.0f64, |m, &x| m.max(x))
}

/// Runs `steps` steps of `with` (which has `[steric]` of volume `v`) and of
/// `without` (the same problem without it); asserts the module's
/// invariants, and that the run without the term passes close packing.
/// Returns (max v s_i over the steric run, max v s_i at the end without).
fn compressed_run<const D: usize>(
    with: &Problem,
    without: &Problem,
    v: f64,
    steps: usize,
) -> (f64, f64) {
    let mut sim = Simulation::<D>::new(with).unwrap();
    let h = with.time_step;
    let mut e = sim.initial_report().unwrap().parts.total();
    let mut top: f64 = 0.0;
    let (mut rejected, mut substeps) = (0, 0);
    for step in 1..=steps {
        let a = sim
            .try_advance()
            .unwrap_or_else(|e| panic!("step {step} failed: {e:?}"));
        rejected += a.rejections.len();
        for r in &a.rejections {
            eprintln!(
                "d={D} step {step}: attempt {} rejected: {}",
                r.attempt, r.reason
            );
        }
        substeps += a.substeps;
        let r = &a.report;
        assert!(
            r.non_finite().is_none(),
            "step {step}: {:?}",
            r.non_finite()
        );
        let e1 = r.parts.total();
        let bound = e + 1e-12 * e.abs();
        assert!(
            e1 + r.w2_step * r.w2_step / (2.0 * h) <= bound,
            "step {step}: E {e} -> {e1}, W^2/2h = {}",
            r.w2_step * r.w2_step / (2.0 * h)
        );
        e = e1;
        let s = sim.total_densities().expect("[steric] is on");
        assert!(s.iter().all(|x| x.is_finite()));
        let worst = v * s.iter().fold(0.0f64, |m, &x| m.max(x));
        assert!(worst < 1.0, "step {step}: max v s_i = {worst}");
        top = top.max(worst);
        if let Some(b) = with.domain.as_box() {
            assert!(sim.cloud.positions.iter().all(|p| b.contains(p)));
        }
    }
    let mut free = Simulation::<D>::new(without).unwrap();
    assert!(free.total_densities().is_none());
    for step in 1..=steps {
        free.advance()
            .unwrap_or_else(|e| panic!("step {step} without the term: {e}"));
    }
    let beyond = packing(&free, v);
    eprintln!(
        "d={D}: with [steric] max v s_i = {top:.4} over {steps} steps ({rejected} rejected \
         attempts, {substeps} sub-steps); without it v s_i reaches {beyond:.3}"
    );
    assert!(
        beyond > 1.0,
        "without the steric term max v s_i = {beyond}: the run would not test crowding"
    );
    (top, beyond)
}

/// 1D, free space: a stiff well (k = 400, so each species' equilibrium is a
/// Gaussian of std 0.05, total peak ~15 after smoothing) against 1/v = 10.
#[test]
fn steric_term_keeps_a_compressed_pair_below_close_packing_1d() {
    let v = 0.1;
    let make = |steric| {
        problem(
            1,
            0.005,
            200,
            0.02,
            400.0,
            vec![0.0],
            InitialSpec::Gaussian {
                mean: vec![0.0],
                std: vec![0.3],
            },
            Domain::Free,
            steric,
        )
    };
    compressed_run::<1>(&make(Some(v)), &make(None), v, 12);
}

/// 2D, the unit box: a well centered on the corner (0, 0) pushes both
/// species into it against two reflecting walls (k = 100: a quarter
/// Gaussian of std 0.1 each, total ~100 at the corner after smoothing)
/// against 1/v = 60.
#[test]
fn steric_term_keeps_a_pair_pushed_into_a_corner_below_close_packing_2d() {
    let v = 1.0 / 60.0;
    let make = |steric| {
        problem(
            2,
            0.01,
            300,
            0.05,
            100.0,
            vec![0.0, 0.0],
            InitialSpec::Uniform {
                lower: vec![0.0, 0.0],
                upper: vec![1.0, 1.0],
            },
            Domain::Box(BoxDomain::insulating(vec![0.0, 0.0], vec![1.0, 1.0])),
            steric,
        )
    };
    compressed_run::<2>(&make(Some(v)), &make(None), v, 10);
}

/// A problem whose initial cloud is already beyond close packing is refused
/// at set-up, through the public API, naming `steric.volume`, the particle
/// and its species, the total density there, 1/v and what to change; just
/// below close packing it is accepted and its total densities are those the
/// message's figure comes from.
#[test]
fn an_initial_cloud_beyond_close_packing_is_refused() {
    let make = |v| {
        problem(
            1,
            0.01,
            100,
            0.05,
            1.0,
            vec![0.0],
            InitialSpec::Uniform {
                lower: vec![0.0],
                upper: vec![1.0],
            },
            Domain::Free,
            Some(v),
        )
    };
    // The densest particle, with a small volume that keeps the cloud legal.
    let mut ok = Simulation::<1>::new(&make(1e-3)).unwrap();
    let s = ok.total_densities().unwrap();
    assert_eq!(s.len(), 200);
    let (i, top) =
        s.iter().copied().enumerate().fold(
            (0, 0.0f64),
            |(j, m), (i, v)| if v > m { (i, v) } else { (j, m) },
        );
    // Two species of mass 1 on [0, 1]: about 2 inside, about 1 at the ends.
    assert!(top > 1.8 && top < 4.0, "{top}");
    assert!(Simulation::<1>::new(&make(0.99 / top)).is_ok());
    for v in [1.0 / top, 2.0 / top] {
        let Err(e) = Simulation::<1>::new(&make(v)) else {
            panic!("v = {v} (v s = {}) was accepted", v * top)
        };
        let jko::Error::Input {
            location, message, ..
        } = &e
        else {
            panic!("not an input error: {e}")
        };
        assert_eq!(location, "steric.volume", "{e}");
        let species = if i < 100 {
            "species[0] (\"plus\")"
        } else {
            "species[1] (\"minus\")"
        };
        for needle in [
            format!("particle {} of {species}", i % 100),
            format!("{top:e}"),
            format!("1/v is {:e}", 1.0 / v),
            "smaller steric.volume".to_string(),
            "wider initial".to_string(),
        ] {
            assert!(message.contains(&needle), "`{needle}` not in: {message}");
        }
        eprintln!("v = {v}: {e}");
    }
}
