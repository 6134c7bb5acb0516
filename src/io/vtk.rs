//! ParaView output: VTK XML files (the "serial XML formats" of the VTK file
//! format documentation, version 1.0), written by hand: the three layouts
//! jko needs are short, and the crate that writes them (vtkio) is still a
//! release candidate. The tests read every layout back with VTK's own
//! readers (python/tests/test_vtk.py).
//!
//! - `.vtp` (PolyData), one per written step of a particle run: every
//!   particle is a point (coordinates padded with zeros to 3D) and a vertex
//!   cell, with point data `species` (Int32: the species' index in the
//!   scenario; the names are in the file's `species_names` field data and
//!   in a comment), `id` (Int64), `weight` and `density` (Float64, the blob
//!   density of the particle's own species, as in particles.csv), and field
//!   data `TimeValue`.
//! - `.vti` (ImageData), one per written step of a grid run: the grid's
//!   cells as VTK cells (origin the grid's lower corner, spacing the cell
//!   size, absent axes of extent 0), with one Float64 cell array per species
//!   named after it (in name order), holding its density (x fastest, as in
//!   density.csv).
//! - `.pvd` (a ParaView collection): the time series, `timestep` the
//!   step's time; where two steps share a time (an equilibrium's steps 0
//!   and 1 at time 0), the step number instead, so ParaView keeps both.
//!
//! Numbers are ASCII, shortest round-trip (ryu), so the files hold the exact
//! doubles of the CSVs. Every file is written whole (temporary file, sync,
//! rename): ParaView never sees half a frame.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::io::output::write_atomic;
use crate::util::grid::Grid;

/// The folder of a run directory that holds its VTK files.
pub const VTK_DIR: &str = "vtk";
/// The time series of a particle run, in [`VTK_DIR`].
pub const PARTICLES_PVD: &str = "particles.pvd";
/// The time series of a grid run, in [`VTK_DIR`].
pub const DENSITY_PVD: &str = "density.pvd";

/// One written step of a particle run.
#[derive(Debug, Clone, Copy)]
pub struct PointFrame<'a> {
    /// The step's time.
    pub time: f64,
    /// The dimension d (1, 2 or 3).
    pub dimension: usize,
    /// Positions, `d` numbers per particle.
    pub positions: &'a [f64],
    /// Species index of each particle (into `species_names`).
    pub species: &'a [u32],
    /// Particle id within its species.
    pub ids: &'a [u64],
    /// Weights w_i.
    pub weights: &'a [f64],
    /// Blob density of each particle's own species.
    pub density: &'a [f64],
    /// The species' names, in scenario order.
    pub species_names: &'a [String],
}

/// One written step of a grid run.
#[derive(Debug, Clone, Copy)]
pub struct ImageFrame<'a> {
    /// The step's time.
    pub time: f64,
    /// The grid: VTK's image origin is its lower corner, its spacing the
    /// cells' widths, its extent the cells per axis.
    pub grid: &'a Grid,
    /// (species name, cell densities, axis 0 fastest).
    pub arrays: &'a [(&'a str, &'a [f64])],
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 has no way to write most control characters.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// Appends `values` separated by spaces, in lines of `per_line`.
fn floats(out: &mut String, values: impl Iterator<Item = f64>, per_line: usize) {
    let mut buf = ryu::Buffer::new();
    for (k, v) in values.enumerate() {
        out.push(if k % per_line == 0 { '\n' } else { ' ' });
        out.push_str(if v.is_finite() {
            buf.format_finite(v)
        } else if v.is_nan() {
            "nan"
        } else if v > 0.0 {
            "inf"
        } else {
            "-inf"
        });
    }
    out.push('\n');
}

fn ints(out: &mut String, values: impl Iterator<Item = u64>, per_line: usize) {
    let mut buf = itoa::Buffer::new();
    for (k, v) in values.enumerate() {
        out.push(if k % per_line == 0 { '\n' } else { ' ' });
        out.push_str(buf.format(v));
    }
    out.push('\n');
}

const HEADER: &str = "<?xml version=\"1.0\"?>\n";

