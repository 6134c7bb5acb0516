//! Events of a run (events.csv): what the optimizer had to do and what the
//! physics did, reported instead of crashing or silently going on.
//!
//! Numerical events: a rejected step attempt (then retried as smaller
//! sub-steps), a step accepted at the iteration cap, a step no step size could
//! make. Physical events, checked after every accepted step:
//!
//! * **collapse**: a species that attracts itself (lambda z_k^2 < 0) has
//!   contracted to a root-mean-square radius below its kernel bandwidth:
//!   the blob discretization no longer resolves it (in 2D with m = 1 this is
//!   the Keller–Segel blow-up above the critical mass 8 pi D_k / (|lambda| z_k^2),
//!   which is reported at step 0 as `supercritical_mass`);
//! * **escape**: a particle is farther from its species' initial mean than
//!   [`ESCAPE_FACTOR`] times the initial spread (rms radius, or the bandwidth
//!   if larger) — a runaway, usually of a too-large step or softening too small;
//! * **outside_grid**: with a `[grid]` section, a particle has left the grid
//!   box, so a comparison with the Eulerian run misses its mass.
//!
//! Each physical event is reported once per species (the first step it
//! happens), so a long run cannot flood the file.

use crate::io::scenario::Scenario;
use crate::particles::Cloud;

/// Distance, in initial spreads, beyond which a particle has escaped.
pub const ESCAPE_FACTOR: f64 = 1e3;

/// rms radius / bandwidth below which a self-attracting species has collapsed.
pub const COLLAPSE_RATIO: f64 = 1.0;

/// What an event reports (the `kind` column of events.csv).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventKind {
    /// An attempt at a step failed and was thrown away (value: its sub-step size).
    StepRejected,
    /// A step stopped at the iteration cap but lowered the objective (value: gradient norm).
    IterationCap,
    /// No step size worked; the run ended (value: the smallest sub-step tried).
    StepFailed,
    /// 2D, m = 1, attractive: mass above the Keller–Segel threshold (value: M / M_c).
    SupercriticalMass,
    /// value: rms radius / bandwidth.
    Collapse,
    /// value: number of particles beyond the escape radius.
    Escape,
    /// value: number of particles outside the grid box.
    OutsideGrid,
    /// `jko equilibrium` stopped without reaching its tolerance (value: the
    /// last ||grad E||_w); the files hold the last iterate as step 1.
    EquilibriumNotReached,
}

impl EventKind {
    /// The name written to the `kind` column of events.csv.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::StepRejected => "step_rejected",
            EventKind::IterationCap => "iteration_cap",
            EventKind::StepFailed => "step_failed",
            EventKind::SupercriticalMass => "supercritical_mass",
            EventKind::Collapse => "collapse",
            EventKind::Escape => "escape",
            EventKind::OutsideGrid => "outside_grid",
            EventKind::EquilibriumNotReached => "equilibrium_not_reached",
        }
    }
}

/// One row of events.csv.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The step the event happened at.
    pub step: u64,
    /// Simulated time at that step.
    pub time: f64,
    /// What happened.
    pub kind: EventKind,
    /// The species concerned, `None` for the whole run.
    pub species: Option<String>,
    /// The figure the kind defines (see [`EventKind`]).
    pub value: f64,
    /// A sentence for the user.
    pub message: String,
}

/// What the watch keeps of each species from step 0.
struct Watched {
    name: String,
    mean0: Vec<f64>,
    escape_radius: f64,
    bandwidth: f64,
    self_attracting: bool,
}

/// Checks the physical events after each accepted step.
pub struct PhysicalWatch {
    species: Vec<Watched>,
    grid: Option<(Vec<f64>, Vec<f64>)>,
}

/// Mass-weighted mean and rms radius of a block of particles.
fn mean_and_radius<const D: usize>(x: &[[f64; D]], w: &[f64]) -> ([f64; D], f64) {
    let m: f64 = w.iter().sum();
    let mut mean = [0.0; D];
    for (xi, wi) in x.iter().zip(w) {
        for a in 0..D {
            mean[a] += wi * xi[a];
        }
    }
    mean.iter_mut().for_each(|v| *v /= m);
    let var: f64 = x
        .iter()
        .zip(w)
        .map(|(xi, wi)| wi * (0..D).map(|a| (xi[a] - mean[a]).powi(2)).sum::<f64>())
        .sum::<f64>()
        / m;
    (mean, var.sqrt())
}

impl PhysicalWatch {
    /// Set up from the initial cloud (step 0) and the bandwidths.
    pub fn new<const D: usize>(s: &Scenario, initial: &Cloud<D>, bandwidths: &[f64]) -> Self {
        let lambda = s.coupling.strength;
        let species = initial
            .blocks
            .iter()
            .zip(bandwidths)
            .map(|(b, &eps)| {
                let r = b.range.clone();
                let (mean, radius) =
                    mean_and_radius(&initial.positions[r.clone()], &initial.weights[r]);
                Watched {
                    name: b.name.clone(),
                    mean0: mean.to_vec(),
                    escape_radius: ESCAPE_FACTOR * radius.max(eps),
                    bandwidth: eps,
                    self_attracting: lambda * b.charge * b.charge < 0.0,
                }
            })
            .collect();
        let grid = s
            .grid
            .as_ref()
            .map(|g| (g.lower().to_vec(), g.upper().to_vec()));
        PhysicalWatch { species, grid }
    }

