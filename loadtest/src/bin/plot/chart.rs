//! Drawing: one PNG per [`Spec`] through plotters' bitmap backend.
//!
//! Throughput charts put the achieved rate against the offered one on
//! linear axes, with the ideal `achieved = offered` line. Latency charts put
//! p50, p99 and p99.9 against offered load on logarithmic axes (loads span
//! decades, latencies milliseconds to seconds): colour names the series,
//! marker and line the percentile.

use std::path::Path;

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use crate::font::FAMILY;
use crate::input::Scenario;
use crate::legend;
use crate::marker::{Marker, Shape};
use crate::series::{Percentiles, Series};
use crate::text::FixedText;

/// The backend every chart draws on.
type Backend<'a> = FixedText<BitMapBackend<'a>>;

pub const WIDTH_PX: u32 = 1280;
pub const HEIGHT_PX: u32 = 720;

const TITLE_PX: u32 = 32;
const AXIS_DESC_PX: u32 = 24;
const TICK_PX: u32 = 20;

/// Okabe–Ito colours (told apart with the common colour-vision
/// deficiencies), in the order series get them.
const PALETTE: [RGBColor; 6] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
];
/// The ideal line and the percentile keys of the legend.
const NEUTRAL: RGBColor = RGBColor(90, 90, 90);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Throughput,
    Latency,
}

/// One chart: which series it shows and how it is labelled.
#[derive(Debug)]
pub struct Spec {
    pub file: &'static str,
    pub scenario: Scenario,
    pub kind: Kind,
    pub title: &'static str,
    pub x_desc: &'static str,
    pub y_desc: &'static str,
}

pub const SPECS: [Spec; 4] = [
    Spec {
        file: "ingest_throughput.png",
        scenario: Scenario::Ingest,
        kind: Kind::Throughput,
        title: "Ingest: pings received by the server vs offered",
        x_desc: "offered, pings/s",
        y_desc: "received, pings/s",
    },
    Spec {
        file: "orders_throughput.png",
        scenario: Scenario::Orders,
        kind: Kind::Throughput,
        title: "Order placement: orders placed vs offered",
        x_desc: "offered, orders/s",
        y_desc: "placed, orders/s",
    },
    Spec {
        file: "orders_latency.png",
        scenario: Scenario::Orders,
        kind: Kind::Latency,
        title: "Order placement latency",
        x_desc: "offered, orders/s (log scale)",
        y_desc: "latency, ms (log scale)",
    },
    Spec {
        file: "track_latency.png",
        scenario: Scenario::Track,
        kind: Kind::Latency,
        title: "Ping-to-screen latency",
        x_desc: "offered, pings/s (log scale)",
        y_desc: "latency, ms (log scale)",
    },
];

/// How one percentile is drawn in every series.
struct PercentileStyle {
    name: &'static str,
    value: fn(&Percentiles) -> f64,
    shape: Shape,
    stroke_px: u32,
    dashed: bool,
}

const PERCENTILES: [PercentileStyle; 3] = [
    PercentileStyle {
        name: "p50",
        value: |p| p.p50_ms,
        shape: Shape::Circle,
        stroke_px: 2,
        dashed: false,
    },
    PercentileStyle {
        name: "p99",
        value: |p| p.p99_ms,
        shape: Shape::Triangle,
        stroke_px: 3,
        dashed: false,
    },
    PercentileStyle {
        name: "p99.9",
        value: |p| p.p999_ms,
        shape: Shape::Square,
        stroke_px: 2,
        dashed: true,
    },
];

