//! `jko plot DIR [OTHER_DIR] --out FILE.png|FILE.svg`: one figure of a run,
//! or of two runs side by side, for a talk or a paper.
//!
//! # What is drawn
//!
//! * **Densities**, one panel (1D) or one row of panels (2D, 3D) per
//!   species, at the chosen written steps ([`PlotOptions::steps`]; by
//!   default a few evenly spaced ones, the first and the last included):
//!   - d = 1: the curves x -> rho(x), one per step, coloured from dark
//!     (early) to light (late); with a second run, its curves dashed in the
//!     same colours on the same axes;
//!   - d = 2: heat maps of rho(x, y), equal scales on both axes, on one
//!     colour scale per species (so the steps compare), with its colour bar;
//!   - d = 3: the same maps of the mid-plane slice z = (z_lo + z_hi) / 2 of
//!     the species' common box;
//!   - with a second run in 2D/3D, each step's two maps side by side.
//!
//!   A pair's titles carry the `jko compare` distances of the step shown
//!   (L1, and W2 in 1D: [`crate::compare::compare_runs_paired`], same step
//!   numbers, or each run's last step when the runs have no times in
//!   common, e.g. an equilibrium directory against a run).
//! * **Energy row**: the free energy and its non-zero parts (energy.csv)
//!   against time, `w2_step` (the transport distance of each step) and the
//!   iterations of each step. An equilibrium directory (steps 0 and 1, both
//!   at time 0) is drawn against the step and labelled initial/equilibrium.
//!
//! With `--log` ([`PlotOptions::log`]) densities are drawn on a log scale
//! over four decades below the peak, the energy as its gap to the run's
//! lowest energy (what decays), `w2_step` on a log scale.
//!
//! # How densities are estimated
//!
//! Exactly as `jko compare` does, through [`crate::compare::RunDensities`]:
//! a particle run's density is the blob estimate
//! rho(x) = sum_j w_j K_eps(x - X_j) (Wendland C2 kernel, the run's
//! bandwidth eps: the scenario's fixed one, else the solver's automatic
//! rule on the step-0 particles), reflected at the walls of a box run; a
//! grid run's (`density.csv`) is its cell values interpolated multilinearly.
//! Curves are sampled at 600 points, maps on 200 square cells along the
//! longer axis (`data.rs`), over the box where any shown density of the
//! species can be non-zero (the union over the steps and both runs; a grid
//! run's box, a cloud's bounding box padded by the kernel's support), then
//! zoomed to where some shown density exceeds 1e-3 of the largest (1e-4
//! with `--log`) when that is much smaller (a grid run's box is often
//! mostly empty). In 3D every species is cut at the same z, the middle of
//! their common box.
//!
//! Maps of one species share one colour scale (0 to the largest value
//! shown, or four decades below it with `--log`), so steps and runs compare
//! by colour; the 1D legend sits in the upper corner the curves leave
//! freer, the energy row's beside its chart.
//!
//! # Files
//!
//! `data.rs` reads the runs and the energy table and settles the steps,
//! species and distances; `density.rs` draws curves, maps and colour bars;
//! `energy.rs` the energy row; `figure.rs` lays the panels out and renders
//! PNG (encoded in memory; `raster.rs` is the bitmap backend with its text
//! laid out here) or SVG (text as text, maps embedded as PNG images);
//! `style.rs` has the embedded font (DejaVu Sans: no system font is read),
//! colours and number formats. The file is written by [`crate::io::output::replace_file`]
//! (temporary file, sync, rename; an existing file only with `force`, never
//! a file of the runs, a link or a device), checked before any work.

mod data;
mod density;
mod energy;
mod figure;
mod raster;
mod style;

use std::path::Path;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::{Cartesian2d, ChartContext, DrawingBackend};

use crate::error::{Error, Result};

/// Smallest and largest figure side in pixels.
pub const SIZE_LIMITS: (u32, u32) = (200, 8000);

