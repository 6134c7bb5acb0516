//! The PNG backend: plotters' in-memory bitmap with its text drawn here.
//!
//! plotters' ab_glyph text places each glyph at the pen position without
//! its left side bearing and sizes text boxes from a rough estimate, which
//! spreads "10" into "1 0" and lifts "." off the baseline. Here each glyph
//! is laid out with ab_glyph (advance, kerning, bearing) on one baseline,
//! and the text's box is the font's ascent to descent, so anchors (left,
//! center, right; top, center, bottom) and rotations fall where plotters
//! asks. Everything else goes to the bitmap backend unchanged.

use ab_glyph::{Font, FontRef, Glyph, PxScale, ScaleFont, point};
use plotters::backend::BitMapBackend;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
};

type Err<'a> = DrawingErrorKind<<BitMapBackend<'a> as DrawingBackend>::ErrorType>;

/// A bitmap backend whose text is drawn with the embedded font.
pub(super) struct Raster<'a> {
    inner: BitMapBackend<'a>,
    font: FontRef<'static>,
}

/// Glyphs on the baseline y = 0 from x = 0, and the advance width.
struct Line {
    glyphs: Vec<Glyph>,
    width: f32,
    ascent: f32,
    descent: f32,
}

impl<'a> Raster<'a> {
    /// Draw into `buf` (RGB, `size.0 * size.1 * 3` bytes) with `font`.
    pub(super) fn new(buf: &'a mut [u8], size: (u32, u32), font: FontRef<'static>) -> Self {
        Raster {
            inner: BitMapBackend::with_buffer(buf, size),
            font,
        }
    }

    fn line(&self, text: &str, size: f64) -> Line {
        let scale = PxScale::from(size as f32);
        let sf = self.font.as_scaled(scale);
        let mut caret = 0.0f32;
        let mut prev = None;
        let mut glyphs = Vec::with_capacity(text.len());
        for c in text.chars() {
            let id = sf.glyph_id(c);
            if let Some(p) = prev {
                caret += sf.kern(p, id);
            }
            glyphs.push(id.with_scale_and_position(scale, point(caret, 0.0)));
            caret += sf.h_advance(id);
            prev = Some(id);
        }
        Line {
            glyphs,
            width: caret,
            ascent: sf.ascent(),
            descent: sf.descent(),
        }
    }
}

impl<'a> DrawingBackend for Raster<'a> {
    type ErrorType = <BitMapBackend<'a> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }
    fn ensure_prepared(&mut self) -> Result<(), Err<'a>> {
        self.inner.ensure_prepared()
    }
    fn present(&mut self) -> Result<(), Err<'a>> {
        self.inner.present()
    }
    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Result<(), Err<'a>> {
        self.inner.draw_pixel(point, color)
    }
    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), Err<'a>> {
        self.inner.draw_line(from, to, style)
    }
    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), Err<'a>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }
    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), Err<'a>> {
        self.inner.draw_path(path, style)
    }
    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), Err<'a>> {
        self.inner.draw_circle(center, radius, style, fill)
    }
    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), Err<'a>> {
        self.inner.fill_polygon(vert, style)
    }
    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), Err<'a>> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn estimate_text_size<TStyle: BackendTextStyle>(
        &self,
        text: &str,
        style: &TStyle,
    ) -> Result<(u32, u32), Err<'a>> {
        let l = self.line(text, style.size());
        Ok((l.width.ceil() as u32, (l.ascent - l.descent).ceil() as u32))
    }

    fn draw_text<TStyle: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &TStyle,
        pos: BackendCoord,
    ) -> Result<(), Err<'a>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let l = self.line(text, style.size());
        let anchor = style.anchor();
        // The baseline's start relative to the anchor point, unrotated.
        let dx = match anchor.h_pos {
            HPos::Left => 0.0,
            HPos::Center => -0.5 * l.width,
            HPos::Right => -l.width,
        };
        let dy = match anchor.v_pos {
            VPos::Top => l.ascent,
            VPos::Center => 0.5 * (l.ascent + l.descent),
            VPos::Bottom => l.descent,
        };
        let trans = style.transform();
        let (w, h) = self.get_size();
        for g in l.glyphs {
            let Some(og) = self.font.outline_glyph(g) else {
                continue; // a space
            };
            let b = og.px_bounds();
            let mut pixels = Vec::new();
            og.draw(|x, y, c| {
                if c > 0.0 {
                    pixels.push((
                        (b.min.x + x as f32 + dx).round() as i32,
                        (b.min.y + y as f32 + dy).round() as i32,
                        c,
                    ));
                }
            });
            for (x, y, c) in pixels {
                let (x, y) = trans.transform(x, y);
                let (x, y) = (pos.0 + x, pos.1 + y);
                if x >= 0 && y >= 0 && x < w as i32 && y < h as i32 {
                    self.inner.draw_pixel(
                        (x, y),
                        BackendColor {
                            alpha: color.alpha * f64::from(c.min(1.0)),
                            rgb: color.rgb,
                        },
                    )?;
                }
            }
        }
        Ok(())
    }
}
