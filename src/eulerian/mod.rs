//! Eulerian (finite-volume) reference solver of the multi-species gradient flow of SPEC §1:
//!
//! ```text
//!   d/dt rho_k = div( D_k grad rho_k^m_k + rho_k grad(U_k + lambda z_k psi) ),
//!   psi = G * q,  q = sum_k z_k rho_k,  G the free-space Newtonian kernel of -Laplace,
//! ```
//!
//! on a box with zero-flux walls, d = 1, 2, 3, any number of species.
//!
//! * Unknowns: cell averages rho_{k,i} >= 0 (storage: row-major, x fastest).
//! * psi in free space (SPEC §6): exact potential of the piecewise-constant charge at the
//!   cell centers, by a zero-padded FFT convolution with the cell-integrated kernel
//!   ([`poisson`]); the grid is only where the densities live.
//! * psi in a `[domain]` box (SPEC §7, [`Electrostatics::walls`]): the grid is the box and
//!   psi solves -Laplace psi = q + C with each wall's condition (electrode psi = V,
//!   insulating d psi/d nu = sigma), by the finite-volume solve of [`box_poisson`]:
//!   psi = G q_m + psi_ext, G the discrete G_box, psi_ext = G (C + b) = psi_C + phi_walls.
//!   With no electrode psi has zero mean over the box (see [`box_poisson`]).
//! * Background charges C (SPEC §8, [`Electrostatics::background`], cell averages from
//!   [`background`]), in free space or in a box: psi_C = G C is computed once; C enters
//!   psi and the energy, never the dynamics of its own (it does not move).
//! * Fluxes ([`flux`]): Scharfetter–Gummel for m = 1 with D > 0; otherwise the upwind flux
//!   in the variational derivative xi = D f_m'(rho) + U + lambda z psi with a piecewise
//!   linear, monotonized-central-limited reconstruction (Bailo–Carrillo–Hu). Both make the
//!   semi-discrete energy non-increasing and keep the flux form (exact mass conservation).
//! * Time: explicit SSP-RK2 (Heun), sub-steps dt = cfl / max_i rate_i (default cfl 0.8),
//!   where rate_i bounds the outflow of cell i per unit mass (positivity of each Euler
//!   stage needs dt * rate_i <= 1) and, for m > 1, the explicit-diffusion stability rate
//!   sum_a 2 D m rho^(m-1) / h_a^2; a second stage that would break dt * rate <= 1 makes the
//!   sub-step restart with a smaller dt. Densities therefore stay non-negative exactly.
//!   The scheme is explicit, so a stiff problem (a steep potential, strong coupling, fine
//!   cells) needs many sub-steps: one step takes at most [`MAX_SUBSTEPS`] of them (settable,
//!   [`EulerianSolver::set_max_substeps`]) and fails with [`EulerianError::TooManySubsteps`]
//!   beyond, or as soon as [`MAX_SUBSTEPS`] / 100 sub-steps are done and the current dt
//!   says the rest of the step would exceed the limit.
//! * Discrete energy: E = sum_k [D_k sum_i F_m(rho_{k,i}) + sum_i rho_{k,i} U_k(x_i)] dV
//!   plus (lambda/2) sum_i q_i (G q)_i dV + lambda sum_i q_i psi_ext_i dV, F_1(r) = r log r,
//!   F_m(r) = r^m/(m-1), q the mobile charge (SPEC §7; the constant self-energy of C and
//!   the walls left out). G is symmetric, so the derivative of the interaction in
//!   rho_{k,i} is lambda z_k psi_i dV: the flux's potential, which makes E non-increasing.
//!   With no background and no box psi_ext is absent and the energy is the free-space one.
//! * Finite ion size (SPEC §10, [`EulerianSolver::with_steric`]): with a `[steric]` term every
//!   species' chemical potential gains mu_st(s_i) = -T (log(1 - v s_i) + 1), s_i =
//!   sum_k rho_{k,i} the total density of cell i. In the fluxes it is added to the drift
//!   potential of every species: phi = U + lambda z psi + mu_st(s) in the
//!   Scharfetter–Gummel flux (so a face flux is zero exactly when rho e^{phi/D} is equal
//!   across it), xi = D f_m'(rho) + U + lambda z psi + mu_st(s) in the upwind flux. phi (or
//!   xi) is then again the variational derivative of the discrete energy, so the face-by-face
//!   sign property and dE/dt <= 0 hold as before. The energy gains
//!   sum_i (T/v)(1 - v s_i) log(1 - v s_i) dV, counted in the `diffusion` part (the solvent's
//!   entropy). The explicit sub-step also respects the steric cross-diffusion: each face adds
//!   the rate T v s / (1 - v s) / h^2 (s the larger total density of its two cells: the
//!   effective diffusion of d/dt s = div(s T v/(1 - v s) grad s) + ...) to the rate that sets
//!   dt, and a stage that would reach v s >= 1 in any cell is refused like one that loses
//!   positivity (the sub-step restarts with half the dt), so no state with v s >= 1 is ever
//!   produced; an initial state with v s >= 1 is refused. Without `[steric]` nothing of this
//!   runs (same operations, same bytes).
//! * Equilibrium ([`equilibrium`]): the stationary equations of this scheme (every face flux
//!   zero, masses fixed) solved by Newton's method, `jko equilibrium --grid`.

