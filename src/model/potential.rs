//! External potentials U_k (SPEC §3), each with its value and gradient.

/// A confining (or any) external potential U: R^d -> R.
pub trait Potential<const D: usize>: Send + Sync {
    fn value(&self, x: &[f64; D]) -> f64;
    fn gradient(&self, x: &[f64; D]) -> [f64; D];
}

/// U = 0.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPotential;

impl<const D: usize> Potential<D> for NoPotential {
    fn value(&self, _: &[f64; D]) -> f64 {
        0.0
    }
    fn gradient(&self, _: &[f64; D]) -> [f64; D] {
        [0.0; D]
    }
}

/// U = sum_a k_a/2 (x_a - c_a)^2 (per-axis stiffness k_a >= 0).
#[derive(Debug, Clone, Copy)]
pub struct Quadratic<const D: usize> {
    pub center: [f64; D],
    pub stiffness: [f64; D],
}

impl<const D: usize> Potential<D> for Quadratic<D> {
    fn value(&self, x: &[f64; D]) -> f64 {
        (0..D)
            .map(|a| 0.5 * self.stiffness[a] * (x[a] - self.center[a]).powi(2))
            .sum()
    }
    fn gradient(&self, x: &[f64; D]) -> [f64; D] {
        std::array::from_fn(|a| self.stiffness[a] * (x[a] - self.center[a]))
    }
}

/// U = depth (|x - c|^2 / r^2 - 1)^2: two wells at c ± r in 1D, a ring in 2D,
/// a shell in 3D, with a barrier of height `depth` at the centre.
#[derive(Debug, Clone, Copy)]
pub struct DoubleWell<const D: usize> {
    pub center: [f64; D],
    pub radius: f64,
    pub depth: f64,
}

impl<const D: usize> Potential<D> for DoubleWell<D> {
    fn value(&self, x: &[f64; D]) -> f64 {
        let s = (0..D).map(|a| (x[a] - self.center[a]).powi(2)).sum::<f64>()
            / (self.radius * self.radius);
        self.depth * (s - 1.0).powi(2)
    }
    fn gradient(&self, x: &[f64; D]) -> [f64; D] {
        let r2 = self.radius * self.radius;
        let s = (0..D).map(|a| (x[a] - self.center[a]).powi(2)).sum::<f64>() / r2;
        // d/dx depth (s - 1)^2 = 4 depth (s - 1) (x - c) / r^2
        let f = 4.0 * self.depth * (s - 1.0) / r2;
        std::array::from_fn(|a| f * (x[a] - self.center[a]))
    }
}

fn array<const D: usize>(v: &[f64]) -> [f64; D] {
    std::array::from_fn(|a| v[a])
}

/// External potential U_k (SPEC §3; the README lists the kinds).
#[derive(Debug, Clone, PartialEq)]
pub enum PotentialSpec {
    None,
    /// U = sum_a stiffness_a/2 (x_a - center_a)^2.
    Quadratic {
        center: Vec<f64>,
        stiffness: Vec<f64>,
    },
    /// U = depth (|x - center|^2 / radius^2 - 1)^2.
    DoubleWell {
        center: Vec<f64>,
        radius: f64,
        depth: f64,
    },
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
