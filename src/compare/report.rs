//! What a comparison hands back: the terminal table (`Display`), the CSV
//! table (one row per common step and species, floats in shortest
//! round-trip form) and its writing to `--out`, which never replaces a file
//! of the compared runs ([`protected_paths`]), a link, a device, a FIFO or a
//! directory.

use std::fmt;
use std::path::{Path, PathBuf};

use super::{AXES, Comparison, RunInfo};
use crate::error::Result;
use crate::io::output::{DENSITY, ENERGY, EVENTS, PARTIAL_SUFFIX, PARTICLES, SCENARIO_COPY};

/// Every path a comparison of the run directories `a` and `b` reads or that
/// belongs to those runs: their run files (`particles.csv`, `density.csv`,
/// `energy.csv`, `events.csv`, `scenario.toml`, checkpoints and their
/// parts, lock and `.partial` files), whether they exist or not, and every file in `a` or
/// `b` whose name starts with one of those names. `--out` may be none of them.
pub fn protected_paths(a: &Path, b: &Path) -> Vec<PathBuf> {
    const NAMES: [&str; 7] = [
        PARTICLES,
        DENSITY,
        ENERGY,
        EVENTS,
        SCENARIO_COPY,
        "checkpoint.jko",
        "checkpoint.prev.jko",
    ];
    let mut out = Vec::new();
    for dir in [a, b] {
        for name in NAMES {
            out.push(dir.join(name));
            out.push(dir.join(format!("{name}{PARTIAL_SUFFIX}")));
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            let run_file = NAMES.iter().any(|n| name.starts_with(n))
                || [PARTIAL_SUFFIX, ".jko", ".lock"]
                    .iter()
                    .any(|s| name.ends_with(s));
            if run_file {
                out.push(e.path());
            }
        }
        // The parts of divided checkpoints (MPI).
        let parts = dir.join(crate::io::checkpoint::PARTS_DIR);
        if let Ok(entries) = std::fs::read_dir(&parts) {
            out.extend(entries.flatten().map(|e| e.path()));
        }
        out.push(parts);
    }
    out
}

/// Check before comparing that `--out PATH` may be written
/// ([`crate::io::output::check_writable_target`] with the runs' files as inputs).
pub fn check_out_path(a: &Path, b: &Path, out: &Path, force: bool) -> Result<()> {
    crate::io::output::check_writable_target(out, &protected_paths(a, b), force)
}

