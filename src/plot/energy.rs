//! The energy row: the free energy and its parts (energy.csv's `energy`,
//! `diffusion`, `potential`, `interaction`) against time, the transport
//! distance of each step (`w2_step`) and the iterations each step took
//! (L-BFGS iterations; sub-steps for a grid run). A pair draws its second
//! run dashed. Against time when the times increase; an equilibrium
//! directory (all at time 0) is drawn against its step.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::data::{EnergyTable, PlotRun};
use super::style::{Fonts, fmt_log_tick, fmt_num, part_colour};
use super::{DrawResult, PanelInfo, PanelKind, SeriesInfo};

const PARTS: [&str; 4] = ["energy", "diffusion", "potential", "interaction"];

/// The abscissa of a run's energy rows: time, or the step when the times
/// do not increase (an equilibrium directory).
fn abscissa(t: &EnergyTable) -> (Vec<f64>, bool) {
    let increasing = t.time.windows(2).all(|w| w[1] > w[0]) && t.time.len() > 1;
    if increasing {
        (t.time.clone(), true)
    } else {
        (t.step.iter().map(|&s| s as f64).collect(), false)
    }
}

/// One curve: (x, y) points, finite y only, `log` keeps y > 0 as log10.
fn points(x: &[f64], y: &[f64], log: bool) -> Vec<(f64, f64)> {
    x.iter()
        .zip(y)
        .filter(|(_, v)| v.is_finite() && (!log || **v > 0.0))
        .map(|(&x, &v)| (x, if log { v.log10() } else { v }))
        .collect()
}

fn pad_range(lo: f64, hi: f64) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    let span = hi - lo;
    let pad = if span > 0.0 {
        0.06 * span
    } else {
        0.5 * lo.abs().max(1e-12)
    };
    (lo - pad, hi + pad)
}

fn bounds(curves: &[Vec<(f64, f64)>]) -> ((f64, f64), (f64, f64)) {
    let mut b = [
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ];
    for &(x, y) in curves.iter().flatten() {
        b = [b[0].min(x), b[1].max(x), b[2].min(y), b[3].max(y)];
    }
    let x = if b[0] < b[1] {
        (b[0], b[1])
    } else {
        pad_range(b[0], b[1])
    };
    (x, pad_range(b[2], b[3]))
}

/// A curve of the energy row: (legend label, colour, points, dashed).
type Curve = (String, RGBColor, Vec<(f64, f64)>, bool);

/// One panel of the energy row.
struct Panel<'a> {
    kind: PanelKind,
    title: String,
    y_desc: String,
    curves: Vec<Curve>,
    x_desc: &'a str,
    log: bool,
    /// Legend entries (label, colour, dashed), drawn beside the chart.
    legend: Vec<(String, RGBColor, bool)>,
}

fn line_width(fonts: &Fonts) -> u32 {
    (fonts.tick / 7.0).round().max(2.0) as u32
}

