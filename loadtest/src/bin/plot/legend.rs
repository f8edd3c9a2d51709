//! The legend: plotters' own, in the corner of the plot where it hides the
//! fewest plotted pixels (charts differ in where their lines run: rising
//! latencies leave the upper left free, throughput the lower right).

use plotters::coord::CoordTranslate;
use plotters::element::MultiLineText;
use plotters::prelude::*;

use crate::font::FAMILY;

pub const FONT_PX: u32 = 20;
/// Width of a legend key (its line and marker).
pub const KEY_PX: i32 = 30;
/// Room between the box and its text, and around the keys.
const MARGIN_PX: i32 = 16;
/// Distance plotters keeps between the box and the plot's edges.
const EDGE_PX: i32 = 5;
/// Spacing of the samples taken along each plotted line.
const SAMPLE_STEP_PX: f64 = 4.0;

/// Where the legend may go, in order of preference on a tie.
const CORNERS: [SeriesLabelPosition; 4] = [
    SeriesLabelPosition::UpperLeft,
    SeriesLabelPosition::LowerRight,
    SeriesLabelPosition::UpperRight,
    SeriesLabelPosition::LowerLeft,
];

/// Draws the legend of the series drawn with `labels`, clear of `lines`
/// (each a polyline in data coordinates, markers at its vertices).
pub fn draw<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    labels: &[&str],
    lines: &[Vec<(f64, f64)>],
) -> anyhow::Result<()>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    CT: CoordTranslate<From = (f64, f64)>,
{
    let mut text = MultiLineText::<(i32, i32), &str>::new((0, 0), (FAMILY, FONT_PX));
    for label in labels {
        text.push_line(*label);
    }
    let (text_w, text_h) = text
        .estimate_dimension()
        .map_err(|e| anyhow::anyhow!("measuring the legend: {e:?}"))?;
    let size = (text_w + KEY_PX + 10 + 2 * MARGIN_PX, text_h + 2 * MARGIN_PX);
    let base = chart.plotting_area().get_base_pixel();
    let area = chart.plotting_area().dim_in_pixel();
    let mut pixels = Vec::new();
    for line in lines {
        let vertices: Vec<(i32, i32)> = line
            .iter()
            .map(|p| {
                let (x, y) = chart.as_coord_spec().translate(p);
                (x - base.0, y - base.1)
            })
            .collect();
        pixels.extend(trace(&vertices));
    }
    chart
        .configure_series_labels()
        .position(quietest_corner(size, area, &pixels))
        .margin(MARGIN_PX)
        .legend_area_size(KEY_PX + 10)
        .label_font((FAMILY, FONT_PX))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.3))
        .draw()
        .map_err(|e| anyhow::anyhow!("drawing the legend: {e}"))
}

/// The vertices of a polyline and points every few pixels between them.
fn trace(vertices: &[(i32, i32)]) -> Vec<(i32, i32)> {
    let mut out: Vec<(i32, i32)> = vertices.to_vec();
    for pair in vertices.windows(2) {
        let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
        let (dx, dy) = (f64::from(x1 - x0), f64::from(y1 - y0));
        let steps = (dx.hypot(dy) / SAMPLE_STEP_PX).ceil() as i32;
        for i in 1..steps {
            let t = f64::from(i) / f64::from(steps);
            out.push((x0 + (dx * t) as i32, y0 + (dy * t) as i32));
        }
    }
    out
}

/// The corner whose legend box of `size` covers the fewest `pixels` of a
/// plot of `area` (both in pixels, relative to the plot's upper left).
fn quietest_corner(
    size: (i32, i32),
    area: (u32, u32),
    pixels: &[(i32, i32)],
) -> SeriesLabelPosition {
    let (w, h) = size;
    let (area_w, area_h) = (area.0 as i32, area.1 as i32);
    let covered = |corner: &SeriesLabelPosition| {
        let left = match corner {
            SeriesLabelPosition::UpperLeft | SeriesLabelPosition::LowerLeft => EDGE_PX,
            _ => area_w - w - EDGE_PX,
        };
        let top = match corner {
            SeriesLabelPosition::UpperLeft | SeriesLabelPosition::UpperRight => EDGE_PX,
            _ => area_h - h - EDGE_PX,
        };
        pixels
            .iter()
            .filter(|(x, y)| (left..=left + w).contains(x) && (top..=top + h).contains(y))
            .count()
    };
    // `min_by_key` keeps the first of equal counts: the order of preference.
    CORNERS
        .iter()
        .min_by_key(|c| covered(c))
        .cloned()
        .unwrap_or(SeriesLabelPosition::UpperLeft)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_samples_between_vertices() {
        let t = trace(&[(0, 0), (40, 0)]);
        assert_eq!(t.len(), 2 + 9);
        assert!(t.contains(&(20, 0)));
        assert_eq!(trace(&[(3, 3)]), vec![(3, 3)]);
    }

    #[test]
    fn picks_the_corner_with_the_fewest_pixels() {
        let area = (1000, 600);
        let size = (300, 200);
        let check = |pixels: &[(i32, i32)], expected: SeriesLabelPosition| {
            assert_eq!(quietest_corner(size, area, pixels), expected, "{pixels:?}");
        };
        // Nothing plotted: the first preference.
        check(&[], SeriesLabelPosition::UpperLeft);
        // A line along the top: a lower corner, the right one first.
        let top: Vec<(i32, i32)> = (0..1000).step_by(10).map(|x| (x, 50)).collect();
        check(&top, SeriesLabelPosition::LowerRight);
        // Rising from lower left to upper right: upper left stays clear.
        let rising: Vec<(i32, i32)> = (0..600).map(|i| (i * 5 / 3, 599 - i)).collect();
        check(&rising, SeriesLabelPosition::UpperLeft);
        // Points in every corner but fewest in the upper right.
        let mut spread = vec![(10, 10), (10, 10), (990, 590), (990, 590), (10, 590)];
        spread.push((10, 590));
        spread.push((990, 10));
        check(&spread, SeriesLabelPosition::UpperRight);
    }
}
