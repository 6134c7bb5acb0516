//! The look of a figure: the embedded font, font sizes that follow the
//! figure's size, the colours of steps and energy parts, the colour map of
//! the density maps, and the number format of ticks and titles.

use plotters::style::{FontStyle, RGBColor, TextStyle};

/// DejaVu Sans (data/fonts/DejaVuSans-LICENSE.txt), compiled in: a figure
/// looks the same on every machine and needs no system font library.
static DEJAVU_SANS: &[u8] = include_bytes!("../../data/fonts/DejaVuSans.ttf");

/// The family every text of a figure asks for: the embedded font's name
/// is what an SVG viewer looks for first (the layout was measured with it).
pub(super) const FAMILY: &str = "DejaVu Sans, sans-serif";

/// Register the embedded font with plotters (once per process).
pub(super) fn register_font() -> Result<(), String> {
    static ONCE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *ONCE.get_or_init(|| {
        // Also under plotters' default family, for any text not given ours.
        [FAMILY, "sans-serif"].iter().all(|f| {
            plotters::style::register_font(f, FontStyle::Normal, DEJAVU_SANS).is_ok()
                && plotters::style::register_font(f, FontStyle::Bold, DEJAVU_SANS).is_ok()
        })
    });
    ok.then_some(())
        .ok_or_else(|| "the embedded font cannot be read".to_string())
}

/// The embedded font for [`super::raster::Raster`].
pub(super) fn font() -> Result<ab_glyph::FontRef<'static>, String> {
    ab_glyph::FontRef::try_from_slice(DEJAVU_SANS)
        .map_err(|_| "the embedded font cannot be read".to_string())
}

/// Font sizes in pixels, scaled with the figure.
#[derive(Debug, Clone, Copy)]
pub(super) struct Fonts {
    pub(super) title: f64,
    pub(super) caption: f64,
    pub(super) label: f64,
    pub(super) tick: f64,
    pub(super) legend: f64,
}

impl Fonts {
    /// Sizes for a figure of `width` x `height` pixels: about 1/60 of the
    /// diagonal for tick labels, readable on a projector at 1200 x 800.
    pub(super) fn for_size(width: u32, height: u32) -> Self {
        let diag = ((width as f64).powi(2) + (height as f64).powi(2)).sqrt();
        let tick = (diag / 110.0).clamp(10.0, 28.0);
        Fonts {
            title: tick * 1.45,
            caption: tick * 1.2,
            label: tick * 1.1,
            tick,
            legend: tick,
        }
    }
    pub(super) fn style(size: f64) -> TextStyle<'static> {
        TextStyle::from((FAMILY, size))
    }
}

/// Colour of the k-th of `n` steps: a viridis ramp from dark blue to
/// green, stopping before its pale yellow end (unreadable on white).
pub(super) fn step_colour(k: usize, n: usize) -> RGBColor {
    if n <= 1 {
        return viridis(0.15);
    }
    viridis(0.85 * k as f64 / (n - 1) as f64)
}

/// Colours of the energy parts (tab10), the total in black.
pub(super) fn part_colour(name: &str) -> RGBColor {
    match name {
        "energy" => RGBColor(0, 0, 0),
        "diffusion" => RGBColor(31, 119, 180),
        "potential" => RGBColor(255, 127, 14),
        "interaction" => RGBColor(44, 160, 44),
        "w2_step" => RGBColor(148, 103, 189),
        _ => RGBColor(214, 39, 40),
    }
}

/// Viridis at `t` in [0, 1] (linear between nine samples of the map).
pub(super) fn viridis(t: f64) -> RGBColor {
    const V: [[f64; 3]; 9] = [
        [68.0, 1.0, 84.0],
        [71.0, 44.0, 122.0],
        [59.0, 81.0, 139.0],
        [44.0, 113.0, 142.0],
        [33.0, 144.0, 141.0],
        [39.0, 173.0, 129.0],
        [92.0, 200.0, 99.0],
        [170.0, 220.0, 50.0],
        [253.0, 231.0, 37.0],
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let u = t * 8.0;
    let i = (u.floor() as usize).min(7);
    let f = u - i as f64;
    let c = |k: usize| (V[i][k] + f * (V[i + 1][k] - V[i][k])).round() as u8;
    RGBColor(c(0), c(1), c(2))
}

/// A number for a tick or a title: plain with up to 4 significant digits
/// between 1e-3 and 1e4, else in scientific notation.
pub(super) fn fmt_num(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if !v.is_finite() {
        return v.to_string();
    }
    let a = v.abs();
    if !(1e-3..1e4).contains(&a) {
        let s = format!("{v:.2e}");
        // 1.50e-5 -> 1.5e-5, 1.00e3 -> 1e3
        return match s.split_once('e') {
            Some((m, e)) => {
                let m = m.trim_end_matches('0').trim_end_matches('.');
                format!("{m}e{e}")
            }
            None => s,
        };
    }
    let digits = (4 - 1 - a.log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A tick of a log10 axis, 10^v with two significant digits (the axis'
/// ticks fall between decades when it spans less than one).
pub(super) fn fmt_log_tick(v: f64) -> String {
    let x = 10f64.powf(v);
    if !x.is_finite() || x == 0.0 {
        return fmt_num(x);
    }
    let mag = 10f64.powf(x.abs().log10().floor() - 1.0);
    fmt_num((x / mag).round() * mag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_short() {
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(0.5), "0.5");
        assert_eq!(fmt_num(1.23456), "1.235");
        assert_eq!(fmt_num(2500.0), "2500");
        assert_eq!(fmt_num(1.5e-5), "1.5e-5");
        assert_eq!(fmt_num(-2e6), "-2e6");
        assert_eq!(fmt_log_tick(-0.5), "0.32");
        assert_eq!(fmt_log_tick(-4.0), "1e-4");
        assert_eq!(fmt_log_tick(2.0), "100");
    }

    #[test]
    fn the_font_registers() {
        assert!(register_font().is_ok());
    }
}
