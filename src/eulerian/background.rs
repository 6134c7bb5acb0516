//! Fixed background charges C(x) (SPEC §8) as cell averages on the grid, in charge per
//! unit volume (the units of z_k rho_k): they enter q = sum_k z_k rho_k + C, psi and the
//! interaction energy, and never move.
//!
//! * "uniform": C = Q / |B| on B = [lower, upper], cell averages by exact overlap volumes.
//! * "gaussian": C = Q N(mean, diag(std^2)), exact cell averages (erf differences); in a
//!   box restricted to it and renormalized (total Q in the box), in free space the plain
//!   law (whatever lies outside the grid is lost: the caller warns).
//! * "csv" points: each point charge Q_c binned into its cell, Q_c / |C| (a point on an
//!   upper face goes to the last cell); a point outside the grid is refused.

use super::initial::{normal_interval_probability, separable};
use super::{EulerianError, Grid};
use crate::model::background::{Background, BackgroundShape};

/// The sum over `backgrounds` of their cell averages; `in_box` says whether the grid is
/// a `[domain]` box (then Gaussians are renormalized to it).
pub fn background_cells(
    grid: &Grid,
    backgrounds: &[Background],
    in_box: bool,
) -> Result<Vec<f64>, EulerianError> {
    super::grid::validate(grid)?;
    let mut total = vec![0.0; grid.len()];
    for b in backgrounds {
        let cells = one_background(grid, b, in_box)?;
        total.iter_mut().zip(&cells).for_each(|(t, c)| *t += c);
    }
    Ok(total)
}

fn bad(field: &'static str, reason: String) -> EulerianError {
    EulerianError::InvalidProblem { field, reason }
}

/// The cell averages of one background.
pub fn one_background(
    grid: &Grid,
    b: &Background,
    in_box: bool,
) -> Result<Vec<f64>, EulerianError> {
    let d = grid.dim();
    let q = b.charge;
    if !q.is_finite() {
        return Err(bad("background.charge", format!("{q} is not finite")));
    }
    match &b.shape {
        BackgroundShape::Uniform { lower, upper } => {
            if lower.len() != d || upper.len() != d || (0..d).any(|a| upper[a] <= lower[a]) {
                return Err(bad(
                    "background.shape",
                    format!("the uniform box [{lower:?}, {upper:?}] is not a box in {d}D"),
                ));
            }
            Ok(separable(grid, q, |a, lo, h| {
                let overlap = ((lo + h).min(upper[a]) - lo.max(lower[a])).max(0.0);
                overlap / h / (upper[a] - lower[a])
            }))
        }
        BackgroundShape::Gaussian { mean, std } => {
            if mean.len() != d || std.len() != d || std.iter().any(|s| s.is_nan() || *s <= 0.0) {
                return Err(bad(
                    "background.shape",
                    format!("gaussian mean {mean:?} / std {std:?} unusable in {d}D"),
                ));
            }
            let norm: Vec<f64> = (0..d)
                .map(|a| {
                    if in_box {
                        normal_interval_probability(
                            grid.lower()[a],
                            grid.upper()[a],
                            mean[a],
                            std[a],
                        )
                    } else {
                        1.0
                    }
                })
                .collect();
            if norm.iter().any(|p| p.is_nan() || *p <= 0.0) {
                return Err(bad(
                    "background.shape.mean",
                    "the gaussian has no charge inside the box".into(),
                ));
            }
            Ok(separable(grid, q, |a, lo, h| {
                normal_interval_probability(lo, lo + h, mean[a], std[a]) / h / norm[a]
            }))
        }
        BackgroundShape::Points { positions, charges } => bin_points(grid, positions, charges),
        #[allow(unreachable_patterns)]
        _ => Err(bad(
            "background.shape",
            "this shape is not supported on a grid".into(),
        )),
    }
}

/// Signed point charges binned onto the grid: C_i = sum of the charges in cell i / |C|.
fn bin_points(
    grid: &Grid,
    positions: &[Vec<f64>],
    charges: &[f64],
) -> Result<Vec<f64>, EulerianError> {
    let d = grid.dim();
    let vol = grid.cell_volume();
    let mut c = vec![0.0; grid.len()];
    for (p, (x, &w)) in positions.iter().zip(charges).enumerate() {
        if x.len() != d || !w.is_finite() {
            return Err(EulerianError::InvalidParticle {
                index: p,
                reason: format!("background point {x:?} with charge {w} is unusable in {d}D"),
            });
        }
        let mut idx = 0;
        for a in (0..d).rev() {
            if !(x[a] >= grid.lower()[a] && x[a] <= grid.upper()[a]) {
                return Err(EulerianError::InvalidParticle {
                    index: p,
                    reason: format!(
                        "background point coordinate {a} = {} is outside the grid [{}, {}]",
                        x[a],
                        grid.lower()[a],
                        grid.upper()[a]
                    ),
                });
            }
            let cell = grid.cell_along(a, x[a]);
            idx = idx * grid.cells()[a] + cell;
        }
        c[idx] += w / vol;
    }
    Ok(c)
}
