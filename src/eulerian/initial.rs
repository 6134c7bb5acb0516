//! Exact cell-average initial densities (SPEC "gaussian" and "uniform" initial kinds) and
//! binning of a particle cloud ("csv" kind) onto the grid.
//!
//! A cell average is (1/|C|) int_C rho, |C| the cell volume; the returned vectors are in the
//! grid's storage order (row-major, x fastest). Mass outside the box is lost: the sum of
//! (cell average * |C|) is the mass inside the box, which the caller may compare with `mass`.

use super::{EulerianError, Grid};

fn bad(field: &'static str, reason: String) -> EulerianError {
    EulerianError::InvalidProblem { field, reason }
}

fn check_vec(grid: &Grid, v: &[f64], field: &'static str) -> Result<(), EulerianError> {
    if v.len() != grid.dim() {
        return Err(bad(
            field,
            format!(
                "has length {}, the grid has dimension {}",
                v.len(),
                grid.dim()
            ),
        ));
    }
    if let Some(x) = v.iter().find(|x| !x.is_finite()) {
        return Err(bad(field, format!("contains {x}, not a finite number")));
    }
    Ok(())
}

/// P(a < X < b) for X ~ N(mu, sigma^2), from erf/erfc differences chosen so that no
/// cancellation occurs in the tails (relative accuracy ~1e-15 even when the probability is tiny).
pub fn normal_interval_probability(a: f64, b: f64, mu: f64, sigma: f64) -> f64 {
    let s = std::f64::consts::SQRT_2 * sigma;
    let (al, be) = ((a - mu) / s, (b - mu) / s);
    if al >= 0.0 {
        0.5 * (libm::erfc(al) - libm::erfc(be))
    } else if be <= 0.0 {
        0.5 * (libm::erfc(-be) - libm::erfc(-al))
    } else {
        0.5 * (libm::erf(be) - libm::erf(al))
    }
}

/// Cell averages of `mass` times the Gaussian law N(mean, diag(std^2)):
/// rho_i = mass * prod_a P(cell_i,a) / |C|, P from [`normal_interval_probability`].
pub fn gaussian_cell_averages(
    grid: &Grid,
    mean: &[f64],
    std: &[f64],
    mass: f64,
) -> Result<Vec<f64>, EulerianError> {
    super::grid::validate(grid)?;
    check_vec(grid, mean, "initial.mean")?;
    check_vec(grid, std, "initial.std")?;
    if let Some(s) = std.iter().find(|s| **s <= 0.0) {
        return Err(bad(
            "initial.std",
            format!("contains {s}; every std must be positive"),
        ));
    }
    if !(mass.is_finite() && mass > 0.0) {
        return Err(bad(
            "mass",
            format!("{mass} is not a positive finite number"),
        ));
    }
    Ok(separable(grid, mass, |a, lo, h| {
        normal_interval_probability(lo, lo + h, mean[a], std[a]) / h
    }))
}

/// Cell averages of `mass` times the Gaussian law N(mean, diag(std^2)) restricted to the
/// grid's box and renormalized there (SPEC §7, a "gaussian" law in a `[domain]` box):
/// rho_i = mass * prod_a P(cell_i,a) / (|C| prod_a P(box_a)). The restriction of a product
/// law to a box is a product, so the renormalization is per axis; the cells hold `mass`
/// to rounding however far the box cuts the tails.
pub fn restricted_gaussian_cell_averages(
    grid: &Grid,
    mean: &[f64],
    std: &[f64],
    mass: f64,
) -> Result<Vec<f64>, EulerianError> {
    let free = gaussian_cell_averages(grid, mean, std, 1.0)?;
    let inside: Vec<f64> = (0..grid.dim())
        .map(|a| normal_interval_probability(grid.lower()[a], grid.upper()[a], mean[a], std[a]))
        .collect();
    if let Some(a) = inside.iter().position(|p| p.is_nan() || *p <= 0.0) {
        return Err(bad(
            "initial.mean",
            format!("the law has no mass inside the box along axis {a}"),
        ));
    }
    let scale = mass / inside.iter().product::<f64>();
    Ok(free.into_iter().map(|r| r * scale).collect())
}