/// Draws `spec` with `series` (already those of its scenario) into `path`.
/// Returns `false`, drawing nothing, when no series has a point to show
/// (on log axes: a positive load and latency).
pub fn draw(spec: &Spec, series: &[&Series], path: &Path) -> anyhow::Result<bool> {
    let shown: Vec<&Series> = series
        .iter()
        .copied()
        .filter(|s| match spec.kind {
            Kind::Throughput => !s.points.is_empty(),
            Kind::Latency => s
                .points
                .iter()
                .any(|p| p.offered_per_s > 0.0 && p.latency.is_some_and(|l| l.p999_ms > 0.0)),
        })
        .collect();
    if shown.is_empty() {
        return Ok(false);
    }
    let backend = BitMapBackend::new(path, (WIDTH_PX, HEIGHT_PX));
    let root = FixedText::new(backend, crate::font::dejavu_sans()?).into_drawing_area();
    root.fill(&WHITE)?;
    match spec.kind {
        Kind::Throughput => draw_throughput(&root, spec, &shown)?,
        Kind::Latency => draw_latency(&root, spec, &shown)?,
    }
    root.present()?;
    Ok(true)
}

fn draw_throughput(
    root: &DrawingArea<Backend<'_>, Shift>,
    spec: &Spec,
    series: &[&Series],
) -> anyhow::Result<()> {
    let top = series
        .iter()
        .flat_map(|s| &s.points)
        .map(|p| p.offered_per_s.max(p.achieved_per_s))
        .fold(1.0, f64::max)
        * 1.08;
    let mut chart = ChartBuilder::on(root)
        .caption(spec.title, (FAMILY, TITLE_PX))
        .margin(24)
        .x_label_area_size(70)
        .y_label_area_size(100)
        .build_cartesian_2d(0.0..top, 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc(spec.x_desc)
        .y_desc(spec.y_desc)
        .x_labels(10)
        .y_labels(10)
        .x_label_formatter(&|v| rate(*v))
        .y_label_formatter(&|v| rate(*v))
        .label_style((FAMILY, TICK_PX))
        .axis_desc_style((FAMILY, AXIS_DESC_PX))
        .light_line_style(WHITE)
        .bold_line_style(BLACK.mix(0.12))
        .draw()?;

    const IDEAL: &str = "ideal: all of the offered load";
    let ideal = NEUTRAL.stroke_width(2);
    let diagonal = vec![(0.0, 0.0), (top, top)];
    chart
        .draw_series(DashedLineSeries::new(
            diagonal.iter().copied(),
            10,
            8,
            ideal,
        ))?
        .label(IDEAL)
        .legend(move |(x, y)| {
            DashedPathElement::new([(x, y), (x + legend::KEY_PX, y)], 6, 4, ideal)
        });
    let mut labels = vec![IDEAL];
    let mut lines = vec![diagonal];
    for (i, s) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let line = color.stroke_width(3);
        let xy: Vec<(f64, f64)> = s
            .points
            .iter()
            .map(|p| (p.offered_per_s, p.achieved_per_s))
            .collect();
        chart
            .draw_series(LineSeries::new(xy.iter().copied(), line))?
            .label(s.name.as_str())
            .legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new([(0, 0), (legend::KEY_PX, 0)], line)
                    + Marker::new((legend::KEY_PX / 2, 0), Shape::Circle, color)
            });
        chart.draw_series(xy.iter().map(|&at| Marker::new(at, Shape::Circle, color)))?;
        labels.push(s.name.as_str());
        lines.push(xy);
    }
    legend::draw(&mut chart, &labels, &lines)
}

