//! Backends for the Newtonian pair sum (SPEC §2):
//!
//!   U(x) = sum_{i<j} q_i q_j G_delta(x_i - x_j),
//!   field_i = sum_{j != i} q_j grad G_delta(x_i - x_j) = (1/q_i) dU/dx_i,
//!
//! with G_delta the softened kernel of [`crate::model::green`]. The interaction
//! energy is lambda U and its gradient lambda q_i field_i.
//!
//! In free space: [`direct`], [`sorted1d`] (exact, d = 1) and [`tree`]
//! (multipole), chosen by [`backend`]. In a box (SPEC §7) U is the sum with
//! the box's Green's function G_box = G + (images), over all pairs i, j of
//! its regular part (a charge feels its own images): [`interval`] (d = 1,
//! exact) and [`box_mesh`] (d = 2, 3, particle mesh). Fixed charges (SPEC
//! §8) and the walls' data enter as a fixed potential behind
//! [`ExternalPotential`] (closed forms in 1D, the mesh in a box), or, in
//! free space in d = 2, 3, as fixed charges in the pair sum ([`fixed`]).
//! [`domain_backends`] is the registration for a problem's domain.

pub mod box_mesh;
pub mod direct;
pub mod fixed;
pub mod interval;
pub mod pair_kernel;
pub mod reference;
pub mod sorted1d;
pub mod tree;

pub use direct::DirectSum;

use crate::model::background::Background;
use crate::model::domain::Domain;
use crate::model::interval::Interval;
pub use reference::direct_evaluate;
pub use sorted1d::SortedCoupling1d;
pub use tree::TreeCoupling;

/// A way to evaluate the pair sum and its field.
pub trait CouplingBackend<const D: usize>: Send {
    /// Returns U(x) and overwrites `field` (same length as `x`).
    fn energy_and_field(&mut self, x: &[[f64; D]], q: &[f64], field: &mut [[f64; D]]) -> f64;
    /// What this backend is, with the settings that set its error, for
    /// run.json (`"method = \"auto\""` records what it chose).
    fn describe(&self) -> String;
    /// Forget state kept from earlier calls that changes the result's rounding
    /// (see [`crate::energy::EnergyTerm::reset`]).
    fn reset(&mut self) {}
    /// Which particles' field the caller reads from now on (`None`: all):
    /// those entries must get the bits they would get with `None`, the
    /// others may hold anything; the energy stays whole
    /// ([`crate::energy::FreeEnergy::want`]). The default ignores it.
    fn want(&mut self, _particles: Option<&[u32]>) {}
}

/// A fixed potential the charges feel besides each other (SPEC §7-8):
/// phi_ext = psi_C + phi_walls, the potential of the background charges and
/// the walls' term, computed once for the whole run. The interaction energy
/// gains lambda sum_i q_i phi_ext(X_i) ([`crate::energy::ExternalField`]).
pub trait ExternalPotential<const D: usize>: Send + Sync {
    /// phi_ext(x) and its gradient.
    fn value_and_gradient(&self, x: &[f64; D]) -> (f64, [f64; D]);

    /// Collective under a team (MPI ranks, `util::team`), called by every
    /// member at each evaluation before any value: sum_i q_i phi_ext(x_i)
    /// over every particle, summed in an order of the potential's own that
    /// no team changes, leaving this member ready to evaluate
    /// [`Self::value_and_gradient`] at the particles `wanted` (all of them
    /// for `None`). A potential held in pieces sums by its pieces and
    /// fetches the pieces `wanted` read. `None` (the default): the
    /// potential is whole on every member, and the caller sums.
    fn sum_charges(&mut self, _x: &[[f64; D]], _q: &[f64], _wanted: Option<&[u32]>) -> Option<f64> {
        None
    }
}

/// U = (1/2) sum_i q_i phi_i from per-particle potentials, in a fixed order.
fn half_charge_potential(q: &[f64], phi: &[f64]) -> f64 {
    0.5 * crate::util::parallel::sum_chunks(q.len(), |r| r.map(|i| q[i] * phi[i]).sum())
}