/// A legend as a column of line samples and labels.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(String, ShapeStyle, bool)],
    fonts: &Fonts,
) -> DrawResult<()>
where
    DB::ErrorType: 'static,
{
    let step = (fonts.legend * 1.6) as i32;
    let x0 = 10;
    for (k, (label, style, dashed)) in entries.iter().enumerate() {
        let y = (fonts.legend * 1.2) as i32 + k as i32 * step;
        if *dashed {
            area.draw(&PathElement::new(vec![(x0, y), (x0 + 9, y)], *style))?;
            area.draw(&PathElement::new(vec![(x0 + 15, y), (x0 + 24, y)], *style))?;
        } else {
            area.draw(&PathElement::new(vec![(x0, y), (x0 + 24, y)], *style))?;
        }
        area.draw(&Text::new(
            label.clone(),
            (x0 + 32, y),
            Fonts::style(fonts.legend).pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
    }
    Ok(())
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    p: Panel,
    fonts: &Fonts,
) -> DrawResult<PanelInfo>
where
    DB::ErrorType: 'static,
{
    let area = area.titled(&p.title, Fonts::style(fonts.caption))?;
    // The legend gets its own column: over the curves it hides them.
    let labelled: Vec<(String, ShapeStyle, bool)> = p
        .legend
        .iter()
        .map(|(l, c, dashed)| (l.clone(), c.stroke_width(line_width(fonts)), *dashed))
        .collect();
    let area = if labelled.is_empty() {
        area
    } else {
        let chars = labelled
            .iter()
            .map(|l| l.0.chars().count())
            .max()
            .unwrap_or(0);
        let lw = (0.6 * fonts.legend * chars as f64 + 48.0) as u32;
        let (w, _) = area.dim_in_pixel();
        let (chart_area, legend_area) = area.split_horizontally(w.saturating_sub(lw));
        draw_legend(&legend_area, &labelled, fonts)?;
        chart_area
    };
    let pts: Vec<Vec<(f64, f64)>> = p.curves.iter().map(|c| c.2.clone()).collect();
    let ((x0, x1), (y0, y1)) = bounds(&pts);
    let mut chart = ChartBuilder::on(&area)
        .margin(8)
        .margin_right(16)
        .x_label_area_size(fonts.label * 2.6)
        .y_label_area_size(fonts.tick * 5.5)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    let log = p.log;
    let by_step = p.x_desc == "step";
    // Steps are whole numbers: no tick between them.
    let fmt_x = move |v: &f64| {
        if by_step && v.fract() != 0.0 {
            String::new()
        } else {
            fmt_num(*v)
        }
    };
    let fmt_y = move |v: &f64| {
        if log { fmt_log_tick(*v) } else { fmt_num(*v) }
    };
    chart
        .configure_mesh()
        .x_desc(p.x_desc)
        .y_desc(p.y_desc.clone())
        .axis_desc_style(Fonts::style(fonts.label))
        .label_style(Fonts::style(fonts.tick))
        .x_labels(6)
        .y_labels(if log {
            ((y1 - y0).ceil() as usize + 1).max(4)
        } else {
            6
        })
        .x_label_formatter(&fmt_x)
        .y_label_formatter(&fmt_y)
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(210, 210, 210))
        .draw()?;
    let width = line_width(fonts);
    let mut series = Vec::new();
    for (label, colour, pts, dashed) in p.curves {
        let style = colour.stroke_width(width);
        let single = pts.len() == 1;
        if dashed {
            chart.draw_series(DashedLineSeries::new(
                pts.clone(),
                (3 * width + 4) as i32,
                (2 * width + 2) as i32,
                style,
            ))?;
        } else {
            chart.draw_series(LineSeries::new(pts.clone(), style))?;
        }
        // Few points (an equilibrium's two): mark them.
        if pts.len() <= 12 || single {
            chart.draw_series(
                pts.iter()
                    .map(|&q| Circle::new(q, width + 2, style.filled())),
            )?;
        }
        series.push(SeriesInfo {
            label,
            colour: [colour.0, colour.1, colour.2],
            dashed,
        });
    }
    Ok(PanelInfo::from_chart(
        &chart,
        p.kind,
        None,
        p.title,
        (x0, x1),
        (y0, y1),
        log,
        series,
    ))
}

/// Draw the energy row for run `a` (and `b`, dashed) on `area`.
pub(super) fn draw_energy_row<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    a: &PlotRun,
    b: Option<&PlotRun>,
    log: bool,
    fonts: &Fonts,
) -> DrawResult<Vec<PanelInfo>>
where
    DB::ErrorType: 'static,
{
    let (w, _) = area.dim_in_pixel();
    let (left, right) = area.split_horizontally(w / 2);
    let (mid, last) = right.split_horizontally(w / 4);
    let runs: Vec<(&PlotRun, bool)> = std::iter::once((a, false))
        .chain(b.map(|b| (b, true)))
        .collect();
    let (_, by_time) = abscissa(&a.energy);
    let x_desc = if by_time { "time t" } else { "step" };
    let grid = runs
        .iter()
        .any(|(r, _)| r.densities.kind() == crate::compare::RunKind::Grid);

    // The energy and its parts; with --log the gap to the lowest energy of
    // each run, which is what decays (the parts are not monotone).
    let mut curves = Vec::new();
    for &(run, dashed) in &runs {
        let (x, _) = abscissa(&run.energy);
        let cols = &run.energy.columns;
        if log {
            let e = &cols["energy"];
            let min = e
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .fold(f64::INFINITY, f64::min);
            let gap: Vec<f64> = e.iter().map(|v| v - min).collect();
            curves.push((
                if dashed {
                    String::new()
                } else {
                    "E − min E".into()
                },
                part_colour("energy"),
                points(&x, &gap, true),
                dashed,
            ));
            continue;
        }
        for part in PARTS {
            let Some(y) = cols.get(part) else { continue };
            // A part that is zero throughout (no coupling, no potential) says nothing.
            if part != "energy" && y.iter().all(|v| *v == 0.0 || !v.is_finite()) {
                continue;
            }
            let label = if dashed {
                String::new()
            } else if part == "energy" {
                "total E".to_string()
            } else {
                part.to_string()
            };
            curves.push((label, part_colour(part), points(&x, y, false), dashed));
        }
    }
    let mut legend: Vec<(String, RGBColor, bool)> = curves
        .iter()
        .filter(|c| !c.0.is_empty())
        .map(|c| (c.0.clone(), c.1, false))
        .collect();
    if let Some(b) = b {
        legend.push((a.name.clone(), RGBColor(0, 0, 0), false));
        legend.push((b.name.clone(), RGBColor(0, 0, 0), true));
    }
    let energy_title = if log {
        "free energy above its minimum (log)".to_string()
    } else {
        "free energy and its parts".to_string()
    };
    let mut out = vec![draw_panel(
        &left,
        Panel {
            kind: PanelKind::Energy,
            title: energy_title,
            y_desc: if log {
                "E − min E".into()
            } else {
                "energy".into()
            },
            curves,
            x_desc,
            log,
            legend,
        },
        fonts,
    )?];

    for (col, area, kind, title, y_desc, colour_of) in [
        (
            "w2_step",
            &mid,
            PanelKind::W2Step,
            if grid {
                "transport per step (particles only)"
            } else {
                "transport per step"
            },
            "W2 step",
            "w2_step",
        ),
        (
            "iterations",
            &last,
            PanelKind::Iterations,
            if grid {
                "iterations per step (grid: sub-steps)"
            } else {
                "iterations per step"
            },
            "iterations",
            "iterations",
        ),
    ] {
        let mut curves = Vec::new();
        for &(run, dashed) in &runs {
            let (x, _) = abscissa(&run.energy);
            if let Some(y) = run.energy.columns.get(col) {
                // Step 0 is the initial state: no step was taken.
                let keep: Vec<(f64, f64)> = x
                    .iter()
                    .zip(y)
                    .zip(&run.energy.step)
                    .filter(|(_, s)| **s > 0)
                    .map(|((x, y), _)| (*x, *y))
                    .collect();
                let (xs, ys): (Vec<f64>, Vec<f64>) = keep.into_iter().unzip();
                // A grid run writes w2_step = 0: it has no transport step.
                if col == "w2_step" && ys.iter().all(|v| *v == 0.0) {
                    continue;
                }
                curves.push((
                    String::new(),
                    part_colour(colour_of),
                    points(&xs, &ys, log && col == "w2_step"),
                    dashed,
                ));
            }
        }
        out.push(draw_panel(
            area,
            Panel {
                kind,
                title: title.into(),
                y_desc: y_desc.into(),
                curves,
                x_desc,
                log: log && col == "w2_step",
                legend: Vec::new(),
            },
            fonts,
        )?);
    }
    Ok(out)
}
