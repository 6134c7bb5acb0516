//! The particle free energy E_N of SPEC §2, as a sum of terms behind one
//! small trait. Each term returns its value and adds its gradient, so a new
//! physical effect is a new type, not a change to the stepper.

pub mod diffusion;
pub mod external;
pub mod interaction;
pub mod potential;
pub mod steric;

pub use diffusion::Diffusion;
pub use external::ExternalField;
pub use interaction::Interaction;
pub use potential::PotentialEnergy;
pub use steric::StericEnergy;

use crate::util::morton::Frame;

/// Which column of energy.csv a term contributes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Part {
    /// The diffusion term sum_k D_k sum_i w_i f_m(rho_i).
    Diffusion,
    /// The external potential term sum_k sum_i w_i U_k(X_i).
    Potential,
    /// The Newtonian interaction term (lambda/2) sum_{i != j} q_i q_j G_delta(X_i - X_j).
    Interaction,
    /// The solvent entropy of finite ion size (SPEC §10). It is an entropy,
    /// so energy.csv counts it in the diffusion column (README), keeping
    /// energy = diffusion + potential + interaction.
    Steric,
}

/// The three parts of the free energy (the columns of energy.csv).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EnergyParts {
    /// The diffusion part.
    pub diffusion: f64,
    /// The external potential part.
    pub potential: f64,
    /// The interaction part.
    pub interaction: f64,
}

impl EnergyParts {
    /// E = diffusion + potential + interaction.
    pub fn total(&self) -> f64 {
        self.diffusion + self.potential + self.interaction
    }

    fn add(&mut self, part: Part, v: f64) {
        match part {
            Part::Diffusion | Part::Steric => self.diffusion += v,
            Part::Potential => self.potential += v,
            Part::Interaction => self.interaction += v,
        }
    }
}

/// One term of the free energy, a function of all particle positions.
///
/// `&mut self` lets a term keep buffers and neighbour lists between calls.
/// The value must depend on `x` only, up to the term's stated accuracy; a
/// term whose rounding depends on earlier calls (a refitted tree) returns to
/// a state that depends on nothing in [`reset`](EnergyTerm::reset).
pub trait EnergyTerm<const D: usize>: Send {
    /// The column of energy.csv the term's value adds to.
    fn part(&self) -> Part;
    /// Returns E(x) and *adds* grad E(x) to `grad`.
    fn value_and_gradient(&mut self, x: &[[f64; D]], grad: &mut [[f64; D]]) -> f64;
    /// Computes what the next [`value_and_gradient`](EnergyTerm::value_and_gradient)
    /// at the same `x` needs without touching `grad`, so that it can run
    /// beside another term ([`FreeEnergy::evaluate`]); that call then only
    /// adds. A term with nothing worth running apart does nothing.
    fn prepare(&mut self, _x: &[[f64; D]]) {}
    /// Whether [`prepare`](EnergyTerm::prepare) does anything (else no
    /// thread is woken for it).
    fn prepares(&self) -> bool {
        false
    }
    /// Drop state carried over from earlier calls that can change the result's
    /// last bits (called at the start of every JKO step).
    fn reset(&mut self) {}
    /// Which particles' gradient the caller reads, until the next call:
    /// `Some(p)` (ascending particle indices) or `None` (all of them). See
    /// [`FreeEnergy::want`]. A term that ignores it adds every entry, which
    /// is always correct.
    fn want(&mut self, _particles: Option<&[u32]>) {}
    /// The Morton frame of the JKO step under way, or `None` outside one
    /// ([`FreeEnergy::frame`]). A term whose sums follow a Morton order
    /// passes it to them; the default ignores it.
    fn frame(&mut self, _frame: Option<&Frame<D>>) {}
    /// Adds to `cost[i]` the work the last evaluation spent on particle i
    /// on this member's behalf, in pair evaluations, the same numbers on
    /// every member ([`FreeEnergy::costs`]); collective under a team. The
    /// default adds nothing: a term whose work is even per particle, or
    /// not divided by the step's layout.
    fn add_costs(&self, _cost: &mut [f64]) {}
    /// The method computing the term, when a setting chooses among several
    /// (the coupling's backend), for run.json; `None` for a term computed one
    /// way.
    fn method(&self) -> Option<String> {
        None
    }
}

/// E_N = sum of its terms.
pub struct FreeEnergy<const D: usize> {
    terms: Vec<Box<dyn EnergyTerm<D>>>,
    /// The particles whose gradient the caller reads (`None`: all).
    wanted: Option<Vec<u32>>,
}