/// The multipole tree (d = 2, 3) as a coupling backend.
pub struct TreeBackend<const D: usize> {
    tree: TreeCoupling<D>,
    softening: f64,
    phi: Vec<f64>,
    /// The particles whose field is read ([`CouplingBackend::want`]).
    wanted: Option<Vec<u32>>,
}

impl<const D: usize> TreeBackend<D> {
    /// A tree backend with softening delta and target relative error `accuracy` of the potential.
    pub fn new(softening: f64, accuracy: f64) -> Self {
        TreeBackend {
            tree: TreeCoupling::new(softening, accuracy),
            softening,
            phi: Vec::new(),
            wanted: None,
        }
    }
}

impl<const D: usize> CouplingBackend<D> for TreeBackend<D> {
    fn energy_and_field(&mut self, x: &[[f64; D]], q: &[f64], field: &mut [[f64; D]]) -> f64 {
        self.phi.resize(x.len(), 0.0);
        0.5 * self.tree.evaluate(x, q, &mut self.phi, field)
    }

    fn describe(&self) -> String {
        let p = self.tree.params();
        format!(
            "multipole tree (order {}, theta {}, leaves of {})",
            p.order, p.theta, p.leaf_size
        )
    }

    /// A refitted tree keeps the topology of the positions it was built at, so
    /// its rounding depends on history: start from a new tree.
    fn reset(&mut self) {
        self.tree = TreeCoupling::with_params(self.softening, self.tree.params())
            .with_team(self.tree.team());
        self.tree.want(self.wanted.as_deref());
    }

    fn want(&mut self, particles: Option<&[u32]>) {
        self.wanted = particles.map(<[u32]>::to_vec);
        self.tree.want(particles);
    }
}

/// The exact sorted O(N log N) sum (d = 1) as a coupling backend.
pub struct SortedBackend {
    sorted: SortedCoupling1d,
    phi: Vec<f64>,
    /// The positions and field as the 1D evaluator takes them.
    x: Vec<[f64; 1]>,
    field: Vec<[f64; 1]>,
}

impl SortedBackend {
    /// A sorted-sum backend with softening delta >= 0.
    pub fn new(softening: f64) -> Self {
        SortedBackend {
            sorted: SortedCoupling1d::new(softening),
            phi: Vec::new(),
            x: Vec::new(),
            field: Vec::new(),
        }
    }
}

/// Implemented for every `D` so that [`backend`] can return it without a
/// cast, but only meaningful for `D = 1`: it sums along the first axis and
/// refuses any other dimension.
impl<const D: usize> CouplingBackend<D> for SortedBackend {
    fn describe(&self) -> String {
        "sorted 1D sum (exact)".into()
    }

    fn energy_and_field(&mut self, x: &[[f64; D]], q: &[f64], field: &mut [[f64; D]]) -> f64 {
        assert!(D == 1, "the sorted sum is for d = 1");
        let n = x.len();
        self.phi.resize(n, 0.0);
        self.x.clear();
        self.x.extend(x.iter().map(|p| [p[0]]));
        self.field.resize(n, [0.0]);
        self.sorted
            .evaluate(&self.x, q, &mut self.phi, &mut self.field);
        for (f, g) in field.iter_mut().zip(&self.field) {
            f[0] = g[0];
        }
        half_charge_potential(q, &self.phi)
    }
}

/// Particle count above which `method = "auto"` uses the tree instead of the
/// direct sum, per dimension: the count where the tree at accuracy 1e-6
/// overtakes the [`DirectSum`] backend on a Gaussian cloud whose charges are
/// a run's (one value per species, species contiguous: in 2D the direct sum
/// then takes one logarithm per group of sources; BENCHMARKS.md, "Coupling
/// crossover"). Below it the direct sum is also the better choice for the
/// optimizer: its energy and field are consistent to rounding, where the
/// tree's 1e-6 error costs the line search evaluations. 1D: not used, the
/// sorted sum is exact and taken at every size (see [`backend`]).
pub const AUTO_CROSSOVER: [usize; 3] = [2_000, 6_000, 30_000];