pub mod background;
pub mod box_poisson;
pub mod equilibrium;
pub mod error;
pub mod flux;
pub mod grid;
pub mod initial;
pub mod poisson;
pub mod run;

pub use crate::util::grid::Grid;
pub use background::background_cells;
pub use box_poisson::BoxPoisson;
pub use equilibrium::{
    EquilibriumOptions, EquilibriumSummary, GridEquilibrium, equilibrium_to_dir, solve_equilibrium,
    solve_grid_equilibrium,
};
pub use error::EulerianError;
pub use initial::{
    bin_particles, gaussian_cell_averages, normal_interval_probability,
    restricted_gaussian_cell_averages, uniform_cell_averages,
};
pub use poisson::{FreeSpacePoisson, cell_integrated_kernel, newton_kernel};

use crate::model::domain::WallCondition;
use crate::model::steric::Steric;
use rayon::prelude::*;

/// A potential U(x), x of length d.
pub type PotentialFn = Box<dyn Fn(&[f64]) -> f64 + Send + Sync>;

/// One species: its law's parameters and initial cell averages.
pub struct EulerianSpecies {
    /// The species' name (the `species` column of the outputs).
    pub name: String,
    /// z_k (dimensionless sign/size of the charge).
    pub charge: f64,
    /// D_k >= 0; 0 means no diffusion term at all.
    pub diffusion: f64,
    /// m_k >= 1 (1: linear diffusion, F = rho log rho; m > 1: F = rho^m/(m-1)).
    pub exponent: f64,
    /// U_k(x), x of length d; evaluated once at every cell center.
    pub potential: PotentialFn,
    /// Initial cell-average densities, row-major with x fastest, length prod(cells).
    pub initial: Vec<f64>,
}

/// The whole problem: grid, species, and the coupling strength lambda
/// (lambda > 0: like charges repel; lambda < 0: attraction).
pub struct EulerianProblem {
    /// The box and its cells.
    pub grid: Grid,
    /// The species, in output order.
    pub species: Vec<EulerianSpecies>,
    /// lambda.
    pub coupling_strength: f64,
}

/// What psi sees besides the species (SPEC §7-8); the default is free space with no
/// background, today's problem.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Electrostatics {
    /// The box's walls, `walls[axis] = [lower, upper]` (the grid is the box); `None`:
    /// free space.
    pub walls: Option<Vec<[WallCondition; 2]>>,
    /// Background charge density C, cell averages (charge per unit volume) in the grid's
    /// storage order; `None`: no background.
    pub background: Option<Vec<f64>>,
}

/// The Green's operator of psi: free-space convolution or the box's solve.
enum Green {
    Free(poisson::FreeSpacePoisson),
    Box(box_poisson::BoxPoisson),
}

impl Green {
    fn solve(&self, q: &[f64]) -> Vec<f64> {
        match self {
            Green::Free(p) => p.solve(q),
            Green::Box(p) => p.solve(q),
        }
    }
}

/// What one call of [`EulerianSolver::advance`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    /// Accepted SSP-RK2 sub-steps.
    pub substeps: usize,
    /// Sub-steps restarted with a smaller dt (second stage would have lost positivity).
    pub rejected: usize,
    /// Smallest accepted sub-step size.
    pub min_dt: f64,
    /// Largest accepted sub-step size.
    pub max_dt: f64,
}

/// The discrete free energy in three parts (the columns of energy.csv):
/// diffusion = sum_k D_k sum_i F_m(rho_{k,i}) dV (plus, with a steric term, the solvent's
/// entropy sum_i (T/v)(1 - v s_i) log(1 - v s_i) dV), potential = sum_k sum_i
/// rho_{k,i} U_k(x_i) dV, interaction = (lambda/2) sum_i q_i psi_i dV.
pub use crate::energy::EnergyParts;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Scheme {
    ScharfetterGummel,
    Upwind,
}

struct SpeciesData {
    name: String,
    charge: f64,
    diffusion: f64,
    exponent: f64,
    scheme: Scheme,
    potential: Vec<f64>,
}

/// Default limit on the SSP-RK2 sub-steps of one [`EulerianSolver::advance`]:
/// a step needing more is a stiff problem this explicit scheme is not made
/// for, and fails (status 3) instead of running for hours with no end in sight.
pub const MAX_SUBSTEPS: usize = 1_000_000;

