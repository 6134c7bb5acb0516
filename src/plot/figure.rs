//! The figure's layout and its rendering: a title line, the density panels
//! (1D: one panel per species, up to three in a row; 2D/3D: one row of maps
//! per species, its colour bar at the end) and the energy row at the
//! bottom. PNG is rendered into memory and encoded there; SVG keeps its
//! text as text and embeds each map as a PNG image.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::data::{Frame, PlotData, frame, sample_grid, species_box};
use super::density::{
    Curves, Map, draw_colour_bar, draw_curves, draw_map, frames_max, value_range,
};
use super::energy::draw_energy_row;
use super::raster::Raster;
use super::style::{Fonts, fmt_num, font, register_font};
use super::{DrawResult, FigureReport, Format, PanelInfo, PlotOptions};
use crate::error::{Error, Result};
use crate::util::grid::Grid;

/// One species' data, sampled.
struct SpeciesFrames {
    name: String,
    grid: Grid,
    a: Vec<Frame>,
    b: Option<Vec<Frame>>,
}

/// Sample every shown density (the slow part, done before any drawing).
fn sample(data: &PlotData, log: bool) -> Result<Vec<SpeciesFrames>> {
    let mut boxes = Vec::new();
    for sp in &data.species {
        let Some(b) = species_box(data, sp) else {
            return Err(Error::input(
                data.a.densities.data_file(),
                "--species",
                format!("species \"{sp}\" has no frame with a non-empty extent at the steps shown"),
            ));
        };
        boxes.push(b);
    }
    if data.dimension == 3 {
        // One slice for all species: the mid-plane of their common box.
        let zlo = boxes.iter().map(|b| b.0[2]).fold(f64::INFINITY, f64::min);
        let zhi = boxes
            .iter()
            .map(|b| b.1[2])
            .fold(f64::NEG_INFINITY, f64::max);
        for b in &mut boxes {
            (b.0[2], b.1[2]) = (zlo, zhi);
        }
    }
    let mut out = Vec::new();
    for (sp, (lo, hi)) in data.species.iter().zip(boxes) {
        let mut grid = sample_grid(&lo, &hi);
        let (mut a, mut b) = frames_on(data, sp, &grid)?;
        // A grid run's box, or a cloud's padded bounding box, can be much
        // larger than where the density shows: zoom to that part.
        let floor = if log { 1e-4 } else { 1e-3 };
        if let Some((clo, chi)) = visible_box(&grid, a.iter().chain(b.iter().flatten()), floor) {
            let shrinks = (0..lo.len().min(2)).any(|k| chi[k] - clo[k] < 0.85 * (hi[k] - lo[k]));
            if shrinks {
                grid = sample_grid(&clo, &chi);
                (a, b) = frames_on(data, sp, &grid)?;
            }
        }
        out.push(SpeciesFrames {
            name: sp.clone(),
            grid,
            a,
            b,
        });
    }
    Ok(out)
}

/// The frames of `sp` at the shown steps on `grid`: A's, and B's for a pair.
fn frames_on(data: &PlotData, sp: &str, grid: &Grid) -> Result<(Vec<Frame>, Option<Vec<Frame>>)> {
    let mut a = Vec::new();
    let mut b = data.b.as_ref().map(|_| Vec::new());
    for &(s, t) in &data.steps {
        a.push(frame(data, false, s, t, sp, grid)?);
        if let Some(b) = &mut b {
            b.push(frame(data, true, s, t, sp, grid)?);
        }
    }
    Ok((a, b))
}

/// The box (x, and y for maps) of the cells where some frame exceeds
/// `floor` times the largest value, padded by 4 % a side and kept inside
/// the grid; other axes (a 3D slice's z) unchanged.
fn visible_box<'a>(
    grid: &Grid,
    frames: impl Iterator<Item = &'a Frame> + Clone,
    floor: f64,
) -> Option<(Vec<f64>, Vec<f64>)> {
    let max = frames_max(frames.clone());
    if max <= 0.0 {
        return None;
    }
    let thr = floor * max;
    let axes = grid.dim().min(2);
    let mut imin = vec![usize::MAX; axes];
    let mut imax = vec![0usize; axes];
    for v in frames.filter_map(|f| f.values.as_ref()) {
        for (lin, &r) in v.iter().enumerate() {
            if r > thr {
                let mut rem = lin;
                for k in 0..axes {
                    let i = rem % grid.cells()[k];
                    rem /= grid.cells()[k];
                    imin[k] = imin[k].min(i);
                    imax[k] = imax[k].max(i);
                }
            }
        }
    }
    if imin.contains(&usize::MAX) {
        return None;
    }
    let mut lo = grid.lower().to_vec();
    let mut hi = grid.upper().to_vec();
    for k in 0..axes {
        let (l, h) = (
            grid.lower()[k] + imin[k] as f64 * grid.spacing(k),
            grid.lower()[k] + (imax[k] + 1) as f64 * grid.spacing(k),
        );
        let pad = 0.04 * (h - l);
        lo[k] = (l - pad).max(lo[k]);
        hi[k] = (h + pad).min(hi[k]);
    }
    Some((lo, hi))
}