impl Comparison {
    /// Header of [`Comparison::to_csv`] in dimension `d`.
    ///
    /// Columns, one row per common written step and common species
    /// (`A`, `B` the first and second run; empty cells mean "not defined"):
    ///
    /// | column | meaning |
    /// |---|---|
    /// | `step`, `time`, `species` | the written step, its time, the species' name |
    /// | `mass_a`, `mass_b`, `mass_diff` | total masses and mass_a - mass_b |
    /// | `mean_a_x`.., `mean_b_x`.., `mean_diff_x`.. | means per axis (x, y, z as the dimension has) and mean_a - mean_b |
    /// | `mean_distance` | \|mean_a - mean_b\| |
    /// | `cov_a_xx`, `cov_a_xy`, .. | covariance of A's normalized law, upper triangle (xx, xy, xz, yy, yz, zz as present); same for `cov_b_*` |
    /// | `cov_distance` | Frobenius norm of cov_a - cov_b (full matrix) |
    /// | `l1` | int \|rho_A - rho_B\| dx on the common grid |
    /// | `l1_cells_x`.., `l1_spacing_x`.. | that grid's cells and spacing per axis |
    /// | `w1`, `w2` | Wasserstein distances of the normalized laws (d = 1 only, else empty) |
    /// | `normalized` | `true` when the masses differ (relative > 1e-9), so W1/W2 compared normalized laws |
    /// | `bandwidth_a`, `bandwidth_b` | kernel eps of a particle side (empty for a grid side) |
    /// | `energy_a`, `energy_b`, `energy_diff` | total energies at the step from energy.csv and their difference (empty if a file lacks the step) |
    pub fn csv_header(d: usize) -> Vec<String> {
        let ax = &AXES[..d];
        let mut h: Vec<String> = ["step", "time", "species", "mass_a", "mass_b", "mass_diff"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for pre in ["mean_a", "mean_b", "mean_diff"] {
            h.extend(ax.iter().map(|a| format!("{pre}_{a}")));
        }
        h.push("mean_distance".into());
        for pre in ["cov_a", "cov_b"] {
            for i in 0..d {
                for j in i..d {
                    h.push(format!("{pre}_{}{}", ax[i], ax[j]));
                }
            }
        }
        h.push("cov_distance".into());
        h.push("l1".into());
        h.extend(ax.iter().map(|a| format!("l1_cells_{a}")));
        h.extend(ax.iter().map(|a| format!("l1_spacing_{a}")));
        for s in [
            "w1",
            "w2",
            "normalized",
            "bandwidth_a",
            "bandwidth_b",
            "energy_a",
            "energy_b",
            "energy_diff",
        ] {
            h.push(s.into());
        }
        h
    }

    /// The CSV text (columns: see [`Comparison::csv_header`]); floats in
    /// shortest round-trip form.
    pub fn to_csv(&self) -> String {
        let d = self.dimension;
        let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
        let mut buf = ryu::Buffer::new();
        let mut f = |v: f64| -> String { buf.format(v).to_string() };
        let opt = |v: Option<f64>, f: &mut dyn FnMut(f64) -> String| v.map(f).unwrap_or_default();
        w.write_record(Self::csv_header(d)).expect("in memory");
        for r in &self.rows {
            let mut rec: Vec<String> = vec![
                r.step.to_string(),
                f(r.time),
                r.species.clone(),
                f(r.mass_a),
                f(r.mass_b),
                f(r.mass_a - r.mass_b),
            ];
            rec.extend(r.mean_a.iter().map(|&v| f(v)));
            rec.extend(r.mean_b.iter().map(|&v| f(v)));
            rec.extend(r.mean_a.iter().zip(&r.mean_b).map(|(&x, &y)| f(x - y)));
            rec.push(f(r.mean_distance));
            for c in [&r.cov_a, &r.cov_b] {
                for i in 0..d {
                    for j in i..d {
                        rec.push(f(c[i * d + j]));
                    }
                }
            }
            rec.push(f(r.cov_distance));
            rec.push(f(r.l1));
            rec.extend(r.l1_cells.iter().map(|n| n.to_string()));
            rec.extend(r.l1_spacing.iter().map(|&v| f(v)));
            rec.push(opt(r.w1, &mut f));
            rec.push(opt(r.w2, &mut f));
            rec.push(r.normalized.to_string());
            rec.push(opt(self.a.bandwidths.get(&r.species).copied(), &mut f));
            rec.push(opt(self.b.bandwidths.get(&r.species).copied(), &mut f));
            rec.push(opt(r.energy_a, &mut f));
            rec.push(opt(r.energy_b, &mut f));
            rec.push(opt(r.energy_diff(), &mut f));
            w.write_record(&rec).expect("in memory");
        }
        String::from_utf8(w.into_inner().expect("in memory")).expect("UTF-8")
    }

    /// Write [`Comparison::to_csv`] to `path` atomically (temporary file,
    /// sync, rename), replacing an existing regular file; never over a link,
    /// a device, a FIFO or a file of the compared runs
    /// ([`crate::io::output::replace_file`]).
    pub fn write_csv(&self, path: &Path) -> Result<()> {
        self.write_csv_with(path, true)
    }

    /// [`Comparison::write_csv`], replacing an existing file only if `force`
    /// (what `jko compare --out PATH [--force]` does).
    pub fn write_csv_with(&self, path: &Path, force: bool) -> Result<()> {
        let inputs = protected_paths(&self.a.dir, &self.b.dir);
        crate::io::output::replace_file(path, self.to_csv().as_bytes(), &inputs, force)
    }

    /// Largest |energy_A - energy_B| over the common steps of the energy files.
    pub fn max_energy_diff(&self) -> Option<f64> {
        self.energy
            .iter()
            .map(|e| e.diff().abs())
            .fold(None, |m, v| Some(m.map_or(v, |m: f64| m.max(v))))
    }
}

fn describe(f: &mut fmt::Formatter<'_>, label: &str, r: &RunInfo) -> fmt::Result {
    write!(f, "{label}: {} ({} run", r.dir.display(), r.kind)?;
    if !r.bandwidths.is_empty() {
        let bw: Vec<String> = r
            .bandwidths
            .iter()
            .map(|(s, e)| format!("{s}: {e:.4e}"))
            .collect();
        write!(f, ", kernel eps {}", bw.join(", "))?;
    }
    writeln!(f, ")")
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        describe(f, "A", &self.a)?;
        describe(f, "B", &self.b)?;
        let blank = |v: Option<f64>| v.map(|v| format!("{v:.4e}")).unwrap_or_default();
        let header = [
            "step", "time", "species", "mass A", "mass B", "|dmean|", "|dcov|_F", "L1", "W1", "W2",
            "dE",
        ];
        let mut table: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
        for r in &self.rows {
            let star = if r.normalized && r.w1.is_some() {
                "*"
            } else {
                ""
            };
            table.push(vec![
                r.step.to_string(),
                format!("{:.6}", r.time),
                r.species.clone(),
                format!("{:.6}", r.mass_a),
                format!("{:.6}", r.mass_b),
                format!("{:.4e}", r.mean_distance),
                format!("{:.4e}", r.cov_distance),
                format!("{:.4e}", r.l1),
                r.w1.map(|v| format!("{v:.4e}{star}")).unwrap_or_default(),
                r.w2.map(|v| format!("{v:.4e}{star}")).unwrap_or_default(),
                blank(r.energy_diff()),
            ]);
        }
        let widths: Vec<usize> = (0..header.len())
            .map(|c| {
                table
                    .iter()
                    .map(|row| row[c].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in &table {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(c, (s, w))| {
                    if c == 2 {
                        format!("{s:<w$}")
                    } else {
                        format!("{s:>w$}")
                    }
                })
                .collect();
            writeln!(f, "{}", cells.join("  ").trim_end())?;
        }
        if let Some(m) = self.max_energy_diff() {
            writeln!(
                f,
                "energy: {} common steps, max |E_A - E_B| = {m:.4e}",
                self.energy.len()
            )?;
        }
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A divided checkpoint's folder and parts are a run's files: `--out`
    /// may not name them.
    #[test]
    fn the_parts_of_a_divided_checkpoint_are_protected() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        let parts = a.join(crate::io::checkpoint::PARTS_DIR);
        std::fs::create_dir_all(&parts).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(parts.join("a-0.jko"), b"part").unwrap();
        let protected = protected_paths(&a, &b);
        assert!(protected.contains(&parts.join("a-0.jko")), "{protected:?}");
        assert!(protected.contains(&parts));
        assert!(check_out_path(&a, &b, &parts.join("a-0.jko"), true).is_err());
    }
}
