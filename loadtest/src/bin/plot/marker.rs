//! The point marker of the charts as one plotters element whose shape is
//! chosen at run time: plotters has one type per shape, and its boxed
//! elements need a `'static` backend, which a bitmap backend drawing into a
//! borrowed path is not.

use plotters::element::{Drawable, PointCollection};
use plotters::style::{Color, RGBColor};
use plotters_backend::{BackendCoord, DrawingBackend, DrawingErrorKind};

/// Half the width of a marker, pixels.
pub const RADIUS_PX: i32 = 6;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Circle,
    Triangle,
    Square,
}

/// A filled marker centred on `at`.
pub struct Marker<Coord> {
    pub at: Coord,
    pub shape: Shape,
    pub color: RGBColor,
}

impl<Coord> Marker<Coord> {
    pub fn new(at: Coord, shape: Shape, color: RGBColor) -> Self {
        Self { at, shape, color }
    }
}

impl<'a, Coord: 'a> PointCollection<'a, Coord> for &'a Marker<Coord> {
    type Point = &'a Coord;
    type IntoIter = std::iter::Once<&'a Coord>;

    fn point_iter(self) -> Self::IntoIter {
        std::iter::once(&self.at)
    }
}

impl<Coord, DB: DrawingBackend> Drawable<DB> for Marker<Coord> {
    fn draw<I: Iterator<Item = BackendCoord>>(
        &self,
        mut points: I,
        backend: &mut DB,
        _parent_dim: (u32, u32),
    ) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        let Some((x, y)) = points.next() else {
            return Ok(());
        };
        let color = self.color.to_backend_color();
        let r = RADIUS_PX;
        match self.shape {
            Shape::Circle => backend.draw_circle((x, y), r.unsigned_abs(), &color, true),
            // A little larger than the circle, so their areas look alike.
            Shape::Triangle => {
                let h = r + 2;
                backend.fill_polygon([(x, y - h), (x - h, y + h - 2), (x + h, y + h - 2)], &color)
            }
            Shape::Square => {
                let h = r - 1;
                backend.draw_rect((x - h, y - h), (x + h, y + h), &color, true)
            }
        }
    }
}