/// Panels of maps per species row (a pair doubles them).
fn map_columns(data: &PlotData) -> usize {
    data.steps.len() * if data.b.is_some() { 2 } else { 1 }
}

/// The size when none is asked: 1200 x 800 for curves; maps about 340
/// pixels a side.
fn default_size(data: &PlotData) -> (u32, u32) {
    let n = data.species.len();
    if data.dimension == 1 {
        let rows = n.div_ceil(3) as u32;
        return (1200, 500 * rows + 300);
    }
    let cols = map_columns(data) as u32;
    let w = (cols * 340 + 150).clamp(900, 3200);
    let h = (60 + n as u32 * 380 + 320).clamp(700, 4000);
    (w, h)
}

/// A font size at most `base` with which `text` fits in `width` pixels
/// (DejaVu Sans averages ~0.56 em per character).
fn fitting(text: &str, width: u32, base: f64) -> f64 {
    let chars = text.chars().count().max(1) as f64;
    base.min(width as f64 * 0.95 / (0.56 * chars)).max(8.0)
}

fn distance_text(data: &PlotData, step: u64, sp: &str) -> Option<String> {
    let d = data.distances.get(&(step, sp.to_string()))?;
    Some(match d.w2 {
        Some(w2) => format!("L1 = {}, W2 = {}", fmt_num(d.l1), fmt_num(w2)),
        None => format!("L1 = {}", fmt_num(d.l1)),
    })
}