/// The tree's accuracy when `method = "auto"` takes it for a self-attracting
/// coupling (`strength < 0`: Keller–Segel, gravity), if `coupling.accuracy`
/// asks for less. There the optimizer needs the energy and the field
/// consistent to well below the solver's tolerance: at 1e-6 a 2D
/// Keller–Segel run of 8 000 particles took 68 times the CPU of the same
/// run at 1e-9, its line searches failing on the tree's error (BENCHMARKS.md,
/// "Coupling crossover"); repulsive couplings do not show it.
pub const AUTO_ATTRACTIVE_ACCURACY: f64 = 1e-9;

/// The accuracy the tree backend gets: `c.accuracy`, tightened to
/// [`AUTO_ATTRACTIVE_ACCURACY`] when `"auto"` chooses for a self-attracting
/// coupling (an explicit `method = "tree"` keeps what it asked).
pub fn tree_accuracy(c: &Coupling) -> f64 {
    if c.method == CouplingMethod::Auto && c.strength < 0.0 {
        c.accuracy.min(AUTO_ATTRACTIVE_ACCURACY)
    } else {
        c.accuracy
    }
}

/// The backend for `method` in dimension `D` with `n` particles.
pub fn backend<const D: usize>(
    method: CouplingMethod,
    softening: f64,
    accuracy: f64,
    n: usize,
) -> Box<dyn CouplingBackend<D>> {
    use CouplingMethod::*;
    // In d = 1 the sorted sum is the direct sum, exactly, at O(N log N):
    // every method takes it ([`DirectSum`] stays for the tests that compare).
    let fast = match method {
        _ if D == 1 => true,
        Direct => false,
        Tree => true,
        Auto => n >= AUTO_CROSSOVER[D - 1],
    };
    if !fast {
        return Box::new(DirectSum::<D>::new(softening));
    }
    if D == 1 {
        Box::new(SortedBackend::new(softening))
    } else {
        Box::new(TreeBackend::<D>::new(softening, accuracy))
    }
}

/// The coupling's pair backend and the fixed external potential of a
/// problem's domain and backgrounds (SPEC §7-8): in free space the backend
/// of [`backend`] and, with backgrounds, their potential psi_C; in a box
/// the box's Green's function and phi_ext = psi_C + phi_walls. `None` for
/// the potential when there is nothing fixed to feel (in 2D and 3D, a box
/// whose walls are no sources, without backgrounds: phi_ext = 0, whose
/// solve on the whole mesh would be made and read for nothing). An error
/// says why the box's mesh cannot be built (too many nodes for its
/// softening).
pub fn domain_backends<const D: usize>(
    c: &Coupling,
    domain: &Domain,
    backgrounds: &[Background],
    n: usize,
) -> Result<DomainBackends<D>, String> {
    let bx = domain.as_box();
    if D != 1 {
        if let Some(bx) = bx {
            let mesh = box_mesh::BoxMesh::<D>::new(bx, c.softening)?;
            if backgrounds.is_empty() && !bx.walls_are_sources() {
                return Ok((Box::new(mesh), None));
            }
            let field = mesh.external(backgrounds)?;
            return Ok((Box::new(mesh), Some(Box::new(field))));
        }
        if !backgrounds.is_empty() {
            // Free space: the backgrounds as fixed charges in the pair sum,
            // whose backend is chosen for the particles and charges together.
            let (nodes, charges) = fixed::nodes::<D>(backgrounds, c.softening);
            let free = backend::<D>(c.method, c.softening, tree_accuracy(c), n + nodes.len());
            let with = fixed::WithFixedCharges::new(free, nodes, charges);
            return Ok((Box::new(with), None));
        }
    }
    let free = backend::<D>(c.method, c.softening, tree_accuracy(c), n);
    if bx.is_none() && backgrounds.is_empty() {
        return Ok((free, None));
    }
    let interval = bx.map(|b| Interval::new(b.lower[0], b.upper[0], b.walls[0]));
    let field: Box<dyn ExternalPotential<D>> = Box::new(interval::IntervalField::new(
        interval,
        backgrounds,
        c.softening,
    ));
    let pair: Box<dyn CouplingBackend<D>> = match interval {
        None => free,
        Some(iv) => Box::new(interval::IntervalBackend::new(free, iv)),
    };
    Ok((pair, Some(field)))
}