/// The progress callback of [`EulerianSolver::advance_observed`] is called
/// after every this many sub-steps.
pub const PROGRESS_EVERY: usize = 1000;

/// Where a long step stands, for progress reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SubstepProgress {
    /// Sub-steps taken so far in this step.
    pub substeps: usize,
    /// Fraction of the step's time advanced, in [0, 1].
    pub fraction: f64,
    /// The last sub-step size.
    pub dt: f64,
}

/// Finite-volume solver; see the module documentation for the scheme.
pub struct EulerianSolver {
    grid: Grid,
    species: Vec<SpeciesData>,
    lambda: f64,
    /// Built when some species is charged and lambda != 0, or psi_ext exists.
    poisson: Option<Green>,
    /// Whether psi moves the species (lambda != 0 and some charge != 0).
    coupled: bool,
    /// psi_ext = psi_C + phi_walls at the cell centers (`None`: free space, no background).
    external: Option<Vec<f64>>,
    in_box: bool,
    /// The box's walls (`None`: free space); the grid equilibrium's preconditioner needs them.
    walls: Option<Vec<[WallCondition; 2]>>,
    /// The Bikerman solvent entropy (SPEC §10), if any ([`EulerianSolver::with_steric`]).
    steric: Option<Steric>,
    rho: Vec<Vec<f64>>,
    time: f64,
    cfl: f64,
    wall_threshold: f64,
    max_substeps: usize,
}

/// f_m'(r) for m > 1 times D: D m r^(m-1)/(m-1).
#[inline]
fn nonlinear_xi(diffusion: f64, m: f64, r: f64) -> f64 {
    diffusion * m / (m - 1.0) * r.powf(m - 1.0)
}

impl EulerianSolver {
    /// Validates the problem (sizes, finiteness, D >= 0, m >= 1, densities >= 0 with positive
    /// mass, U finite at every cell center, a finite initial energy) and precomputes U at
    /// the centers and the Poisson kernel (only when lambda != 0 and some charge is non-zero).
    pub fn new(problem: EulerianProblem) -> Result<Self, EulerianError> {
        Self::new_in(problem, Electrostatics::default())
    }

    /// [`new`](Self::new) in the given surroundings: a box's walls and background charges
    /// (checked: one pair of walls per axis, finite wall data, a background of one finite
    /// value per cell).
    pub fn new_in(problem: EulerianProblem, env: Electrostatics) -> Result<Self, EulerianError> {
        let EulerianProblem {
            grid,
            species,
            coupling_strength,
        } = problem;
        grid::validate(&grid)?;
        if !coupling_strength.is_finite() {
            return Err(EulerianError::InvalidProblem {
                field: "coupling.strength",
                reason: format!("{coupling_strength} is not a finite number"),
            });
        }
        if species.is_empty() {
            return Err(EulerianError::InvalidProblem {
                field: "species",
                reason: "no species given".into(),
            });
        }
        let n = grid.len();
        let dv = grid.cell_volume();
        let centers: Vec<Vec<f64>> = (0..n).map(|i| grid.center(i)).collect();
        let mut data = Vec::with_capacity(species.len());
        let mut rho = Vec::with_capacity(species.len());
        for (k, s) in species.into_iter().enumerate() {
            let (sd, initial) = check_species(k, s, n, dv, &centers)?;
            data.push(sd);
            rho.push(initial);
        }
        let coupled = coupling_strength != 0.0 && data.iter().any(|s| s.charge != 0.0);
        check_env(&grid, &env)?;
        let in_box = env.walls.is_some();
        let walls = env.walls.clone();
        let has_external = in_box || env.background.is_some();
        let poisson = (coupled || has_external).then(|| match &env.walls {
            Some(w) => Green::Box(box_poisson::BoxPoisson::new(&grid, w)),
            None => Green::Free(poisson::FreeSpacePoisson::new(&grid)),
        });
        let external = poisson.as_ref().filter(|_| has_external).map(|g| {
            let mut source = match g {
                Green::Box(b) => b.wall_source().to_vec(),
                Green::Free(_) => vec![0.0; n],
            };
            if let Some(c) = &env.background {
                source.iter_mut().zip(c).for_each(|(s, c)| *s += c);
            }
            g.solve(&source)
        });
        let solver = EulerianSolver {
            grid,
            species: data,
            lambda: coupling_strength,
            poisson,
            coupled,
            external,
            in_box,
            walls,
            steric: None,
            rho,
            time: 0.0,
            cfl: 0.8,
            wall_threshold: 1e-3,
            max_substeps: MAX_SUBSTEPS,
        };
        // Finite U and rho can still overflow their products and sums.
        let energy = solver.energy();
        if !energy.total().is_finite() {
            return Err(EulerianError::InvalidProblem {
                field: "initial energy",
                reason: crate::stepper::describe_non_finite(&energy),
            });
        }
        Ok(solver)
    }