fn draw_latency(
    root: &DrawingArea<Backend<'_>, Shift>,
    spec: &Spec,
    series: &[&Series],
) -> anyhow::Result<()> {
    let points = || {
        series
            .iter()
            .flat_map(|s| &s.points)
            .filter(|p| p.latency.is_some())
    };
    let (x_min, x_max) = bounds(points().map(|p| p.offered_per_s));
    let (y_min, y_max) = bounds(
        points()
            .filter_map(|p| p.latency)
            .flat_map(|l| PERCENTILES.iter().map(move |style| (style.value)(&l))),
    );
    // Loads: a margin around the points, ticks at the loads run; latencies:
    // whole decades, labelled, with light lines at 2× and 5×.
    let x_range = (x_min / 1.3)..(x_max * 1.3);
    let x_ticks = load_ticks(points().map(|p| p.offered_per_s));
    let (y_lo, y_hi) = (decade_floor(y_min), decade_ceil(y_max));
    let decades: Vec<f64> = std::iter::successors(Some(y_lo), |d| Some(d * 10.0))
        .take_while(|d| *d <= y_hi * 1.001)
        .collect();
    let between: Vec<f64> = decades
        .iter()
        .flat_map(|d| [d * 2.0, d * 5.0])
        .filter(|v| *v < y_hi)
        .collect();
    let mut chart = ChartBuilder::on(root)
        .caption(spec.title, (FAMILY, TITLE_PX))
        .margin(24)
        .x_label_area_size(70)
        .y_label_area_size(100)
        .build_cartesian_2d(
            x_range.log_scale().with_key_points(x_ticks),
            (y_lo..y_hi)
                .log_scale()
                .with_key_points(decades)
                .with_light_points(between),
        )?;
    chart
        .configure_mesh()
        .x_desc(spec.x_desc)
        .y_desc(spec.y_desc)
        .x_label_formatter(&|v| rate(*v))
        .y_label_formatter(&|v| millis(*v))
        .label_style((FAMILY, TICK_PX))
        .axis_desc_style((FAMILY, AXIS_DESC_PX))
        .light_line_style(BLACK.mix(0.05))
        .bold_line_style(BLACK.mix(0.12))
        .draw()?;

    let mut labels = Vec::new();
    let mut lines = Vec::new();
    for (i, s) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        for style in &PERCENTILES {
            let xy: Vec<(f64, f64)> = s
                .points
                .iter()
                .filter_map(|p| Some((p.offered_per_s, (style.value)(&p.latency?))))
                .filter(|&(load, ms)| load > 0.0 && ms > 0.0)
                .collect();
            let line = color.stroke_width(style.stroke_px);
            if style.dashed {
                chart.draw_series(DashedLineSeries::new(xy.iter().copied(), 10, 6, line))?;
            } else {
                chart.draw_series(LineSeries::new(xy.iter().copied(), line))?;
            }
            chart.draw_series(xy.iter().map(|&at| Marker::new(at, style.shape, color)))?;
            lines.push(xy);
        }
        // The series' entry in the legend: its colour.
        chart
            .draw_series(std::iter::empty::<Marker<(f64, f64)>>())?
            .label(s.name.as_str())
            .legend(move |(x, y)| {
                Rectangle::new([(x, y - 6), (x + legend::KEY_PX, y + 6)], color.filled())
            });
        labels.push(s.name.as_str());
    }
    // Then one entry per percentile: its marker and line.
    for style in &PERCENTILES {
        let shape = style.shape;
        let line = NEUTRAL.stroke_width(style.stroke_px);
        // A dashed key is two dashes either side of the marker; a solid one
        // the same line twice.
        let (left, right) = if style.dashed {
            (
                [(0, 0), (8, 0)],
                [(legend::KEY_PX - 8, 0), (legend::KEY_PX, 0)],
            )
        } else {
            ([(0, 0), (legend::KEY_PX, 0)], [(0, 0), (legend::KEY_PX, 0)])
        };
        chart
            .draw_series(std::iter::empty::<Marker<(f64, f64)>>())?
            .label(style.name)
            .legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new(left, line)
                    + PathElement::new(right, line)
                    + Marker::new((legend::KEY_PX / 2, 0), shape, NEUTRAL)
            });
        labels.push(style.name);
    }
    legend::draw(&mut chart, &labels, &lines)
}

/// The distinct loads, sorted, less any within 15% of the one before (their
/// labels would overlap on a log axis).
fn load_ticks(loads: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut all: Vec<f64> = loads.filter(|v| *v > 0.0).collect();
    all.sort_by(f64::total_cmp);
    let mut ticks: Vec<f64> = Vec::with_capacity(all.len());
    for v in all {
        if ticks.last().is_none_or(|last| v > last * 1.15) {
            ticks.push(v);
        }
    }
    ticks
}