fn title(data: &PlotData, slice_z: Option<f64>) -> String {
    let describe = |r: &super::data::PlotRun| {
        if r.equilibrium {
            format!("{} (equilibrium, {})", r.name, r.kind_name())
        } else {
            format!("{} ({})", r.name, r.kind_name())
        }
    };
    let d = data.dimension;
    let what = match d {
        1 => "density",
        2 => "density maps",
        _ => &format!(
            "density on the mid-plane z = {}",
            fmt_num(slice_z.unwrap_or(0.0))
        ),
    };
    match &data.b {
        None => format!("{} — {what}, d = {d}", describe(&data.a)),
        Some(b) => format!("{} vs {} — {what}, d = {d}", describe(&data.a), describe(b)),
    }
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    data: &PlotData,
    species: &[SpeciesFrames],
    log: bool,
) -> DrawResult<Vec<PanelInfo>>
where
    DB::ErrorType: 'static,
{
    let (w, h) = root.dim_in_pixel();
    let fonts = Fonts::for_size(w, h);
    root.fill(&WHITE)?;
    let slice_z = species
        .first()
        .filter(|_| data.dimension == 3)
        .map(|s| s.grid.center_along(2, 0));
    let text = title(data, slice_z);
    let body = root.titled(&text, Fonts::style(fitting(&text, w, fonts.title)))?;
    let (_, bh) = body.dim_in_pixel();
    let energy_h = ((bh as f64 * 0.3).max(180.0) as u32).min(bh / 2);
    let (top, bottom) = body.split_vertically(bh - energy_h);
    let mut panels = Vec::new();

    if data.dimension == 1 {
        let n = species.len();
        let cols = n.min(3);
        let rows = n.div_ceil(cols);
        let areas = top.split_evenly((rows, cols));
        for (sf, area) in species.iter().zip(&areas) {
            let last = data.steps.last().map(|s| s.0);
            let mut title = format!("species {}", sf.name);
            if let Some(d) = last.and_then(|s| distance_text(data, s, &sf.name)) {
                let label = data.steps.last().map(|&(s, t)| data.a.step_label(s, t));
                title = format!("{title} — {d} at {}", label.unwrap_or_default());
            }
            let (aw, _) = area.dim_in_pixel();
            let f = Fonts {
                caption: fitting(&title, aw, fonts.caption),
                ..fonts
            };
            panels.push(draw_curves(
                area,
                &Curves {
                    species: &sf.name,
                    title,
                    grid: &sf.grid,
                    a: &sf.a,
                    b: sf.b.as_deref(),
                    names: (&data.a.name, data.b.as_ref().map(|b| b.name.as_str())),
                    log,
                },
                &f,
            )?);
        }
    } else {
        let rows = top.split_evenly((species.len(), 1));
        let cols = map_columns(data);
        let (tw, _) = top.dim_in_pixel();
        let bar_w = (fonts.tick * 9.0 + 30.0) as u32;
        for (sf, row) in species.iter().zip(&rows) {
            let (maps, bar) = row.split_horizontally(tw.saturating_sub(bar_w));
            let cells = maps.split_evenly((1, cols));
            let all = sf.a.iter().chain(sf.b.iter().flatten());
            let range = value_range(frames_max(all), log);
            let (cw, _) = cells[0].dim_in_pixel();
            for (k, &(s, t)) in data.steps.iter().enumerate() {
                let mut shown: Vec<(String, &Frame)> = Vec::new();
                let label = data.a.step_label(s, t);
                match (&data.b, &sf.b) {
                    (Some(rb), Some(fb)) => {
                        shown.push((format!("{} · {} · {label}", data.a.name, sf.name), &sf.a[k]));
                        // B's step is named only when it is not A's (last against last).
                        let same = data.b_step.get(&s).is_some_and(|&(sb, _)| sb == s);
                        let mut tb = if same {
                            rb.name.clone()
                        } else {
                            format!("{} · {}", rb.name, fb[k].label)
                        };
                        if let Some(d) = distance_text(data, s, &sf.name) {
                            tb = format!("{tb} · {d}");
                        }
                        shown.push((tb, &fb[k]));
                    }
                    _ => shown.push((format!("{} · {label}", sf.name), &sf.a[k])),
                }
                let per = shown.len();
                for (j, (title, fr)) in shown.into_iter().enumerate() {
                    let f = Fonts {
                        caption: fitting(&title, cw, fonts.caption),
                        ..fonts
                    };
                    panels.push(draw_map(
                        &cells[k * per + j],
                        &Map {
                            species: &sf.name,
                            title,
                            grid: &sf.grid,
                            frame: fr,
                            range,
                            log,
                        },
                        &f,
                    )?);
                }
            }
            // The bar spans the maps' height.
            let rows_px = panels
                .last()
                .map(|p: &PanelInfo| (p.pixel_y.1, p.pixel_y.0));
            panels.push(draw_colour_bar(
                &bar, &sf.name, range, log, rows_px, &fonts,
            )?);
        }
    }
    panels.extend(draw_energy_row(
        &bottom,
        &data.a,
        data.b.as_ref(),
        log,
        &fonts,
    )?);
    root.present()?;
    Ok(panels)
}

/// Draw `data` as `format` bytes at the asked or default size.
pub(super) fn render(
    data: &PlotData,
    opts: &PlotOptions,
    format: Format,
) -> Result<(Vec<u8>, FigureReport)> {
    register_font().map_err(Error::Numerical)?;
    let species = sample(data, opts.log)?;
    let (w, h) = opts.size.unwrap_or_else(|| default_size(data));
    let failed = |e: Box<dyn std::error::Error + Send + Sync>| {
        Error::Numerical(format!("drawing the figure failed: {e}"))
    };
    let (bytes, panels) = match format {
        Format::Png => {
            let mut buf = vec![0u8; w as usize * h as usize * 3];
            let panels = {
                let font = font().map_err(Error::Numerical)?;
                let root = Raster::new(&mut buf, (w, h), font).into_drawing_area();
                draw(&root, data, &species, opts.log).map_err(failed)?
            };
            (encode_png(&buf, w, h).map_err(failed)?, panels)
        }
        Format::Svg => {
            let mut s = String::new();
            let panels = {
                let root = SVGBackend::with_string(&mut s, (w, h)).into_drawing_area();
                draw(&root, data, &species, opts.log).map_err(failed)?
            };
            (s.into_bytes(), panels)
        }
    };
    Ok((
        bytes,
        FigureReport {
            width: w,
            height: h,
            panels,
            notes: data.notes.clone(),
        },
    ))
}

fn encode_png(rgb: &[u8], w: u32, h: u32) -> DrawResult<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Best);
        let mut writer = enc.write_header()?;
        writer.write_image_data(rgb)?;
    }
    Ok(out)
}
