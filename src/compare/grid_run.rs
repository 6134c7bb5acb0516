//! A grid run's `density.csv` (SPEC §5): one row per cell center, step and
//! species. Each (step, species) must be a full regular box grid (the
//! spacing inferred per axis from the distinct centers, gaps equal to 1e-6
//! relative, every center once), every species present at every step, and
//! every frame of a species on the same grid; densities are not negative.
//!
//! Between its cell centers a frame is interpolated multilinearly; between
//! its outermost centers and its box edges it is constant; outside its box it
//! is zero.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::AXES;
use super::read::{header_index, next_record, open_csv};
use crate::error::{Error, Result};
use crate::particles::file::{parse_coordinate, parse_f64 as cell_f64, parse_u64 as cell_u64};

/// One species at one step of a grid run: a full regular box grid.
#[derive(Debug, Clone)]
pub(crate) struct GridFrame<const D: usize> {
    /// Distinct cell-center coordinates per axis, ascending.
    pub(crate) coords: [Vec<f64>; D],
    /// The spacing per axis.
    pub(crate) h: [f64; D],
    /// Densities, axis 0 fastest.
    pub(crate) rho: Vec<f64>,
}

impl<const D: usize> GridFrame<D> {
    pub(crate) fn n(&self, a: usize) -> usize {
        self.coords[a].len()
    }
    pub(super) fn cell_volume(&self) -> f64 {
        self.h.iter().product()
    }
    pub(crate) fn lower(&self, a: usize) -> f64 {
        self.coords[a][0] - 0.5 * self.h[a]
    }
    pub(super) fn upper(&self, a: usize) -> f64 {
        self.coords[a][self.n(a) - 1] + 0.5 * self.h[a]
    }
    pub(super) fn center(&self, mut lin: usize) -> [f64; D] {
        std::array::from_fn(|a| {
            let n = self.n(a);
            let i = lin % n;
            lin /= n;
            self.coords[a][i]
        })
    }

    /// Multilinear interpolation at `p`; constant between the outermost
    /// centers and the box edges, zero outside the box.
    pub(super) fn interpolate(&self, p: &[f64; D]) -> f64 {
        let mut base = [0usize; D];
        let mut frac = [0.0f64; D];
        for a in 0..D {
            let n = self.n(a);
            let tol = 1e-9 * self.h[a];
            if p[a] < self.lower(a) - tol || p[a] > self.upper(a) + tol {
                return 0.0;
            }
            let mut u = (p[a] - self.coords[a][0]) / self.h[a];
            let r = u.round();
            if (u - r).abs() < 1e-9 {
                u = r;
            }
            let u = u.clamp(0.0, (n - 1) as f64);
            let i0 = (u.floor() as usize).min(n - 2);
            base[a] = i0;
            frac[a] = u - i0 as f64;
        }
        let mut s = 0.0;
        for corner in 0..(1usize << D) {
            let mut wgt = 1.0;
            let mut lin = 0;
            let mut stride = 1;
            for a in 0..D {
                let up = (corner >> a) & 1 == 1;
                let f = if up { frac[a] } else { 1.0 - frac[a] };
                if f == 0.0 {
                    wgt = 0.0;
                    break;
                }
                wgt *= f;
                lin += (base[a] + usize::from(up)) * stride;
                stride *= self.n(a);
            }
            if wgt != 0.0 {
                s += wgt * self.rho[lin];
            }
        }
        s
    }
}

/// A grid run: per step its time, per (step, species) its frame.
pub(crate) struct GridRun<const D: usize> {
    pub(crate) file: PathBuf,
    pub(crate) times: BTreeMap<u64, f64>,
    pub(crate) frames: BTreeMap<(u64, String), GridFrame<D>>,
}