fn time_field(out: &mut String, time: f64, extra: &str) {
    let mut buf = ryu::Buffer::new();
    let _ = write!(
        out,
        "    <FieldData>\n      <DataArray type=\"Float64\" Name=\"TimeValue\" NumberOfTuples=\"1\" format=\"ascii\">{}</DataArray>\n{extra}    </FieldData>\n",
        buf.format(time)
    );
}

/// The text of a `.vtp` file for one particle frame.
pub fn vtp_text(f: &PointFrame<'_>) -> String {
    let n = f.weights.len();
    let d = f.dimension;
    let mut out = String::with_capacity(64 * n + 1024);
    out.push_str(HEADER);
    let names: Vec<String> = f.species_names.iter().map(|s| escape(s)).collect();
    let legend: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(k, s)| format!("{k} = {}", s.replace("--", "- -")))
        .collect();
    let _ = writeln!(
        out,
        "<!-- jko particles; species: {} -->",
        legend.join(", ")
    );
    out.push_str("<VTKFile type=\"PolyData\" version=\"1.0\" byte_order=\"LittleEndian\" header_type=\"UInt64\">\n  <PolyData>\n");
    // The names as an ASCII string array: each string's bytes, then a 0.
    let mut name_bytes = String::new();
    let bytes: Vec<u64> = f
        .species_names
        .iter()
        .flat_map(|s| s.bytes().map(u64::from).chain(std::iter::once(0)))
        .collect();
    ints(&mut name_bytes, bytes.iter().copied(), 32);
    let extra = format!(
        "      <DataArray type=\"String\" Name=\"species_names\" NumberOfTuples=\"{}\" format=\"ascii\">{name_bytes}      </DataArray>\n",
        f.species_names.len()
    );
    time_field(&mut out, f.time, &extra);
    let _ = writeln!(
        out,
        "    <Piece NumberOfPoints=\"{n}\" NumberOfVerts=\"{n}\" NumberOfLines=\"0\" NumberOfStrips=\"0\" NumberOfPolys=\"0\">"
    );
    out.push_str("      <PointData Scalars=\"density\">\n");
    out.push_str("        <DataArray type=\"Int32\" Name=\"species\" format=\"ascii\">");
    ints(&mut out, f.species.iter().map(|&s| u64::from(s)), 16);
    out.push_str("        </DataArray>\n");
    out.push_str("        <DataArray type=\"Int64\" Name=\"id\" format=\"ascii\">");
    ints(&mut out, f.ids.iter().copied(), 16);
    out.push_str("        </DataArray>\n");
    out.push_str("        <DataArray type=\"Float64\" Name=\"weight\" format=\"ascii\">");
    floats(&mut out, f.weights.iter().copied(), 8);
    out.push_str("        </DataArray>\n");
    out.push_str("        <DataArray type=\"Float64\" Name=\"density\" format=\"ascii\">");
    floats(&mut out, f.density.iter().copied(), 8);
    out.push_str("        </DataArray>\n      </PointData>\n");
    out.push_str("      <Points>\n        <DataArray type=\"Float64\" Name=\"Points\" NumberOfComponents=\"3\" format=\"ascii\">");
    let padded = (0..n).flat_map(|i| (0..3).map(move |a| if a < d { Some((i, a)) } else { None }));
    floats(
        &mut out,
        padded.map(|ia| ia.map_or(0.0, |(i, a)| f.positions[i * d + a])),
        9,
    );
    out.push_str("        </DataArray>\n      </Points>\n      <Verts>\n");
    out.push_str("        <DataArray type=\"Int64\" Name=\"connectivity\" format=\"ascii\">");
    ints(&mut out, 0..n as u64, 16);
    out.push_str("        </DataArray>\n");
    out.push_str("        <DataArray type=\"Int64\" Name=\"offsets\" format=\"ascii\">");
    ints(&mut out, 1..=n as u64, 16);
    out.push_str("        </DataArray>\n      </Verts>\n    </Piece>\n  </PolyData>\n</VTKFile>\n");
    out
}

