//! Problems on a grid and their moments, for the Eulerian solver's tests.
#![allow(dead_code, clippy::too_many_arguments, clippy::needless_range_loop)]
use jko::eulerian::*;

pub fn grid(d: usize, n: usize, half: f64) -> Grid {
    Grid::new(vec![-half; d], vec![half; d], vec![n; d])
}

/// Quadratic potential U = k/2 |x - c|^2.
pub fn quadratic(k: f64, c: Vec<f64>) -> PotentialFn {
    Box::new(move |x: &[f64]| {
        0.5 * k
            * x.iter()
                .zip(&c)
                .map(|(x, c)| (x - c) * (x - c))
                .sum::<f64>()
    })
}

pub fn gaussian_species(
    g: &Grid,
    name: &str,
    charge: f64,
    diffusion: f64,
    exponent: f64,
    mean: &[f64],
    std: &[f64],
    k: f64,
) -> EulerianSpecies {
    EulerianSpecies {
        name: name.into(),
        charge,
        diffusion,
        exponent,
        potential: quadratic(k, vec![0.0; g.dim()]),
        initial: gaussian_cell_averages(g, mean, std, 1.0).unwrap(),
    }
}

/// Two species of opposite charge (u: +1, v: -1), Gaussians off center, U = k/2 |x|^2.
pub fn pnp(
    d: usize,
    n: usize,
    half: f64,
    m: f64,
    lambda: f64,
    du: f64,
    dv: f64,
    k: f64,
) -> EulerianSolver {
    let g = grid(d, n, half);
    let mu: Vec<f64> = [0.6, 0.2, -0.1][..d].to_vec();
    let mv: Vec<f64> = [-0.5, -0.3, 0.2][..d].to_vec();
    let su: Vec<f64> = [0.5, 0.7, 0.6][..d].to_vec();
    let sv: Vec<f64> = [0.6, 0.5, 0.55][..d].to_vec();
    let species = vec![
        gaussian_species(&g, "u", 1.0, du, m, &mu, &su, k),
        gaussian_species(&g, "v", -1.0, dv, m, &mv, &sv, k),
    ];
    EulerianSolver::new(EulerianProblem {
        grid: g,
        species,
        coupling_strength: lambda,
    })
    .unwrap()
}

/// Mean vector and covariance matrix (row-major d x d) of the cell averages of one species,
/// point masses at the centers: mu = sum rho_i x_i dV / M, C = sum rho_i (x_i-mu)(x_i-mu)^T dV / M.
pub fn moments(s: &EulerianSolver, k: usize) -> (Vec<f64>, Vec<f64>) {
    let d = s.grid().dim();
    let r = s.density(k);
    let centers = s.cell_centers();
    let m: f64 = r.iter().sum();
    let mut mu = vec![0.0; d];
    for (x, w) in centers.iter().zip(r) {
        for a in 0..d {
            mu[a] += w * x[a] / m;
        }
    }
    let mut c = vec![0.0; d * d];
    for (x, w) in centers.iter().zip(r) {
        for a in 0..d {
            for b in 0..d {
                c[a * d + b] += w * (x[a] - mu[a]) * (x[b] - mu[b]) / m;
            }
        }
    }
    (mu, c)
}

/// Restriction of a fine-grid (2n per axis) cell-average array to the n grid: mean of 2^d children.
pub fn restrict(fine: &[f64], n: usize, d: usize) -> Vec<f64> {
    let nf = 2 * n;
    let total = n.pow(d as u32);
    (0..total)
        .map(|i| {
            let c: Vec<usize> = (0..d).map(|a| (i / n.pow(a as u32)) % n).collect();
            let mut s = 0.0;
            for child in 0..(1usize << d) {
                let mut idx = 0;
                for a in 0..d {
                    idx += (2 * c[a] + (child >> a & 1)) * nf.pow(a as u32);
                }
                s += fine[idx];
            }
            s / (1 << d) as f64
        })
        .collect()
}
