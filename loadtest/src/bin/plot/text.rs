//! A drawing backend that wraps another and draws text itself.
//!
//! plotters 0.3.7 draws ab_glyph text without each glyph's left side
//! bearing (plotters-rs/plotters#576): a colon lands on the letter before
//! it, a `1` sits against its neighbour. [`FixedText`] places each glyph at
//! its pen position plus its bearing and keeps everything else plotters'
//! own: the layout box it measures with, the anchoring, the rotation, the
//! vertical placement. Every other drawing call goes to the inner backend.

use ab_glyph::{Font, FontRef, ScaleFont, point};
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
};

/// `inner` with text drawn from `font`, the one font the charts use.
pub struct FixedText<B> {
    inner: B,
    font: FontRef<'static>,
}

impl<B> FixedText<B> {
    pub fn new(inner: B, font: FontRef<'static>) -> Self {
        Self { inner, font }
    }
}

/// Pixels of `text` at `size` (plotters' size: ab_glyph's pixel scale),
/// relative to the top left of plotters' layout box: `(x, y, coverage)`.
pub fn rasterize(font: &FontRef<'static>, size: f64, text: &str) -> Vec<(i32, i32, f32)> {
    let scaled = font.as_scaled(size as f32);
    // plotters puts the baseline half the size below the box's top.
    let baseline = size as f32 / 2.0;
    let mut pixels = Vec::new();
    let mut pen = 0f32;
    let mut prev = None;
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(p) = prev {
            pen += scaled.kern(p, id);
        }
        prev = Some(id);
        let mut glyph = scaled.scaled_glyph(c);
        glyph.position = point(pen, baseline);
        if let Some(outline) = scaled.outline_glyph(glyph) {
            let bounds = outline.px_bounds();
            let (left, top) = (bounds.min.x as i32, bounds.min.y as i32);
            outline.draw(|x, y, coverage| {
                pixels.push((left + x as i32, top + y as i32, coverage));
            });
        }
        pen += scaled.h_advance(id);
    }
    pixels
}

impl<B: DrawingBackend> DrawingBackend for FixedText<B> {
    type ErrorType = B::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.present()
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.fill_polygon(vert, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.blit_bitmap(pos, size, src)
    }

    /// plotters' default `draw_text` with [`rasterize`] in place of the
    /// font's own drawing.
    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let ((min_x, min_y), (max_x, max_y)) = style
            .layout_box(text)
            .map_err(|e| DrawingErrorKind::FontError(Box::new(e)))?;
        let (width, height) = (max_x - min_x, max_y - min_y);
        let dx = match style.anchor().h_pos {
            HPos::Left => 0,
            HPos::Right => -width,
            HPos::Center => -width / 2,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0,
            VPos::Center => -height / 2,
            VPos::Bottom => -height,
        };
        let transform = style.transform();
        let (w, h) = self.get_size();
        for (x, y, coverage) in rasterize(&self.font, style.size(), text) {
            let (x, y) = transform.transform(x + dx - min_x, y + dy - min_y);
            let (x, y) = (pos.0 + x, pos.1 + y);
            if (0..w as i32).contains(&x) && (0..h as i32).contains(&y) {
                self.inner
                    .draw_pixel((x, y), color.mix(f64::from(coverage)))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Columns holding ink, left to right.
    fn ink_columns(text: &str) -> Vec<i32> {
        let font = crate::font::dejavu_sans().expect("embedded font");
        let mut xs: Vec<i32> = rasterize(&font, 32.0, text)
            .into_iter()
            .filter(|&(_, _, c)| c > 0.5)
            .map(|(x, _, _)| x)
            .collect();
        xs.sort_unstable();
        xs.dedup();
        xs
    }

    /// The widest run of empty columns between two inked ones.
    fn widest_gap(xs: &[i32]) -> i32 {
        xs.windows(2).map(|w| w[1] - w[0] - 1).max().unwrap_or(0)
    }

    #[test]
    fn glyphs_keep_their_side_bearings() {
        // Without its bearing DejaVu's colon touches the `t` before it (the
        // plotters bug: no empty column); with it, a few columns apart.
        let t_colon = ink_columns("t:");
        assert!(widest_gap(&t_colon) >= 3, "{t_colon:?}");
        // A lone `1` starts inked a few pixels right of its pen position.
        let one = ink_columns("1");
        assert!(one.first().is_some_and(|x| *x >= 2), "{one:?}");
        // A space is one clear gap between words.
        let ab = ink_columns("a b");
        assert!(widest_gap(&ab) >= 8, "{ab:?}");
    }
}
