//! External potentials U_k (SPEC §3), each with its value and gradient.
//!
//! One file per kind holds the kind's type, its `impl Potential`, the parsing
//! of its `potential = { kind = "...", ... }` table into its [`PotentialSpec`]
//! variant, and a finite-difference test of its gradient. This file holds
//! the trait, the settings type, and the registration of the kinds
//! (`KINDS` for parsing, [`from_spec`] for building): adding a kind
//! touches its file and this one (and the problem's vector-length check in
//! `stepper::problem`, if the kind has vectors).

use crate::error::Result;
use crate::util::checks::{self, Checker};

mod double_well;
mod none;
mod quadratic;

pub use double_well::DoubleWell;
pub use none::NoPotential;
pub use quadratic::Quadratic;

/// A confining (or any) external potential U: R^d -> R.
pub trait Potential<const D: usize>: Send + Sync {
    /// U(x).
    fn value(&self, x: &[f64; D]) -> f64;
    /// grad U(x).
    fn gradient(&self, x: &[f64; D]) -> [f64; D];
}

/// External potential U_k (SPEC §3; the README lists the kinds).
#[derive(Debug, Clone, PartialEq)]
pub enum PotentialSpec {
    /// U = 0 (`kind = "none"`, and a species without a `potential`).
    None,
    /// U = sum_a stiffness_a/2 (x_a - center_a)^2.
    Quadratic {
        /// c, one component per axis.
        center: Vec<f64>,
        /// k_a >= 0, one per axis.
        stiffness: Vec<f64>,
    },
    /// U = depth (|x - center|^2 / radius^2 - 1)^2.
    DoubleWell {
        /// c, one component per axis.
        center: Vec<f64>,
        /// r > 0.
        radius: f64,
        /// The barrier height >= 0.
        depth: f64,
    },
}

impl PotentialSpec {
    /// Whether U grows without bound in every direction (so a species in it
    /// has a Gibbs state in free space): a quadratic with every stiffness
    /// > 0, a double well of positive depth.
    pub fn confines(&self) -> bool {
        match self {
            PotentialSpec::None => false,
            PotentialSpec::Quadratic { stiffness, .. } => stiffness.iter().all(|k| *k > 0.0),
            PotentialSpec::DoubleWell { depth, radius, .. } => *depth > 0.0 && *radius > 0.0,
        }
    }
}

/// Parses the table of one kind (checked, errors naming `key`).
type Parse = fn(&Checker, &str, &toml::Value) -> Result<PotentialSpec>;

/// The kinds of potential, by the name of their `kind` key, in the order
/// the error for an unknown kind lists them.
const KINDS: [(&str, Parse); 3] = [
    ("none", none::parse),
    ("quadratic", quadratic::parse),
    ("double_well", double_well::parse),
];

/// Parse and check the `potential = { kind = "...", ... }` table `v` at `key`.
pub(crate) fn parse(c: &Checker, key: &str, v: &toml::Value) -> Result<PotentialSpec> {
    let parse = checks::kind_entry(c, key, v, "potential", &KINDS)?;
    parse(c, key, v)
}

/// Build the potential a scenario asks for (vectors already checked to have length D).
pub fn from_spec<const D: usize>(spec: &PotentialSpec) -> Box<dyn Potential<D>> {
    match spec {
        PotentialSpec::None => Box::new(NoPotential),
        PotentialSpec::Quadratic { center, stiffness } => Box::new(Quadratic::<D> {
            center: array(center),
            stiffness: array(stiffness),
        }),
        PotentialSpec::DoubleWell {
            center,
            radius,
            depth,
        } => Box::new(DoubleWell::<D> {
            center: array(center),
            radius: *radius,
            depth: *depth,
        }),
    }
}

fn array<const D: usize>(v: &[f64]) -> [f64; D] {
    std::array::from_fn(|a| v[a])
}

/// The potential of the table `text` in dimension D, through the parsing and
/// [`from_spec`], for the unit tests of the kinds.
#[cfg(test)]
fn parsed<const D: usize>(text: &str) -> Box<dyn Potential<D>> {
    let c = checks::test_checker(D);
    from_spec::<D>(&parse(&c, "potential", &checks::table(text)).unwrap())
}

/// Asserts that the gradient of `u` at `x` matches central differences of
/// its value, to `tol` times the larger of 1 and the gradient's largest component.
#[cfg(test)]
fn assert_gradient<const D: usize>(u: &dyn Potential<D>, x: [f64; D], tol: f64) {
    let h = 1e-6;
    let g = u.gradient(&x);
    let scale = g.iter().fold(1.0_f64, |m, v| m.max(v.abs()));
    for a in 0..D {
        let (mut xp, mut xm) = (x, x);
        xp[a] += h;
        xm[a] -= h;
        let fd = (u.value(&xp) - u.value(&xm)) / (2.0 * h);
        assert!(
            (fd - g[a]).abs() <= tol * scale,
            "axis {a} at {x:?}: gradient {} vs central difference {fd}",
            g[a]
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_kind_lists_the_registered_ones() {
        let c = checks::test_checker(1);
        let e = parse(
            &c,
            "species[0].potential",
            &checks::table("kind = \"cubic\""),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.toml: species[0].potential.kind: unknown potential kind \"cubic\"; \
             expected \"none\", \"quadratic\" or \"double_well\""
        );
    }
}