    /// Adds the Bikerman solvent entropy of finite ion size (SPEC §10; `None`: none, the
    /// default): every species' chemical potential gains mu_st(s) = -T (log(1 - v s) + 1),
    /// s = sum_k rho_k, in the fluxes (added to the drift potential U + lambda z psi of the
    /// Scharfetter–Gummel flux, to xi in the upwind flux), and the energy gains
    /// sum_i (T/v)(1 - v s_i) log(1 - v s_i) dV in its `diffusion` part. Fails (field
    /// `steric.volume`) when v or T is not a positive finite number or when the current
    /// densities already reach v s >= 1 in some cell.
    pub fn with_steric(mut self, steric: Option<Steric>) -> Result<Self, EulerianError> {
        let Some(st) = steric else {
            self.steric = None;
            return Ok(self);
        };
        let bad =
            |field: &'static str, reason: String| EulerianError::InvalidProblem { field, reason };
        if !(st.volume.is_finite() && st.volume > 0.0) {
            return Err(bad(
                "steric.volume",
                format!("{} is not a positive finite number", st.volume),
            ));
        }
        if !(st.temperature.is_finite() && st.temperature > 0.0) {
            return Err(bad(
                "steric.temperature",
                format!("{} is not a positive finite number", st.temperature),
            ));
        }
        let (cell, packing) = max_packing_of(&st, &self.rho);
        if packing.is_nan() || packing >= 1.0 {
            return Err(bad(
                "steric.volume",
                format!(
                    "the initial densities reach v s = {packing:.6e} >= 1 in cell {cell} (center {:?}; \
                     s = sum_k rho_k = {:.6e}, close packing 1/v = {:.6e}): such a state has infinite \
                     energy (the ions would overlap); choose a smaller steric.volume or initial \
                     densities below 1/v everywhere (a wider initial law)",
                    self.grid.center(cell),
                    packing / st.volume,
                    1.0 / st.volume
                ),
            ));
        }
        self.steric = Some(st);
        let energy = self.energy();
        if !energy.total().is_finite() {
            return Err(bad(
                "initial energy",
                crate::stepper::describe_non_finite(&energy),
            ));
        }
        Ok(self)
    }

    /// The steric term, if any.
    pub fn steric(&self) -> Option<Steric> {
        self.steric
    }

    /// max_i v s_i over the cells, s = sum_k rho_k (0 with no steric term): below 1 at all
    /// times.
    pub fn max_packing(&self) -> f64 {
        self.steric
            .map_or(0.0, |st| max_packing_of(&st, &self.rho).1)
    }

    /// Sets the sub-step safety factor: dt = cfl / max rate, 0 < cfl <= 1 (default 0.8).
    pub fn set_cfl(&mut self, cfl: f64) -> Result<(), EulerianError> {
        if !(cfl > 0.0 && cfl <= 1.0) {
            return Err(EulerianError::InvalidProblem {
                field: "cfl",
                reason: format!("{cfl} is not in (0, 1]"),
            });
        }
        self.cfl = cfl;
        Ok(())
    }

    /// Sets the limit on the sub-steps of one step (default [`MAX_SUBSTEPS`], at least 1).
    pub fn set_max_substeps(&mut self, limit: usize) {
        self.max_substeps = limit.max(1);
    }

    /// Sets the fraction of a species' peak density above which density in the outermost
    /// cells counts as touching the walls (default 1e-3).
    pub fn set_wall_threshold(&mut self, fraction: f64) {
        self.wall_threshold = fraction;
    }

    /// The grid the solver runs on.
    pub fn grid(&self) -> &Grid {
        &self.grid
    }

    /// Number of species K.
    pub fn num_species(&self) -> usize {
        self.species.len()
    }

    /// The name of species `species` (0-based).
    pub fn species_name(&self, species: usize) -> &str {
        &self.species[species].name
    }

    /// Time reached (sum of the h given to `advance`).
    pub fn time(&self) -> f64 {
        self.time
    }

    /// Cell averages of one species (storage order of the grid).
    pub fn density(&self, species: usize) -> &[f64] {
        &self.rho[species]
    }

    /// Center of cell `index` (length d).
    pub fn cell_center(&self, index: usize) -> Vec<f64> {
        self.grid.center(index)
    }

    /// All cell centers, in storage order.
    pub fn cell_centers(&self) -> Vec<Vec<f64>> {
        (0..self.grid.len()).map(|i| self.grid.center(i)).collect()
    }

    /// Mass sum_i rho_{k,i} dV of one species.
    pub fn mass(&self, species: usize) -> f64 {
        self.rho[species].iter().sum::<f64>() * self.grid.cell_volume()
    }