/// The text of a `.vti` file for one grid frame.
pub fn vti_text(f: &ImageFrame<'_>) -> String {
    let (d, cells) = (f.grid.dim(), f.grid.cells());
    let mut buf = ryu::Buffer::new();
    let mut extent = String::new();
    let mut origin = Vec::new();
    let mut spacing = Vec::new();
    for a in 0..3 {
        let n = cells.get(a).copied().unwrap_or(0);
        let _ = write!(extent, "{}0 {n}", if a > 0 { " " } else { "" });
        origin.push(if a < d {
            buf.format(f.grid.lower()[a]).to_string()
        } else {
            "0".into()
        });
        spacing.push(if a < d {
            buf.format(f.grid.spacing(a)).to_string()
        } else {
            "1".into()
        });
    }
    let cells = f.grid.len();
    let mut out = String::with_capacity(24 * cells * f.arrays.len() + 1024);
    out.push_str(HEADER);
    out.push_str("<VTKFile type=\"ImageData\" version=\"1.0\" byte_order=\"LittleEndian\" header_type=\"UInt64\">\n");
    let _ = writeln!(
        out,
        "  <ImageData WholeExtent=\"{extent}\" Origin=\"{}\" Spacing=\"{}\" Direction=\"1 0 0 0 1 0 0 0 1\">",
        origin.join(" "),
        spacing.join(" ")
    );
    time_field(&mut out, f.time, "");
    let _ = writeln!(out, "    <Piece Extent=\"{extent}\">");
    out.push_str("      <PointData>\n      </PointData>\n");
    // By name: a run (scenario order) and an export (density.csv) agree.
    let mut arrays: Vec<&(&str, &[f64])> = f.arrays.iter().collect();
    arrays.sort_by(|a, b| a.0.cmp(b.0));
    let first = arrays.first().map_or(String::new(), |(n, _)| escape(n));
    let _ = writeln!(out, "      <CellData Scalars=\"{first}\">");
    for (name, rho) in arrays {
        let _ = write!(
            out,
            "        <DataArray type=\"Float64\" Name=\"{}\" format=\"ascii\">",
            escape(name)
        );
        floats(&mut out, rho.iter().copied(), 8);
        out.push_str("        </DataArray>\n");
    }
    out.push_str("      </CellData>\n    </Piece>\n  </ImageData>\n</VTKFile>\n");
    out
}

/// The text of a `.pvd` collection of `(step, time, file name)`.
pub fn pvd_text(entries: &[(u64, f64, String)]) -> String {
    let times_repeat = entries.windows(2).any(|w| w[1].1 <= w[0].1);
    let mut buf = ryu::Buffer::new();
    let mut out = String::from(HEADER);
    if times_repeat {
        out.push_str("<!-- steps share a time: timestep is the step number -->\n");
    }
    out.push_str("<VTKFile type=\"Collection\" version=\"1.0\" byte_order=\"LittleEndian\">\n  <Collection>\n");
    for (step, time, file) in entries {
        let t = if times_repeat { *step as f64 } else { *time };
        let _ = writeln!(
            out,
            "    <DataSet timestep=\"{}\" group=\"\" part=\"0\" file=\"{}\"/>",
            buf.format(t),
            escape(file)
        );
    }
    out.push_str("  </Collection>\n</VTKFile>\n");
    out
}

/// Name of the `.vtp` file of a particle run's step.
pub fn vtp_name(step: u64) -> String {
    format!("particles_{step:06}.vtp")
}

/// Name of the `.vti` file of a grid run's step.
pub fn vti_name(step: u64) -> String {
    format!("density_{step:06}.vti")
}

/// The VTK series of a run directory: `DIR/vtk/`, one file per written step
/// and the `.pvd` that lists them, rewritten after each.
#[derive(Debug)]
pub struct VtkSeries {
    dir: PathBuf,
    pvd: &'static str,
    entries: Vec<(u64, f64, String)>,
}