/// A written step named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepChoice {
    /// The first written step.
    First,
    /// The last written step.
    Last,
    /// A step number as written in the run's files.
    Step(u64),
}

/// What to draw (the options of `jko plot`).
#[derive(Debug, Clone, Default)]
pub struct PlotOptions {
    /// The written steps to show (of the first run); `None`: evenly spaced ones.
    pub steps: Option<Vec<StepChoice>>,
    /// The species to show; `None`: all (a pair: those both runs hold).
    pub species: Option<Vec<String>>,
    /// Width and height in pixels; `None`: from the number of panels.
    pub size: Option<(u32, u32)>,
    /// Log scales for densities, energy and w2_step.
    pub log: bool,
}

/// The output format, from the file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A PNG image.
    Png,
    /// An SVG document (text kept as text).
    Svg,
}

impl Format {
    /// `.png` or `.svg` (any case), else `None`.
    pub fn of(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "png" => Some(Format::Png),
            "svg" => Some(Format::Svg),
            _ => None,
        }
    }
}

/// Parse `--steps`: a comma-separated list of written step numbers,
/// `first` and `last` (whether the steps exist is checked against the run).
pub fn parse_steps(text: &str) -> std::result::Result<Vec<StepChoice>, String> {
    let mut out = Vec::new();
    for part in text.split(',') {
        let p = part.trim();
        out.push(match p {
            "first" => StepChoice::First,
            "last" => StepChoice::Last,
            _ => StepChoice::Step(p.parse().map_err(|_| {
                format!(
                    "\"{}\" is not a step: give written step numbers, `first` or `last`, separated by commas (e.g. 0,10,last)",
                    crate::error::clip(p, 40)
                )
            })?),
        });
    }
    Ok(out)
}

/// Parse `--species`: a comma-separated list of names.
pub fn parse_species(text: &str) -> std::result::Result<Vec<String>, String> {
    let names: Vec<String> = text.split(',').map(|s| s.trim().to_string()).collect();
    if names.iter().any(String::is_empty) {
        return Err("an empty species name: give names separated by commas (e.g. u,v)".into());
    }
    Ok(names)
}

/// Parse `--size WIDTHxHEIGHT` (pixels, each within [`SIZE_LIMITS`]).
pub fn parse_size(text: &str) -> std::result::Result<(u32, u32), String> {
    let (lo, hi) = SIZE_LIMITS;
    let bad = || {
        format!(
            "\"{}\" is not a size: give WIDTHxHEIGHT in pixels, each from {lo} to {hi} (e.g. 1200x800)",
            crate::error::clip(text, 40)
        )
    };
    let (w, h) = text.trim().split_once(['x', 'X']).ok_or_else(bad)?;
    let w: u32 = w.trim().parse().map_err(|_| bad())?;
    let h: u32 = h.trim().parse().map_err(|_| bad())?;
    if !(lo..=hi).contains(&w) || !(lo..=hi).contains(&h) {
        return Err(bad());
    }
    Ok((w, h))
}

/// What a panel is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PanelKind {
    /// 1D density curves.
    Curves,
    /// A 2D map or 3D slice.
    Map,
    /// The colour bar of a species' maps.
    ColourBar,
    /// Energy and its parts against time (or step).
    Energy,
    /// `w2_step` against time.
    W2Step,
    /// Iterations per step against time.
    Iterations,
}

/// A curve of a panel, as drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesInfo {
    /// Its legend text (empty if none).
    pub label: String,
    /// Its colour (RGB).
    pub colour: [u8; 3],
    /// Drawn dashed (a pair's second run).
    pub dashed: bool,
}