/// The smallest and largest positive values.
fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values
        .filter(|v| *v > 0.0)
        .fold((f64::INFINITY, 0.0), |(lo, hi), v| (lo.min(v), hi.max(v)))
}

fn decade_floor(v: f64) -> f64 {
    10f64.powf(v.log10().floor())
}

fn decade_ceil(v: f64) -> f64 {
    10f64.powf(v.log10().ceil())
}

/// A rate tick: `500`, `2.5k`, `150k`, `1M`.
fn rate(v: f64) -> String {
    let (scaled, unit) = if v.abs() >= 1e6 {
        (v / 1e6, "M")
    } else if v.abs() >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    format!("{}{unit}", trim(scaled))
}

/// A millisecond tick: `0.5`, `20`, `1,000`.
fn millis(v: f64) -> String {
    if v >= 1000.0 {
        crate::series::thousands(v.round() as usize)
    } else {
        trim(v)
    }
}

/// At most two decimals, without trailing zeros.
fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::series::{group, tests as data};

    #[test]
    fn tick_labels() {
        for (v, s) in [
            (0.0, "0"),
            (500.0, "500"),
            (2500.0, "2.5k"),
            (150_000.0, "150k"),
            (1e6, "1M"),
        ] {
            assert_eq!(rate(v), s, "{v}");
        }
        for (v, s) in [(0.5, "0.5"), (20.0, "20"), (1000.0, "1,000")] {
            assert_eq!(millis(v), s, "{v}");
        }
        assert_eq!((decade_floor(1.9), decade_ceil(388.0)), (1.0, 1000.0));
        assert_eq!(bounds([0.0, 3.0, 0.5, 9.0].into_iter()), (0.5, 9.0));
        let ticks = load_ticks([1000.0, 10.0, 0.0, 1000.0, 500.0, 90.0, 95.0].into_iter());
        assert_eq!(ticks, vec![10.0, 90.0, 500.0, 1000.0]);
    }

    /// Width and height from a PNG's IHDR chunk, `None` if the bytes are not
    /// a PNG.
    fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
        const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
        if bytes.get(..8)? != SIGNATURE || bytes.get(12..16)? != b"IHDR" {
            return None;
        }
        let be = |at: usize| Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
        Some((be(16)?, be(20)?))
    }

    #[test]
    fn draws_pngs_of_the_chart_size() {
        crate::font::register().expect("embedded font");
        let dir = std::env::temp_dir().join(format!("hexdash-plot-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let runs = vec![
            data::orders("sqlite", 10.0, 10.0, 3.0),
            data::orders("sqlite", 1000.0, 883.0, 285.0),
            data::orders("postgres", 500.0, 500.0, 2.7),
        ];
        let series = group(&runs, &HashMap::new());
        let refs: Vec<&Series> = series.iter().collect();
        for spec in SPECS.iter().filter(|s| s.scenario == Scenario::Orders) {
            let path = dir.join(spec.file);
            assert!(draw(spec, &refs, &path).expect("draws"), "{}", spec.file);
            let bytes = std::fs::read(&path).expect("written");
            assert_eq!(
                png_size(&bytes),
                Some((WIDTH_PX, HEIGHT_PX)),
                "{}",
                spec.file
            );
        }
        // Nothing to show: no file.
        let ingest = &SPECS[0];
        let path = dir.join(ingest.file);
        assert!(!draw(ingest, &[], &path).expect("nothing to draw"));
        assert!(!path.exists());
        // Nothing a log axis can show either.
        let zero = group(&[data::orders("sqlite", 10.0, 10.0, 0.0)], &HashMap::new());
        let latency = &SPECS[2];
        let path = dir.join("zero.png");
        assert!(!draw(latency, &[&zero[0]], &path).expect("nothing to draw"));
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