    /// Events known at step 0: a supercritical Keller–Segel mass.
    pub fn initial_events<const D: usize>(&self, s: &Scenario, cloud: &Cloud<D>) -> Vec<Event> {
        let mut out = Vec::new();
        if D != 2 {
            return out;
        }
        for (w, b) in self.species.iter().zip(&cloud.blocks) {
            if !w.self_attracting || b.exponent != 1.0 || b.diffusion <= 0.0 {
                continue;
            }
            let critical = 8.0 * std::f64::consts::PI * b.diffusion
                / (s.coupling.strength.abs() * b.charge * b.charge);
            if b.mass > critical {
                out.push(Event {
                    step: 0,
                    time: 0.0,
                    kind: EventKind::SupercriticalMass,
                    species: Some(w.name.clone()),
                    value: b.mass / critical,
                    message: format!(
                        "mass {:.6e} exceeds the Keller-Segel critical mass 8 pi D/(|lambda| z^2) = {critical:.6e}: expect collapse",
                        b.mass
                    ),
                });
            }
        }
        out
    }

    /// Physical events after step `step`; `reported` holds the keys
    /// (`kind:species`) already reported and receives the new ones.
    pub fn check<const D: usize>(
        &self,
        step: u64,
        time: f64,
        cloud: &Cloud<D>,
        reported: &mut Vec<String>,
    ) -> Vec<Event> {
        let mut out = Vec::new();
        let mut report = |kind: EventKind, w: &Watched, value: f64, message: String| {
            let key = format!("{}:{}", kind.name(), w.name);
            if !reported.contains(&key) {
                reported.push(key);
                out.push(Event {
                    step,
                    time,
                    kind,
                    species: Some(w.name.clone()),
                    value,
                    message,
                });
            }
        };
        for (w, b) in self.species.iter().zip(&cloud.blocks) {
            let r = b.range.clone();
            let x = &cloud.positions[r.clone()];
            if w.self_attracting {
                let (_, radius) = mean_and_radius(x, &cloud.weights[r]);
                if radius < COLLAPSE_RATIO * w.bandwidth {
                    report(
                        EventKind::Collapse,
                        w,
                        radius / w.bandwidth,
                        format!(
                            "rms radius {radius:.3e} fell below the kernel bandwidth {:.3e}: the species has collapsed beyond what the particles resolve",
                            w.bandwidth
                        ),
                    );
                }
            }
            let r2 = w.escape_radius * w.escape_radius;
            let escaped = x
                .iter()
                .filter(|xi| (0..D).map(|a| (xi[a] - w.mean0[a]).powi(2)).sum::<f64>() > r2)
                .count();
            if escaped > 0 {
                report(
                    EventKind::Escape,
                    w,
                    escaped as f64,
                    format!(
                        "{escaped} particle(s) farther than {:.3e} from the initial mean; try a smaller time_step or a larger softening",
                        w.escape_radius
                    ),
                );
            }
            if let Some((lo, hi)) = &self.grid {
                let outside = x
                    .iter()
                    .filter(|xi| (0..D).any(|a| xi[a] < lo[a] || xi[a] > hi[a]))
                    .count();
                if outside > 0 {
                    report(
                        EventKind::OutsideGrid,
                        w,
                        outside as f64,
                        format!(
                            "{outside} particle(s) outside the [grid] box; the Eulerian run cannot hold this mass"
                        ),
                    );
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(extra: &str) -> Scenario {
        let text = format!(
            r#"
dimension = 2
time_step = 0.01
steps = 1
{extra}
[[species]]
name = "u"
particles = 100
initial = {{ kind = "gaussian", mean = [1.0, 0.0], std = 0.5 }}
"#
        );
        Scenario::from_toml(&text, std::path::Path::new("t.toml")).unwrap()
    }

    /// One particle thrown far away is an escape, reported once; inside the
    /// radius nothing is reported.
    #[test]
    fn escape_is_reported_once_per_species() {
        let s = scenario("");
        let mut cloud = Cloud::<2>::sample(&s.species, s.seed, &s.path).unwrap();
        let watch = PhysicalWatch::new(&s, &cloud, &[0.1]);
        let (_, radius) = mean_and_radius(&cloud.positions, &cloud.weights);
        let mut reported = Vec::new();
        cloud.positions[7] = [1.0 + 0.99 * ESCAPE_FACTOR * radius, 0.0];
        assert!(watch.check(1, 0.01, &cloud, &mut reported).is_empty());
        cloud.positions[7] = [1.0 + 1.01 * ESCAPE_FACTOR * radius, 0.0];
        let ev = watch.check(2, 0.02, &cloud, &mut reported);
        assert_eq!(ev.len(), 1);
        assert_eq!(
            (ev[0].kind, ev[0].step, ev[0].value),
            (EventKind::Escape, 2, 1.0)
        );
        assert!(watch.check(3, 0.03, &cloud, &mut reported).is_empty());
        assert_eq!(reported, ["escape:u"]);
    }

    /// With a [grid], a particle leaving the box is reported; no collapse
    /// check without self-attraction, however small the cloud.
    #[test]
    fn leaving_the_grid_is_reported() {
        let s = scenario("[grid]\nlower = [-3.0, -3.0]\nupper = [3.0, 3.0]\ncells = 10");
        let mut cloud = Cloud::<2>::sample(&s.species, s.seed, &s.path).unwrap();
        let watch = PhysicalWatch::new(&s, &cloud, &[0.1]);
        let mut reported = Vec::new();
        assert!(watch.check(1, 0.01, &cloud, &mut reported).is_empty());
        cloud.positions[3] = [3.5, 0.0];
        cloud.positions[4] = [0.0, -3.5];
        let ev = watch.check(2, 0.02, &cloud, &mut reported);
        assert_eq!(ev.len(), 1);
        assert_eq!((ev[0].kind, ev[0].value), (EventKind::OutsideGrid, 2.0));
        cloud.positions.iter_mut().for_each(|x| *x = [1.0, 0.0]);
        assert!(watch.check(3, 0.03, &cloud, &mut reported).is_empty());
    }
}
