//! The density panels: 1D curves (one per shown step, a pair's second run
//! dashed on the same axes), 2D maps and 3D mid-plane slices (heat maps on
//! one colour scale per species, with its colour bar).

use plotters::coord::Shift;
use plotters::element::BitMapElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::data::Frame;
use super::style::{Fonts, fmt_log_tick, fmt_num, step_colour, viridis};
use super::{DrawResult, PanelInfo, PanelKind, SeriesInfo};
use crate::util::grid::Grid;

/// log10 of a density shown on a log axis: values below `floor` are drawn
/// at the floor (a blob estimate is exactly 0 beyond the kernel's support).
pub(super) fn log_floor(v: f64, floor: f64) -> f64 {
    v.max(floor).log10()
}

/// Largest value of the frames (0 when there is none).
pub(super) fn frames_max<'a>(frames: impl Iterator<Item = &'a Frame>) -> f64 {
    frames
        .filter_map(|f| f.values.as_ref())
        .flat_map(|v| v.iter().copied())
        .fold(0.0, f64::max)
}

/// The y (or colour) range of densities up to `max`: [0, 1.05 max] on a
/// linear axis; on a log axis (log10 values) four decades below the peak.
pub(super) fn value_range(max: f64, log: bool) -> (f64, f64) {
    let max = if max > 0.0 { max } else { 1.0 };
    if log {
        let top = max.log10();
        (top - 4.0, top + 0.15)
    } else {
        (0.0, 1.05 * max)
    }
}

/// What one 1D panel shows.
pub(super) struct Curves<'a> {
    pub(super) species: &'a str,
    pub(super) title: String,
    pub(super) grid: &'a Grid,
    /// A's frames, one per shown step.
    pub(super) a: &'a [Frame],
    /// B's frames, same order (a pair).
    pub(super) b: Option<&'a [Frame]>,
    pub(super) names: (&'a str, Option<&'a str>),
    pub(super) log: bool,
}

/// Draw the curves of one species on `area`.
pub(super) fn draw_curves<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    c: &Curves,
    fonts: &Fonts,
) -> DrawResult<PanelInfo>
where
    DB::ErrorType: 'static,
{
    let area = area.titled(&c.title, Fonts::style(fonts.caption))?;
    let all = c.a.iter().chain(c.b.into_iter().flatten());
    let (y0, y1) = value_range(frames_max(all), c.log);
    let floor = 10f64.powf(y0);
    let (x0, x1) = (c.grid.lower()[0], c.grid.upper()[0]);
    let mut chart = ChartBuilder::on(&area)
        .margin(8)
        .margin_right(16)
        .x_label_area_size(fonts.label * 2.6)
        .y_label_area_size(fonts.tick * 5.0)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    let y_desc = if c.log {
        format!("ρ_{} (log scale)", c.species)
    } else {
        format!("density ρ_{}", c.species)
    };
    let log = c.log;
    let fmt_y = move |v: &f64| {
        if log { fmt_log_tick(*v) } else { fmt_num(*v) }
    };
    let decades = (y1 - y0).ceil() as usize + 1;
    chart
        .configure_mesh()
        .x_desc("x")
        .y_desc(y_desc)
        .axis_desc_style(Fonts::style(fonts.label))
        .label_style(Fonts::style(fonts.tick))
        .x_label_formatter(&|v| fmt_num(*v))
        .y_label_formatter(&fmt_y)
        .y_labels(if log { decades } else { 8 })
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(210, 210, 210))
        .draw()?;
    let n = c.a.len();
    let xs: Vec<f64> = (0..c.grid.cells()[0])
        .map(|i| c.grid.center_along(0, i))
        .collect();
    let points = |v: &[f64]| -> Vec<(f64, f64)> {
        xs.iter()
            .zip(v)
            .map(|(&x, &r)| (x, if log { log_floor(r, floor) } else { r }))
            .collect()
    };
    let mut series = Vec::new();
    let width = (fonts.tick / 6.0).round().max(2.0) as u32;
    for (k, f) in c.a.iter().enumerate() {
        let colour = step_colour(k, n);
        let style = colour.stroke_width(width);
        if let Some(v) = &f.values {
            chart
                .draw_series(LineSeries::new(points(v), style))?
                .label(f.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
            series.push(SeriesInfo {
                label: f.label.clone(),
                colour: [colour.0, colour.1, colour.2],
                dashed: false,
            });
        }
        if let Some(fb) = c.b.and_then(|b| b.get(k))
            && let Some(v) = &fb.values
        {
            // Same colour as A's curve of this step, dashed.
            chart.draw_series(DashedLineSeries::new(
                points(v),
                (3 * width + 4) as i32,
                (2 * width + 2) as i32,
                style,
            ))?;
            series.push(SeriesInfo {
                label: format!("{} {}", c.names.1.unwrap_or("B"), fb.label),
                colour: [colour.0, colour.1, colour.2],
                dashed: true,
            });
        }
    }
    if let Some(nb) = c.names.1 {
        // The two line styles in the legend, in black.
        let solid = BLACK.stroke_width(width);
        chart
            .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())?
            .label(format!("{} (solid)", c.names.0))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], solid));
        chart
            .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())?
            .label(format!("{nb} (dashed)"))
            .legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new(vec![(0, 0), (8, 0)], solid)
                    + PathElement::new(vec![(14, 0), (24, 0)], solid)
            });
    }
    // The legend goes in the upper corner the curves leave freer.
    let crowding = |left: bool| -> usize {
        let frames = c.a.iter().chain(c.b.into_iter().flatten());
        frames
            .filter_map(|f| f.values.as_ref())
            .flat_map(|v| points(v))
            .filter(|&(x, y)| {
                let u = (x - x0) / (x1 - x0);
                (if left { u < 0.4 } else { u > 0.6 }) && y > y0 + 0.5 * (y1 - y0)
            })
            .count()
    };
    let corner = if crowding(true) < crowding(false) {
        SeriesLabelPosition::UpperLeft
    } else {
        SeriesLabelPosition::UpperRight
    };
    chart
        .configure_series_labels()
        .position(corner)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(160, 160, 160))
        .label_font(Fonts::style(fonts.legend))
        .draw()?;
    Ok(PanelInfo::from_chart(
        &chart,
        PanelKind::Curves,
        Some(c.species),
        c.title.clone(),
        (x0, x1),
        (y0, y1),
        log,
        series,
    ))
}