impl VtkSeries {
    /// The series of `run_dir` (created if missing), already holding the
    /// frames `earlier` (step, time) of a resumed run.
    pub fn open(run_dir: &Path, grid: bool, earlier: &[(u64, f64)]) -> Result<Self> {
        Self::open_at(&run_dir.join(VTK_DIR), grid, earlier)
    }

    /// The same in the folder `dir` itself.
    pub fn open_at(dir: &Path, grid: bool, earlier: &[(u64, f64)]) -> Result<Self> {
        let dir = dir.to_path_buf();
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::io(
                    &dir,
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "is not a directory, where the run writes its VTK files: remove or rename it",
                    ),
                ));
            }
            Err(_) if crate::io::output::following() => {}
            Err(_) => std::fs::create_dir(&dir).map_err(|e| Error::io(&dir, e))?,
        }
        let name = if grid { vti_name } else { vtp_name };
        Ok(VtkSeries {
            dir,
            pvd: if grid { DENSITY_PVD } else { PARTICLES_PVD },
            entries: earlier.iter().map(|&(s, t)| (s, t, name(s))).collect(),
        })
    }

    fn add(&mut self, step: u64, time: f64, file: String, text: &str) -> Result<()> {
        write_atomic(&self.dir.join(&file), text.as_bytes())?;
        self.entries.retain(|e| e.0 < step);
        self.entries.push((step, time, file));
        write_atomic(&self.dir.join(self.pvd), pvd_text(&self.entries).as_bytes())
    }

    /// Write a particle frame of step `step` and list it.
    pub fn particles(&mut self, step: u64, f: &PointFrame<'_>) -> Result<()> {
        self.add(step, f.time, vtp_name(step), &vtp_text(f))
    }

    /// Write a grid frame of step `step` and list it.
    pub fn grid(&mut self, step: u64, f: &ImageFrame<'_>) -> Result<()> {
        self.add(step, f.time, vti_name(step), &vti_text(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame<'a>(pos: &'a [f64], names: &'a [String]) -> PointFrame<'a> {
        PointFrame {
            time: 0.25,
            dimension: 2,
            positions: pos,
            species: &[0, 1],
            ids: &[0, 0],
            weights: &[0.5, 0.5],
            density: &[1.0, 2.0],
            species_names: names,
        }
    }

    #[test]
    fn vtp_pads_to_three_dimensions_and_escapes_names() {
        let names = vec!["u<&>".to_string(), "v".to_string()];
        let t = vtp_text(&frame(&[0.1, 0.2, -0.3, 1e-300], &names));
        assert!(t.contains("NumberOfPoints=\"2\""));
        assert!(t.contains("\n0.1 0.2 0.0 -0.3 1e-300 0.0\n"), "{t}");
        assert!(t.contains("u&lt;&amp;&gt;") && !t.contains("u<&>"));
        assert!(t.contains("\n0 1\n"), "offsets/connectivity: {t}");
        assert!(t.contains("\n1 2\n"));
    }

    #[test]
    fn vti_has_cell_extents_and_flat_axes() {
        let rho = [1.0, 2.0, 3.0];
        let arrays = [("u", &rho[..])];
        let t = vti_text(&ImageFrame {
            time: 1.0,
            grid: &Grid::from_spacing(vec![-1.0], vec![0.5], vec![3]),
            arrays: &arrays,
        });
        assert!(t.contains("WholeExtent=\"0 3 0 0 0 0\""), "{t}");
        assert!(t.contains("Origin=\"-1.0 0 0\" Spacing=\"0.5 1 1\""), "{t}");
        assert!(t.contains("\n1.0 2.0 3.0\n"));
    }

    #[test]
    fn pvd_uses_step_numbers_when_times_repeat() {
        let e = vec![(0, 0.0, "a".to_string()), (1, 0.0, "b".to_string())];
        let t = pvd_text(&e);
        assert!(
            t.contains("timestep=\"1.0\" group=\"\" part=\"0\" file=\"b\""),
            "{t}"
        );
        let e = vec![(0, 0.0, "a".to_string()), (10, 0.5, "b".to_string())];
        assert!(pvd_text(&e).contains("timestep=\"0.5\""));
    }
}