impl<const D: usize> FreeEnergy<D> {
    /// E_N = sum of `terms`.
    pub fn new(terms: Vec<Box<dyn EnergyTerm<D>>>) -> Self {
        FreeEnergy {
            terms,
            wanted: None,
        }
    }

    /// Which particles' gradient the caller of [`evaluate`](Self::evaluate)
    /// reads from now on: `Some(p)`, ascending particle indices, or `None`,
    /// all of them (the default).
    ///
    /// With `Some(p)`, an evaluation must still return E(x) whole and add
    /// the exact gradient of the particles in `p` (the bits it would add
    /// with `None`), but the other particles' entries may hold anything,
    /// finite or not. A member of a team dividing a JKO step reads only the
    /// particles of its range of the optimizer's vectors
    /// ([`crate::stepper::layout`]); a divided term can then send each
    /// member the values of those particles only, not every value to every
    /// member.
    pub fn want(&mut self, particles: Option<Vec<u32>>) {
        for t in &mut self.terms {
            t.want(particles.as_deref());
        }
        self.wanted = particles;
    }

    /// The frame in which the JKO step under way orders the particles
    /// (its vectors' layout, [`crate::stepper::layout`]), `None` outside a
    /// step. The neighbour lists then key their slots in it, so that each
    /// species' order is the step's restricted to that species: a member's
    /// range of the step's vectors is then a range of every list's slots,
    /// and the lists' ownership can follow it. A function of X^n, so the
    /// bits stay those of any team size.
    pub fn frame(&mut self, frame: Option<Frame<D>>) {
        for t in &mut self.terms {
            t.frame(frame.as_ref());
        }
    }

    /// The work of the last evaluation per particle, in pair evaluations,
    /// where some term reports it ([`EnergyTerm::add_costs`]; `None`
    /// where none does): the same numbers on every member of a team, from
    /// which a JKO step cuts its vectors ([`crate::stepper::step`]).
    /// Collective under a team.
    pub fn costs(&self, n: usize) -> Option<Vec<f64>> {
        let mut cost = vec![0.0; n];
        self.terms.iter().for_each(|t| t.add_costs(&mut cost));
        cost.iter().any(|&c| c > 0.0).then_some(cost)
    }

    /// The particles set by [`want`](Self::want) (`None`: all).
    pub fn wanted(&self) -> Option<&[u32]> {
        self.wanted.as_deref()
    }

    /// Takes the wanted set away (every term then computes every entry),
    /// returning it for a later [`want`](Self::want).
    pub fn take_wanted(&mut self) -> Option<Vec<u32>> {
        let wanted = self.wanted.take();
        if wanted.is_some() {
            self.want(None);
        }
        wanted
    }

    /// The methods of the terms that name one ([`EnergyTerm::method`]).
    pub fn methods(&self) -> Vec<String> {
        self.terms.iter().filter_map(|t| t.method()).collect()
    }

    /// Returns the parts of E(x) and overwrites `grad` with grad E(x).
    ///
    /// On a single process the later terms' [`EnergyTerm::prepare`] (the
    /// coupling's sums) runs beside the first term (the densities), each on
    /// its own data; then every term adds to `grad` in order, so the bits
    /// are those of evaluating the terms one after the other. Under MPI the
    /// terms run in order ([`crate::util::team::alone`]).
    pub fn evaluate(&mut self, x: &[[f64; D]], grad: &mut [[f64; D]]) -> EnergyParts {
        grad.fill([0.0; D]);
        let mut parts = EnergyParts::default();
        let apart = self.terms.iter().skip(1).any(|t| t.prepares()) && crate::util::team::alone();
        let mut later = &mut self.terms[..];
        if apart {
            let (first, rest) = later.split_at_mut(1);
            let (v, ()) = rayon::join(
                || first[0].value_and_gradient(x, grad),
                || rest.iter_mut().for_each(|t| t.prepare(x)),
            );
            parts.add(first[0].part(), v);
            later = rest;
        }
        for t in later {
            let v = t.value_and_gradient(x, grad);
            parts.add(t.part(), v);
        }
        parts
    }

    /// Reset every term (see [`EnergyTerm::reset`]).
    pub fn reset(&mut self) {
        self.terms.iter_mut().for_each(|t| t.reset());
    }

    /// The terms, in evaluation order (the driver's memory check and tests inspect them).
    pub fn terms_mut(&mut self) -> &mut [Box<dyn EnergyTerm<D>>] {
        &mut self.terms
    }
}