/// What one map panel shows.
pub(super) struct Map<'a> {
    pub(super) species: &'a str,
    pub(super) title: String,
    pub(super) grid: &'a Grid,
    pub(super) frame: &'a Frame,
    /// The colour range (log10 values when `log`).
    pub(super) range: (f64, f64),
    pub(super) log: bool,
}

/// Draw a heat map on `area`, cells square on screen.
pub(super) fn draw_map<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    m: &Map,
    fonts: &Fonts,
) -> DrawResult<PanelInfo>
where
    DB::ErrorType: 'static,
{
    let area = area.titled(&m.title, Fonts::style(fonts.caption))?;
    let g = m.grid;
    let (x0, y0) = (g.lower()[0], g.lower()[1]);
    let (x1, y1) = (g.upper()[0], g.upper()[1]);
    // Equal scales on both axes: the plot box shrinks to the data's aspect.
    let (w, h) = area.dim_in_pixel();
    let (label_x, label_y, margin) = (fonts.label * 2.6, fonts.tick * 4.6, 6.0);
    let avail_w = (w as f64 - label_y - 2.0 * margin).max(10.0);
    let avail_h = (h as f64 - label_x - 2.0 * margin).max(10.0);
    let aspect = (y1 - y0) / (x1 - x0);
    let (pw, ph) = if avail_h / avail_w > aspect {
        (avail_w, avail_w * aspect)
    } else {
        (avail_h / aspect, avail_h)
    };
    let extra_w = ((avail_w - pw) / 2.0).max(0.0);
    let extra_h = ((avail_h - ph) / 2.0).max(0.0);
    let mut chart = ChartBuilder::on(&area)
        .margin_left(margin + extra_w)
        .margin_right(margin + extra_w)
        .margin_top(margin + extra_h)
        .margin_bottom(margin + extra_h)
        .x_label_area_size(label_x)
        .y_label_area_size(label_y)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    let (px, py) = chart.plotting_area().get_pixel_range();
    let (bw, bh) = (
        (px.end - px.start).max(1) as u32,
        (py.end - py.start).max(1) as u32,
    );
    if let Some(v) = &m.frame.values {
        let (c0, c1) = m.range;
        let (nx, ny) = (g.cells()[0], g.cells()[1]);
        let mut buf = vec![0u8; (bw * bh * 3) as usize];
        for j in 0..bh as usize {
            // Pixel rows run down, y up.
            let cy = (((bh as usize - 1 - j) as f64 + 0.5) / bh as f64 * ny as f64) as usize;
            for i in 0..bw as usize {
                let cx = ((i as f64 + 0.5) / bw as f64 * nx as f64) as usize;
                let r = v[cy.min(ny - 1) * nx + cx.min(nx - 1)];
                let r = if m.log {
                    log_floor(r, 10f64.powf(c0))
                } else {
                    r
                };
                let c = viridis((r - c0) / (c1 - c0));
                let k = 3 * (j * bw as usize + i);
                buf[k..k + 3].copy_from_slice(&[c.0, c.1, c.2]);
            }
        }
        if let Some(img) = BitMapElement::<_>::with_owned_buffer((x0, y1), (bw, bh), buf) {
            chart.plotting_area().draw(&img)?;
        }
    } else {
        chart.plotting_area().fill(&RGBColor(240, 240, 240))?;
        chart.plotting_area().draw(&Text::new(
            m.frame.label.clone(),
            (x0 + 0.05 * (x1 - x0), 0.5 * (y0 + y1)),
            Fonts::style(fonts.tick),
        ))?;
    }
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("x")
        .y_desc("y")
        .axis_desc_style(Fonts::style(fonts.label))
        .label_style(Fonts::style(fonts.tick))
        .x_labels(5)
        .y_labels(5)
        .x_label_formatter(&|v| fmt_num(*v))
        .y_label_formatter(&|v| fmt_num(*v))
        .draw()?;
    Ok(PanelInfo::from_chart(
        &chart,
        PanelKind::Map,
        Some(m.species),
        m.title.clone(),
        (x0, x1),
        (y0, y1),
        false,
        Vec::new(),
    ))
}