/// Read density.csv (SPEC §5) and check each (step, species) is a full regular grid.
pub(crate) fn read_grid_run<const D: usize>(file: &Path) -> Result<GridRun<D>> {
    let (mut rdr, headers) = open_csv(file)?;
    let c_step = header_index(file, &headers, "step")?;
    let c_time = header_index(file, &headers, "time")?;
    let c_species = header_index(file, &headers, "species")?;
    let c_rho = header_index(file, &headers, "density")?;
    let mut c_axes = [0usize; D];
    for (a, c) in c_axes.iter_mut().enumerate() {
        *c = header_index(file, &headers, AXES[a])?;
    }
    type Rows<const D: usize> = Vec<(u64, [f64; D], f64)>;
    let mut groups: BTreeMap<(u64, String), Rows<D>> = BTreeMap::new();
    let mut times: BTreeMap<u64, (f64, u64)> = BTreeMap::new();
    let mut rec = csv::StringRecord::new();
    while let Some(line) = next_record(file, &mut rdr, &mut rec)? {
        let cell = |c: usize| rec.get(c).unwrap_or("");
        let step = cell_u64(file, line, "step", cell(c_step))?;
        let time = cell_f64(file, line, "time", cell(c_time))?;
        let species = cell(c_species).trim();
        if species.is_empty() {
            return Err(Error::input(
                file,
                format!("line {line}, column `species`"),
                "empty species name",
            ));
        }
        let mut x = [0.0; D];
        for a in 0..D {
            x[a] = parse_coordinate(file, line, AXES[a], cell(c_axes[a]))?;
        }
        let rho = cell_f64(file, line, "density", cell(c_rho))?;
        if rho < 0.0 {
            return Err(Error::input(
                file,
                format!("line {line}, column `density`"),
                format!("{rho}: a density cannot be negative"),
            ));
        }
        let (t0, l0) = *times.entry(step).or_insert((time, line));
        if t0 != time {
            return Err(Error::input(
                file,
                format!("line {line}, column `time`"),
                format!("step {step} has time {time} here but {t0} on line {l0}"),
            ));
        }
        groups
            .entry((step, species.to_string()))
            .or_default()
            .push((line, x, rho));
    }
    if groups.is_empty() {
        return Err(Error::input(
            file,
            "rows",
            "no density rows (the file is empty or has only a header)",
        ));
    }
    let mut frames = BTreeMap::new();
    for ((step, species), rows) in groups {
        let frame = build_grid_frame::<D>(file, step, &species, &rows)?;
        frames.insert((step, species), frame);
    }
    check_grid_frames(file, &frames)?;
    Ok(GridRun {
        file: file.to_path_buf(),
        times: times.into_iter().map(|(s, (t, _))| (s, t)).collect(),
        frames,
    })
}