    /// Net charge density q_i = sum_k z_k rho_{k,i}.
    fn charge_density(&self, rho: &[Vec<f64>]) -> Vec<f64> {
        let mut q = vec![0.0; self.grid.len()];
        for (s, r) in self.species.iter().zip(rho) {
            if s.charge != 0.0 {
                q.iter_mut().zip(r).for_each(|(q, r)| *q += s.charge * r);
            }
        }
        q
    }

    /// psi = G q + psi_ext for densities `rho`, given a solver.
    fn full_psi(&self, green: &Green, rho: &[Vec<f64>]) -> Vec<f64> {
        let mut psi = green.solve(&self.charge_density(rho));
        if let Some(e) = &self.external {
            psi.iter_mut().zip(e).for_each(|(p, e)| *p += e);
        }
        psi
    }

    /// psi at the cell centers for the current densities: G q + psi_C + phi_walls (zeros
    /// in free space with no background when uncoupled).
    pub fn psi(&self) -> Vec<f64> {
        match &self.poisson {
            Some(g) => self.full_psi(g, &self.rho),
            None => vec![0.0; self.grid.len()],
        }
    }

    /// psi_ext = psi_C + phi_walls at the cell centers (`None` in free space with no
    /// background): the part of psi the species do not make.
    pub fn external_psi(&self) -> Option<&[f64]> {
        self.external.as_deref()
    }

    /// Whether the grid is a `[domain]` box (psi with the walls' conditions).
    pub fn in_box(&self) -> bool {
        self.in_box
    }

    /// Discrete free energy in parts (see [`EnergyParts`]). With a steric term the
    /// solvent's entropy sum_i (T/v)(1 - v s_i) log(1 - v s_i) dV is counted in the
    /// `diffusion` part (+infinity if some cell has v s_i >= 1).
    pub fn energy(&self) -> EnergyParts {
        self.energy_of(&self.rho)
    }

    /// [`energy`](Self::energy) of other densities `rho` on this solver's grid.
    fn energy_of(&self, rho: &[Vec<f64>]) -> EnergyParts {
        let dv = self.grid.cell_volume();
        let mut diffusion = 0.0;
        let mut potential = 0.0;
        for (s, r) in self.species.iter().zip(rho) {
            if s.diffusion > 0.0 {
                let f: f64 = if s.exponent == 1.0 {
                    r.iter()
                        .map(|&x| if x > 0.0 { x * x.ln() } else { 0.0 })
                        .sum()
                } else {
                    r.iter().map(|&x| x.powf(s.exponent)).sum::<f64>() / (s.exponent - 1.0)
                };
                diffusion += s.diffusion * f * dv;
            }
            potential += r.iter().zip(&s.potential).map(|(r, u)| r * u).sum::<f64>() * dv;
        }
        let interaction = match (&self.poisson, self.coupled) {
            (Some(p), true) => {
                let q = self.charge_density(rho);
                let psi = p.solve(&q);
                match &self.external {
                    None => {
                        0.5 * self.lambda * q.iter().zip(&psi).map(|(q, p)| q * p).sum::<f64>() * dv
                    }
                    // (lambda/2) q.G q + lambda q.psi_ext (SPEC §7).
                    Some(e) => {
                        self.lambda
                            * q.iter()
                                .zip(&psi)
                                .zip(e)
                                .map(|((q, p), e)| q * (0.5 * p + e))
                                .sum::<f64>()
                            * dv
                    }
                }
            }
            // No charged species or lambda = 0: lambda q.(G q / 2 + psi_ext) = 0.
            _ => 0.0,
        };
        if let Some(st) = &self.steric {
            diffusion += steric_energy(st, rho) * dv;
        }
        EnergyParts {
            diffusion,
            potential,
            interaction,
        }
    }

    /// max over the outermost cells of rho_k divided by max_i rho_k (0 if the species is 0).
    pub fn wall_density_ratio(&self, species: usize) -> f64 {
        let r = &self.rho[species];
        let peak = r.iter().cloned().fold(0.0, f64::max);
        if peak == 0.0 {
            return 0.0;
        }
        let wall = (0..r.len())
            .filter(|&i| self.grid.is_boundary(i))
            .map(|i| r[i])
            .fold(0.0, f64::max);
        wall / peak
    }

    /// Warning flag (free space only: a box's walls are the domain's): some species has, in a cell touching a wall, a density above
    /// `wall_threshold` (default 1e-3) times its peak; the box no longer holds it well.
    pub fn touches_walls(&self) -> bool {
        !self.in_box
            && (0..self.species.len()).any(|k| self.wall_density_ratio(k) > self.wall_threshold)
    }