/// rho_i = mass * prod_a f(a, lo, h) for a law that is a product over the
/// axes: f(a, lo, h) is the per-axis density averaged over the cell
/// [lo, lo + h] of axis a.
pub(super) fn separable(grid: &Grid, mass: f64, f: impl Fn(usize, f64, f64) -> f64) -> Vec<f64> {
    let d = grid.dim();
    let per_axis: Vec<Vec<f64>> = (0..d)
        .map(|a| {
            let h = grid.spacing(a);
            (0..grid.cells()[a])
                .map(|c| f(a, grid.lower()[a] + c as f64 * h, h))
                .collect()
        })
        .collect();
    (0..grid.len())
        .map(|i| {
            mass * (0..d)
                .map(|a| per_axis[a][grid.coord(i, a)])
                .product::<f64>()
        })
        .collect()
}

/// Cell averages of `mass` spread uniformly on the box [lower, upper]:
/// rho_i = mass / vol(box) * |C_i ∩ box| / |C_i| (exact overlap volumes).
pub fn uniform_cell_averages(
    grid: &Grid,
    lower: &[f64],
    upper: &[f64],
    mass: f64,
) -> Result<Vec<f64>, EulerianError> {
    super::grid::validate(grid)?;
    check_vec(grid, lower, "initial.lower")?;
    check_vec(grid, upper, "initial.upper")?;
    if let Some(a) = (0..grid.dim()).find(|&a| upper[a] <= lower[a]) {
        return Err(bad(
            "initial.upper",
            format!(
                "component {a} ({}) must exceed lower ({})",
                upper[a], lower[a]
            ),
        ));
    }
    if !(mass.is_finite() && mass > 0.0) {
        return Err(bad(
            "mass",
            format!("{mass} is not a positive finite number"),
        ));
    }
    Ok(separable(grid, mass, |a, lo, h| {
        let overlap = ((lo + h).min(upper[a]) - lo.max(lower[a])).max(0.0);
        overlap / h / (upper[a] - lower[a])
    }))
}

/// Bins weighted particles (positions flat, d numbers per particle) onto the grid:
/// rho_i = (sum of weights of the particles in cell i) / |C|. A particle on the upper wall
/// goes to the last cell; one outside the box, or with a non-finite or negative weight, is refused.
pub fn bin_particles(
    grid: &Grid,
    positions: &[f64],
    weights: &[f64],
) -> Result<Vec<f64>, EulerianError> {
    super::grid::validate(grid)?;
    let d = grid.dim();
    if positions.len() != d * weights.len() {
        return Err(bad(
            "positions",
            format!(
                "has {} numbers, expected {} ({} particles x d = {d})",
                positions.len(),
                d * weights.len(),
                weights.len()
            ),
        ));
    }
    let mut rho = vec![0.0; grid.len()];
    let vol = grid.cell_volume();
    for (p, &w) in weights.iter().enumerate() {
        if !(w.is_finite() && w >= 0.0) {
            return Err(EulerianError::InvalidParticle {
                index: p,
                reason: format!("weight {w} is not a finite non-negative number"),
            });
        }
        let mut idx = 0;
        let mut stride = 1;
        for a in 0..d {
            let x = positions[p * d + a];
            if !(x.is_finite() && x >= grid.lower()[a] && x <= grid.upper()[a]) {
                return Err(EulerianError::InvalidParticle {
                    index: p,
                    reason: format!(
                        "coordinate {a} = {x} is outside the grid [{}, {}]",
                        grid.lower()[a],
                        grid.upper()[a]
                    ),
                });
            }
            let c = grid.cell_along(a, x);
            idx += c * stride;
            stride *= grid.cells()[a];
        }
        rho[idx] += w / vol;
    }
    Ok(rho)
}
