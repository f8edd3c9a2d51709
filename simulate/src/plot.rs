//! Charts of a comparison: one PNG per figure, grouped bars (one group per
//! scenario, one bar per policy), drawn with plotters and the embedded font
//! as `loadtest`'s charts are.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::font::{self, FAMILY};
use crate::report::{Report, Stat};
use crate::text::FixedText;

/// Chart size, pixels.
const WIDTH_PX: u32 = 1280;
const HEIGHT_PX: u32 = 720;
/// Okabe–Ito colours, as loadtest's charts use, in the order policies get
/// them (all eight, so a comparison of up to eight policies repeats none).
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(240, 228, 66),
    RGBColor(0, 0, 0),
];
/// Share of the plot's height one legend line takes: the value axis gets
/// that much headroom per policy, so the legend clears the bars.
const LEGEND_LINE_SHARE: f64 = 0.045;

/// One chart: a figure of every report.
struct Chart {
    file: &'static str,
    title: &'static str,
    y_desc: &'static str,
    value: fn(&Report) -> f64,
}

fn minutes(s: &Stat) -> f64 {
    s.mean / 60.0
}

const CHARTS: [Chart; 6] = [
    Chart {
        file: "pickup_mean.png",
        title: "Mean pickup time (ready to dispatch → courier at restaurant)",
        y_desc: "minutes",
        value: |r| minutes(&r.pickup_s),
    },
    Chart {
        file: "pickup_p90.png",
        title: "p90 pickup time",
        y_desc: "minutes",
        value: |r| r.pickup_s.p90 / 60.0,
    },
    Chart {
        file: "click_to_door_mean.png",
        title: "Mean click-to-door time",
        y_desc: "minutes",
        value: |r| minutes(&r.click_to_door_s),
    },
    Chart {
        file: "courier_wait_mean.png",
        title: "Mean courier wait at the restaurant",
        y_desc: "minutes",
        value: |r| minutes(&r.courier_wait_s),
    },
    Chart {
        file: "busy_mean.png",
        title: "Mean courier busy time per order (accept → delivered)",
        y_desc: "minutes",
        value: |r| minutes(&r.busy_s),
    },
    Chart {
        file: "utilisation.png",
        title: "Measured fleet utilisation",
        y_desc: "percent",
        value: |r| r.utilisation * 100.0,
    },
];

/// Draws every chart of `reports` into `dir` (which must exist); returns
/// the files written.
pub fn draw(reports: &[Report], dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    font::register()?;
    let mut written = Vec::new();
    for chart in &CHARTS {
        let path = dir.join(chart.file);
        draw_one(chart, reports, &path)?;
        written.push(path);
    }
    Ok(written)
}

/// Names in first-seen order.
fn distinct<'a>(names: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for n in names {
        if !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

fn draw_one(chart: &Chart, reports: &[Report], path: &Path) -> anyhow::Result<()> {
    let scenarios = distinct(reports.iter().map(|r| r.scenario.as_str()));
    let policies = distinct(reports.iter().map(|r| r.policy.as_str()));
    let top = reports
        .iter()
        .map(chart.value)
        .fold(0.0f64, f64::max)
        .max(1e-9)
        / (1.0 - LEGEND_LINE_SHARE * (policies.len() as f64 + 1.0)).max(0.4);
    let backend = FixedText::new(
        BitMapBackend::new(path, (WIDTH_PX, HEIGHT_PX)),
        font::dejavu_sans()?,
    );
    let root = backend.into_drawing_area();
    root.fill(&WHITE).map_err(draw_error)?;
    let groups = scenarios.len().max(1);
    let mut ctx = ChartBuilder::on(&root)
        .caption(chart.title, (FAMILY, 30))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..groups as f64, 0.0..top)
        .map_err(draw_error)?;
    ctx.configure_mesh()
        .disable_x_mesh()
        .x_labels(groups * 2 + 1)
        .x_label_formatter(&|x| {
            // Labels at the middle of each group.
            let i = x.floor() as usize;
            if (x - i as f64 - 0.5).abs() < 1e-6 {
                scenarios.get(i).map_or(String::new(), |s| (*s).to_owned())
            } else {
                String::new()
            }
        })
        .y_desc(chart.y_desc)
        .label_style((FAMILY, 20))
        .axis_desc_style((FAMILY, 22))
        .draw()
        .map_err(draw_error)?;
    let width = 0.8 / policies.len().max(1) as f64;
    for (p, policy) in policies.iter().enumerate() {
        let colour = PALETTE[p % PALETTE.len()];
        let bars = reports
            .iter()
            .filter(|r| r.policy == *policy)
            .filter_map(|r| {
                let g = scenarios.iter().position(|s| *s == r.scenario)?;
                let x0 = g as f64 + 0.1 + p as f64 * width;
                Some(Rectangle::new(
                    [(x0, 0.0), (x0 + width * 0.9, (chart.value)(r))],
                    colour.filled(),
                ))
            });
        ctx.draw_series(bars)
            .map_err(draw_error)?
            .label(*policy)
            .legend(move |(x, y)| Rectangle::new([(x, y - 8), (x + 16, y + 8)], colour.filled()));
    }
    ctx.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font((FAMILY, 20))
        .draw()
        .map_err(draw_error)?;
    root.present().map_err(draw_error)?;
    Ok(())
}

fn draw_error<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart failed: {e:?}")
}