    /// Right-hand side L(rho) of d rho/dt = L(rho), with the largest positivity rate and the
    /// largest rate used for dt (positivity or diffusive stability).
    fn rhs(&self, rho: &[Vec<f64>]) -> (Vec<Vec<f64>>, f64, f64) {
        let psi = match (&self.poisson, self.coupled) {
            (Some(g), true) => Some(self.full_psi(g, rho)),
            _ => None,
        };
        let g = &self.grid;
        let d = g.dim();
        let n = rho[0].len();
        let mut out = Vec::with_capacity(rho.len());
        let (mut pos_max, mut all_max) = (0.0f64, 0.0f64);
        // With a steric term: the total density s and mu_st(s) per cell.
        let steric = self.steric.map(|st| {
            let total: Vec<f64> = (0..n)
                .map(|i| rho.iter().map(|r| r[i]).sum::<f64>())
                .collect();
            let mu: Vec<f64> = total.iter().map(|&s| st.chemical_potential(s)).collect();
            (st, total, mu)
        });
        for (s, r) in self.species.iter().zip(rho) {
            let lz = self.lambda * s.charge;
            let mut phi: Vec<f64> = match (&psi, lz != 0.0) {
                (Some(p), true) => s.potential.iter().zip(p).map(|(u, p)| u + lz * p).collect(),
                _ => s.potential.clone(),
            };
            if let Some((_, _, mu)) = &steric {
                phi.iter_mut().zip(mu).for_each(|(p, m)| *p += m);
            }
            // The explicit stability rate of the steric cross-diffusion across a face:
            // d/dt s = div(s T v / (1 - v s) grad s) + ..., an effective diffusion
            // T v s / (1 - v s) (per face, like the nonlinear diffusion's below).
            let steric_rate = |l: usize, rr: usize, h: f64| -> f64 {
                match &steric {
                    Some((st, total, _)) => {
                        let u = st.volume * total[l].max(total[rr]);
                        st.temperature * u / (1.0 - u) / (h * h)
                    }
                    None => 0.0,
                }
            };
            let nonlinear = s.scheme == Scheme::Upwind && s.diffusion > 0.0;
            let xi: Vec<f64> = if nonlinear {
                phi.iter()
                    .zip(r)
                    .map(|(p, &x)| p + nonlinear_xi(s.diffusion, s.exponent, x))
                    .collect()
            } else {
                Vec::new()
            };
            let xi: &[f64] = if nonlinear { &xi } else { &phi };
            // Flux across the face between cell l and l + stride_a, with rates of both cells.
            let face = |l: usize, a: usize| -> (f64, f64, f64, f64) {
                let st = g.stride(a);
                let rr = l + st;
                let h = g.spacing(a);
                match s.scheme {
                    Scheme::ScharfetterGummel => {
                        let (f, cl, cr) =
                            flux::scharfetter_gummel(r[l], r[rr], phi[l], phi[rr], s.diffusion, h);
                        (f, cl, cr, steric_rate(l, rr, h))
                    }
                    Scheme::Upwind => {
                        let c = g.coord(l, a);
                        let sl = if c == 0 {
                            flux::wall_slope(r[rr] - r[l], r[l])
                        } else {
                            flux::mc_slope(r[l - st], r[l], r[rr])
                        };
                        let sr = if c + 2 == g.cells()[a] {
                            flux::wall_slope(r[rr] - r[l], r[rr])
                        } else {
                            flux::mc_slope(r[l], r[rr], r[rr + st])
                        };
                        let (f, cl, cr) =
                            flux::upwind(r[l] + 0.5 * sl, r[rr] - 0.5 * sr, xi[l], xi[rr], h);
                        let stab = if nonlinear {
                            s.diffusion * s.exponent * r[l].max(r[rr]).powf(s.exponent - 1.0)
                                / (h * h)
                        } else {
                            0.0
                        };
                        let stab = if steric.is_some() {
                            stab + steric_rate(l, rr, h)
                        } else {
                            stab
                        };
                        (f, cl, cr, stab)
                    }
                }
            };
            let res: Vec<(f64, f64, f64)> = (0..n)
                .into_par_iter()
                .with_min_len(512)
                .map(|i| {
                    let (mut div, mut pos, mut stab) = (0.0, 0.0, 0.0);
                    for a in 0..d {
                        let c = g.coord(i, a);
                        let h = g.spacing(a);
                        if c + 1 < g.cells()[a] {
                            let (f, cl, _, st) = face(i, a);
                            div -= f / h;
                            pos += cl;
                            stab += st;
                        }
                        if c > 0 {
                            let (f, _, cr, st) = face(i - g.stride(a), a);
                            div += f / h;
                            pos += cr;
                            stab += st;
                        }
                    }
                    (div, pos, stab)
                })
                .collect();
            let mut l = Vec::with_capacity(n);
            for (div, pos, stab) in res {
                l.push(div);
                pos_max = pos_max.max(pos);
                all_max = all_max.max(pos.max(stab));
            }
            out.push(l);
        }
        (out, pos_max, all_max)
    }

    /// Advances by time h with SSP-RK2 sub-steps (see module docs); returns statistics.
    pub fn advance(&mut self, h: f64) -> Result<StepStats, EulerianError> {
        self.advance_observed(h, &mut |_| {})
    }