/// Every species at every step of the file, on the same grid: a file cut
/// short in its last frame can still hold a full (smaller) box there.
fn check_grid_frames<const D: usize>(
    file: &Path,
    frames: &BTreeMap<(u64, String), GridFrame<D>>,
) -> Result<()> {
    let steps: BTreeSet<u64> = frames.keys().map(|(s, _)| *s).collect();
    let species: BTreeSet<&str> = frames.keys().map(|(_, sp)| sp.as_str()).collect();
    let dims = |g: &GridFrame<D>| -> String {
        let n: Vec<String> = g.coords.iter().map(|c| c.len().to_string()).collect();
        format!("{} cells ({})", g.rho.len(), n.join(" x "))
    };
    for sp in species {
        let mut first: Option<(u64, &GridFrame<D>)> = None;
        for &step in &steps {
            let Some(g) = frames.get(&(step, sp.to_string())) else {
                return Err(Error::input(
                    file,
                    format!("step {step}"),
                    format!(
                        "no rows for species \"{sp}\" at step {step}, though the file has it at other steps: the frame is incomplete (was the file cut short?)"
                    ),
                ));
            };
            match first {
                None => first = Some((step, g)),
                Some((s0, g0)) => {
                    if !same_grid(g, g0) {
                        return Err(Error::input(
                            file,
                            format!("step {step}"),
                            format!(
                                "species \"{sp}\" has {} at step {step} but {} at step {s0}: every frame of a grid run covers the same grid (was the file cut short?)",
                                dims(g),
                                dims(g0)
                            ),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// The same cell centers, up to the tolerance of [`build_grid_frame`]'s regularity check.
fn same_grid<const D: usize>(g: &GridFrame<D>, g0: &GridFrame<D>) -> bool {
    (0..D).all(|a| {
        g.coords[a].len() == g0.coords[a].len()
            && g.coords[a]
                .iter()
                .zip(&g0.coords[a])
                .all(|(x, y)| (x - y).abs() <= 1e-6 * g0.h[a])
    })
}

/// The frame of one (step, species) from its rows (line, center, density).
fn build_grid_frame<const D: usize>(
    file: &Path,
    step: u64,
    species: &str,
    rows: &[(u64, [f64; D], f64)],
) -> Result<GridFrame<D>> {
    let what = format!("step {step}, species \"{species}\"");
    let mut coords: [Vec<f64>; D] = std::array::from_fn(|_| Vec::new());
    let mut h = [0.0; D];
    for a in 0..D {
        let mut c: Vec<f64> = rows.iter().map(|r| r.1[a]).collect();
        c.sort_by(f64::total_cmp);
        c.dedup();
        let n = c.len();
        if n < 2 {
            return Err(Error::input(
                file,
                format!("column `{}`", AXES[a]),
                format!(
                    "{what}: a single cell center along {} ({}): cannot infer the grid spacing",
                    AXES[a], c[0]
                ),
            ));
        }
        let step_h = (c[n - 1] - c[0]) / (n - 1) as f64;
        for k in 1..n {
            let gap = c[k] - c[k - 1];
            if (gap - step_h).abs() > 1e-6 * step_h {
                return Err(Error::input(
                    file,
                    format!("column `{}`", AXES[a]),
                    format!(
                        "{what}: the cell centers are not a regular grid: the gap between {} = {} and {} is {gap}, but the mean spacing is {step_h}",
                        AXES[a],
                        c[k - 1],
                        c[k]
                    ),
                ));
            }
        }
        h[a] = step_h;
        coords[a] = c;
    }
    let total: usize = coords.iter().map(Vec::len).product();
    let mut rho = vec![f64::NAN; total];
    let mut seen_line = vec![0u64; total];
    for (line, x, v) in rows {
        let mut lin = 0;
        let mut stride = 1;
        for a in 0..D {
            let i = coords[a]
                .binary_search_by(|c| c.total_cmp(&x[a]))
                .expect("every coordinate is in the list");
            lin += i * stride;
            stride *= coords[a].len();
        }
        if seen_line[lin] != 0 {
            return Err(Error::input(
                file,
                format!("line {line}"),
                format!(
                    "{what}: cell center {:?} appears twice (also on line {})",
                    x, seen_line[lin]
                ),
            ));
        }
        seen_line[lin] = *line;
        rho[lin] = *v;
    }
    if rows.len() != total {
        let dims: Vec<String> = coords.iter().map(|c| c.len().to_string()).collect();
        return Err(Error::input(
            file,
            "rows",
            format!(
                "{what}: {} rows, but the cell centers span a {} box grid of {total} cells: the grid is not a full box",
                rows.len(),
                dims.join(" x ")
            ),
        ));
    }
    Ok(GridFrame { coords, h, rho })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_reproduces_centers_and_is_zero_outside() {
        let g = GridFrame::<2> {
            coords: [vec![0.5, 1.5, 2.5], vec![0.5, 1.5]],
            h: [1.0, 1.0],
            rho: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        };
        assert_eq!(g.interpolate(&[1.5, 1.5]), 5.0);
        assert_eq!(g.interpolate(&[2.0, 0.5]), 2.5);
        assert_eq!(g.interpolate(&[0.1, 0.2]), 1.0);
        assert_eq!(g.interpolate(&[3.1, 0.5]), 0.0);
        assert_eq!(g.interpolate(&[1.0, 1.0]), 3.0);
    }
}