/// One panel of a drawn figure: where its plotting area is in pixels and
/// which data range it shows, so a caller can find a data point's pixel.
#[derive(Debug, Clone, PartialEq)]
pub struct PanelInfo {
    /// What it shows.
    pub kind: PanelKind,
    /// Its species (density panels).
    pub species: Option<String>,
    /// Its title.
    pub title: String,
    /// The pixel columns of the plotting area's left and right edges
    /// (the data x range's ends map onto them).
    pub pixel_x: (i32, i32),
    /// The pixel rows of the data y range's bottom and top ends.
    pub pixel_y: (i32, i32),
    /// The x range shown.
    pub x_range: (f64, f64),
    /// The y range shown, in log10 units when `log_y`.
    pub y_range: (f64, f64),
    /// The y axis is log10 of the data.
    pub log_y: bool,
    /// The curves, in drawing order.
    pub series: Vec<SeriesInfo>,
}

impl PanelInfo {
    #[allow(clippy::too_many_arguments)]
    fn from_chart<DB: DrawingBackend>(
        chart: &ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
        kind: PanelKind,
        species: Option<&str>,
        title: String,
        x_range: (f64, f64),
        y_range: (f64, f64),
        log_y: bool,
        series: Vec<SeriesInfo>,
    ) -> Self {
        // plotters' own map of the range's ends.
        let lo = chart.backend_coord(&(x_range.0, y_range.0));
        let hi = chart.backend_coord(&(x_range.1, y_range.1));
        PanelInfo {
            kind,
            species: species.map(str::to_string),
            title,
            pixel_x: (lo.0, hi.0),
            pixel_y: (lo.1, hi.1),
            x_range,
            y_range,
            log_y,
            series,
        }
    }

    /// The pixel of the data point (x, y), as plotters maps it (linear
    /// between the range's end pixels, rounded down).
    pub fn to_pixel(&self, x: f64, y: f64) -> (i32, i32) {
        let y = if self.log_y { y.log10() } else { y };
        let map = |v: f64, (v0, v1): (f64, f64), (p0, p1): (i32, i32)| -> i32 {
            let f = (v - v0) / (v1 - v0);
            let len = (p1 - p0) as f64;
            if len >= 0.0 {
                p0 + (len * f + 1e-3).floor() as i32
            } else {
                p0 + (len * f - 1e-3).ceil() as i32
            }
        };
        (
            map(x, self.x_range, self.pixel_x),
            map(y, self.y_range, self.pixel_y),
        )
    }
}

/// A drawn figure: its size, its panels and what the user should know.
#[derive(Debug, Clone)]
pub struct FigureReport {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Every panel drawn, density panels first.
    pub panels: Vec<PanelInfo>,
    /// Notes (a guessed bandwidth, unpaired steps, no distance).
    pub notes: Vec<String>,
}

/// Errors while drawing into memory (a bug or an exhausted resource, not
/// the input's fault); [`render`] reports them as numerical failures.
type DrawResult<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Draw the figure of run `a` (and `b`) as `format` bytes.
pub fn render(
    a: &Path,
    b: Option<&Path>,
    opts: &PlotOptions,
    format: Format,
) -> Result<(Vec<u8>, FigureReport)> {
    let data = data::load(a, b, opts)?;
    figure::render(&data, opts, format)
}

/// `jko plot`: check `out` (extension `.png` or `.svg`; a new file, or an
/// existing regular file with `force`; never a file of the runs), draw,
/// and write the file atomically.
pub fn plot_to_file(
    a: &Path,
    b: Option<&Path>,
    out: &Path,
    opts: &PlotOptions,
    force: bool,
) -> Result<FigureReport> {
    let Some(format) = Format::of(out) else {
        return Err(Error::input(
            out,
            "--out",
            "the figure's file name must end in .png or .svg",
        ));
    };
    let inputs = data::inputs(a, b);
    crate::io::output::check_writable_target(out, &inputs, force)?;
    let (bytes, report) = render(a, b, opts, format)?;
    crate::io::output::replace_file(out, &bytes, &inputs, force)?;
    Ok(report)
}