    /// The sub-step limit's verdict after `stats.substeps` sub-steps with
    /// `remaining` of the step left at sub-step size `dt` (see module docs).
    fn check_substeps(
        &self,
        stats: &StepStats,
        remaining: f64,
        dt: f64,
        rate: f64,
    ) -> Result<(), EulerianError> {
        let left = (self.max_substeps - stats.substeps.min(self.max_substeps)) as f64;
        let projected = remaining / dt;
        let settled = stats.substeps >= (self.max_substeps / 100).max(1);
        if remaining > 0.0 && (left < 1.0 || (settled && projected > left)) {
            return Err(EulerianError::TooManySubsteps {
                time: self.time,
                limit: self.max_substeps,
                taken: stats.substeps,
                needed: stats.substeps as f64 + projected,
                dt,
                rate,
            });
        }
        Ok(())
    }

    /// [`advance`](Self::advance), calling `progress` every [`PROGRESS_EVERY`]
    /// sub-steps. The step fails with [`EulerianError::TooManySubsteps`]
    /// (the solution left at the start of the step) when it would take more
    /// than the sub-step limit.
    pub fn advance_observed(
        &mut self,
        h: f64,
        progress: &mut dyn FnMut(SubstepProgress),
    ) -> Result<StepStats, EulerianError> {
        if !(h.is_finite() && h >= 0.0) {
            return Err(EulerianError::InvalidTimeStep(h));
        }
        let mut stats = StepStats {
            substeps: 0,
            rejected: 0,
            min_dt: f64::INFINITY,
            max_dt: 0.0,
        };
        let mut done = 0.0;
        let axpy = |x: &[Vec<f64>], dt: f64, l: &[Vec<f64>]| -> Vec<Vec<f64>> {
            x.iter()
                .zip(l)
                .map(|(x, l)| {
                    x.par_iter()
                        .zip(l.par_iter())
                        .map(|(x, l)| x + dt * l)
                        .collect()
                })
                .collect()
        };
        // A stage is refused (the sub-step restarted with half the dt) when it loses
        // positivity or, with a steric term, reaches v s >= 1 in some cell.
        let steric = self.steric;
        let bad = |v: &[Vec<f64>]| {
            v.iter().flatten().any(|x| !(x.is_finite() && *x >= 0.0))
                || steric.is_some_and(|st| crowded(&st, v))
        };
        let start = self.rho.clone();
        while done < h {
            let (l0, _, rate0) = self.rhs(&self.rho);
            let remaining = h - done;
            let mut dt = if rate0 > 0.0 {
                (self.cfl / rate0).min(remaining)
            } else {
                remaining
            };
            loop {
                // A tiny dt that is the step's rounding remainder (the previous sub-step
                // fell short of the end by a few ulps) is no breakdown: it is taken.
                let tiny = dt <= 1e-14 * h.max(self.time) && dt < remaining;
                if dt.is_nan() || tiny || stats.rejected > 1000 {
                    return Err(EulerianError::Breakdown {
                        time: self.time + done,
                        reason: format!(
                            "sub-step fell to {dt:e} (rate {rate0:e}) or too many rejections"
                        ),
                    });
                }
                let rho1 = axpy(&self.rho, dt, &l0);
                if bad(&rho1) {
                    dt *= 0.5;
                    stats.rejected += 1;
                    continue;
                }
                let (l1, pos1, rate1) = self.rhs(&rho1);
                if dt * pos1 > 1.0 {
                    dt = (0.5 * dt).min(self.cfl / rate1);
                    stats.rejected += 1;
                    continue;
                }
                let rho2 = axpy(&rho1, dt, &l1);
                let new: Vec<Vec<f64>> = self
                    .rho
                    .iter()
                    .zip(&rho2)
                    .map(|(a, b)| {
                        a.par_iter()
                            .zip(b.par_iter())
                            .map(|(a, b)| 0.5 * (a + b))
                            .collect()
                    })
                    .collect();
                if bad(&new) {
                    dt *= 0.5;
                    stats.rejected += 1;
                    continue;
                }
                self.rho = new;
                break;
            }
            stats.substeps += 1;
            stats.min_dt = stats.min_dt.min(dt);
            stats.max_dt = stats.max_dt.max(dt);
            done = if dt >= remaining { h } else { done + dt };
            if stats.substeps.is_multiple_of(PROGRESS_EVERY) {
                progress(SubstepProgress {
                    substeps: stats.substeps,
                    fraction: done / h,
                    dt,
                });
            }
            if let Err(e) = self.check_substeps(&stats, h - done, dt, rate0) {
                self.rho = start;
                return Err(e);
            }
        }
        self.time += h;
        Ok(stats)
    }
}