/// The colour bar of a species' maps on `area`: `range` as the value axis,
/// from pixel row `rows.0` (top) to `rows.1` (bottom) when given (the maps'
/// plotting area), its name above it.
pub(super) fn draw_colour_bar<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    species: &str,
    range: (f64, f64),
    log: bool,
    rows: Option<(i32, i32)>,
    fonts: &Fonts,
) -> DrawResult<PanelInfo>
where
    DB::ErrorType: 'static,
{
    let (c0, c1) = range;
    let (w, h) = area.dim_in_pixel();
    let y0 = area.get_base_pixel().1;
    let (top, bottom) = match rows {
        Some((t, b)) if t >= y0 && b > t && b < y0 + h as i32 => {
            ((t - y0) as f64, (y0 + h as i32 - 1 - b) as f64)
        }
        _ => (fonts.caption * 2.5, h as f64 * 0.12),
    };
    let name = if log {
        format!("ρ_{species} (log)")
    } else {
        format!("ρ_{species}")
    };
    area.draw(&Text::new(
        name,
        (w as i32 / 3, (top - 0.6 * fonts.label) as i32),
        Fonts::style(fonts.label).pos(Pos::new(HPos::Center, VPos::Bottom)),
    ))?;
    let mut chart = ChartBuilder::on(area)
        .margin_top(top)
        .margin_bottom(bottom)
        .margin_left(4)
        .margin_right(4)
        .right_y_label_area_size(fonts.tick * 5.0)
        .build_cartesian_2d(0.0..1.0, c0..c1)?;
    let (px, py) = chart.plotting_area().get_pixel_range();
    let (bw, bh) = (
        (px.end - px.start).max(1) as u32,
        (py.end - py.start).max(1) as u32,
    );
    let mut buf = vec![0u8; (bw * bh * 3) as usize];
    for j in 0..bh as usize {
        let c = viridis(1.0 - (j as f64 + 0.5) / bh as f64);
        for i in 0..bw as usize {
            let k = 3 * (j * bw as usize + i);
            buf[k..k + 3].copy_from_slice(&[c.0, c.1, c.2]);
        }
    }
    if let Some(img) = BitMapElement::<_>::with_owned_buffer((0.0, c1), (bw, bh), buf) {
        chart.plotting_area().draw(&img)?;
    }
    let fmt = move |v: &f64| {
        if log { fmt_log_tick(*v) } else { fmt_num(*v) }
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .label_style(Fonts::style(fonts.tick))
        .y_label_formatter(&fmt)
        .y_labels(6)
        .draw()?;
    Ok(PanelInfo::from_chart(
        &chart,
        PanelKind::ColourBar,
        Some(species),
        format!("colour bar of {species}"),
        (0.0, 1.0),
        range,
        log,
        Vec::new(),
    ))
}