/// A pair backend and an optional fixed potential ([`domain_backends`]).
pub type DomainBackends<const D: usize> = (
    Box<dyn CouplingBackend<D>>,
    Option<Box<dyn ExternalPotential<D>>>,
);

/// Newtonian coupling: energy (lambda/2) sum_{i != j} q_i q_j G_delta(X_i - X_j).
#[derive(Debug, Clone, PartialEq)]
pub struct Coupling {
    /// lambda: > 0 repulsion of like charges (PNP), < 0 attraction (Keller–Segel, gravity).
    pub strength: f64,
    /// Which backend sums the pairs.
    pub method: CouplingMethod,
    /// Plummer softening delta >= 0 (0 only in d = 1).
    pub softening: f64,
    /// Tree backend only: target relative error of the potential.
    pub accuracy: f64,
}

/// Which backend evaluates the coupling (TOML `coupling.method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CouplingMethod {
    /// The exact O(N^2) direct sum ([`DirectSum`]).
    Direct,
    /// The multipole tree in d = 2, 3, the exact sorted sum in d = 1.
    Tree,
    /// The direct sum below [`AUTO_CROSSOVER`] particles, the fast backend above.
    Auto,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coupling(strength: f64, method: CouplingMethod, accuracy: f64) -> Coupling {
        Coupling {
            strength,
            method,
            softening: 0.05,
            accuracy,
        }
    }

    /// "auto" tightens the tree only for a self-attracting coupling, never
    /// loosens what was asked, and an explicit "tree" keeps its accuracy.
    #[test]
    fn auto_tightens_the_tree_for_attraction_only() {
        use CouplingMethod::*;
        assert_eq!(tree_accuracy(&coupling(-1.0, Auto, 1e-6)), 1e-9);
        assert_eq!(tree_accuracy(&coupling(-1.0, Auto, 1e-12)), 1e-12);
        assert_eq!(tree_accuracy(&coupling(1.0, Auto, 1e-6)), 1e-6);
        assert_eq!(tree_accuracy(&coupling(-1.0, Tree, 1e-6)), 1e-6);
    }

    /// A 2D box feels a fixed potential only when its walls or backgrounds
    /// make one; the plain box's would be 0 at every node.
    #[test]
    fn a_box_without_sources_has_no_external_potential() {
        use crate::model::domain::{BoxDomain, Side, WallCondition};
        let plain = BoxDomain::insulating(vec![0.0; 2], vec![1.0; 2]);
        let c = coupling(1.0, CouplingMethod::Auto, 1e-6);
        let field = |b: &BoxDomain| {
            let (_, field) = domain_backends::<2>(&c, &Domain::Box(b.clone()), &[], 100).unwrap();
            field.is_some()
        };
        assert!(!field(&plain));
        let grounded =
            (plain.clone()).with_wall(0, Side::Lower, WallCondition::Electrode { potential: 0.0 });
        assert!(!field(&grounded));
        let held = plain.with_wall(0, Side::Lower, WallCondition::Electrode { potential: 1.0 });
        assert!(field(&held));
        // The plain box's potential, were it made, is 0 at every node.
        let mesh =
            box_mesh::BoxMesh::<2>::new(&BoxDomain::insulating(vec![0.0; 2], vec![1.0; 2]), 0.05)
                .unwrap();
        let ext = mesh.external(&[]).unwrap();
        for p in [[0.0, 0.0], [0.3, 0.7], [1.0, 0.5]] {
            assert_eq!(ext.value_and_gradient(&p), (0.0, [0.0; 2]));
        }
    }
}