/// Checks the surroundings against the grid: one pair of walls per axis with finite data,
/// a background of one finite value per cell.
fn check_env(grid: &Grid, env: &Electrostatics) -> Result<(), EulerianError> {
    let bad = |field: &'static str, reason: String| EulerianError::InvalidProblem { field, reason };
    if let Some(w) = &env.walls {
        if w.len() != grid.dim() {
            return Err(bad(
                "domain.wall",
                format!("{} pairs of walls for a {}D grid", w.len(), grid.dim()),
            ));
        }
        let finite = w.iter().flatten().all(|c| match *c {
            WallCondition::Electrode { potential } => potential.is_finite(),
            WallCondition::Insulating { surface_charge } => surface_charge.is_finite(),
        });
        if !finite {
            return Err(bad("domain.wall", "a wall's data is not finite".into()));
        }
    }
    if let Some(c) = &env.background {
        if c.len() != grid.len() {
            return Err(bad(
                "background",
                format!(
                    "has {} cell values, the grid has {} cells",
                    c.len(),
                    grid.len()
                ),
            ));
        }
        if let Some(i) = c.iter().position(|v| !v.is_finite()) {
            return Err(bad("background", format!("cell {i} is {}", c[i])));
        }
    }
    Ok(())
}

/// Validates one species (module docs of [`EulerianSolver::new`]) and evaluates U at
/// the cell centers; returns its data and initial cell averages.
fn check_species(
    k: usize,
    s: EulerianSpecies,
    n: usize,
    dv: f64,
    centers: &[Vec<f64>],
) -> Result<(SpeciesData, Vec<f64>), EulerianError> {
    let label = if s.name.is_empty() {
        format!("#{k}")
    } else {
        s.name.clone()
    };
    let bad = |field: &'static str, reason: String| EulerianError::InvalidSpecies {
        species: label.clone(),
        field,
        reason,
    };
    if !s.charge.is_finite() {
        return Err(bad(
            "charge",
            format!("{} is not a finite number", s.charge),
        ));
    }
    if !(s.diffusion.is_finite() && s.diffusion >= 0.0) {
        return Err(bad(
            "diffusion",
            format!("{} is not a finite non-negative number", s.diffusion),
        ));
    }
    if !(s.exponent.is_finite() && s.exponent >= 1.0) {
        return Err(bad(
            "exponent",
            format!("{} is not a finite number >= 1", s.exponent),
        ));
    }
    if s.initial.len() != n {
        return Err(bad(
            "initial",
            format!(
                "has {} cell values, the grid has {n} cells",
                s.initial.len()
            ),
        ));
    }
    if let Some((i, v)) = s
        .initial
        .iter()
        .enumerate()
        .find(|(_, v)| !(v.is_finite() && **v >= 0.0))
    {
        return Err(bad(
            "initial",
            format!("cell {i} has density {v}; densities must be finite and >= 0"),
        ));
    }
    let mass: f64 = s.initial.iter().sum::<f64>() * dv;
    if mass <= 0.0 {
        return Err(bad("initial", "has no mass inside the grid".into()));
    }
    let potential: Vec<f64> = centers.iter().map(|x| (s.potential)(x)).collect();
    if let Some(i) = potential.iter().position(|u| !u.is_finite()) {
        return Err(bad(
            "potential",
            format!("is {} at the cell center {:?}", potential[i], centers[i]),
        ));
    }
    let scheme = if s.exponent == 1.0 && s.diffusion > 0.0 {
        Scheme::ScharfetterGummel
    } else {
        Scheme::Upwind
    };
    Ok((
        SpeciesData {
            name: s.name,
            charge: s.charge,
            diffusion: s.diffusion,
            exponent: s.exponent,
            scheme,
            potential,
        },
        s.initial,
    ))
}

/// The cell of the largest v s, s = sum_k rho_k, and that v s (NaN counts as infinite).
fn max_packing_of(st: &Steric, rho: &[Vec<f64>]) -> (usize, f64) {
    let n = rho[0].len();
    let mut best = (0, 0.0f64);
    for i in 0..n {
        let u = st.volume * rho.iter().map(|r| r[i]).sum::<f64>();
        let u = if u.is_nan() { f64::INFINITY } else { u };
        if u > best.1 {
            best = (i, u);
        }
    }
    best
}

/// sum_i (T/v)(1 - v s_i) log(1 - v s_i) (times dV by the caller), s = sum_k rho_k.
fn steric_energy(st: &Steric, rho: &[Vec<f64>]) -> f64 {
    (0..rho[0].len())
        .map(|i| st.density(rho.iter().map(|r| r[i]).sum::<f64>()))
        .sum()
}

/// Whether some cell has v s >= 1 (or a NaN total): a state the steric term forbids.
fn crowded(st: &Steric, rho: &[Vec<f64>]) -> bool {
    let u = max_packing_of(st, rho).1;
    u.is_nan() || u >= 1.0
}
