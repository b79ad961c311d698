//! PNG charts of a run, drawn from its `metrics.jsonl`: the loss terms per epoch
//! (`losses.png`) and validation HR@20 / NDCG@20 per epoch with the best epoch marked
//! (`validation.png`).

use std::path::Path;

use plotters::prelude::*;
use plotters::style::FontStyle;

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

pub(crate) fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// The per-epoch columns of a run's `metrics.jsonl`.
pub(crate) struct Series {
    pub(crate) epochs: Vec<f64>,
    rec: Vec<f64>,
    cl1: Vec<f64>,
    cl2: Vec<f64>,
    reg: Vec<f64>,
    pub(crate) hr20: Vec<f64>,
    pub(crate) ndcg20: Vec<f64>,
}

/// Reads `dir/metrics.jsonl`.
pub(crate) fn read(dir: &Path) -> Result<Series, String> {
    let path = dir.join("metrics.jsonl");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut s = Series {
        epochs: vec![],
        rec: vec![],
        cl1: vec![],
        cl2: vec![],
        reg: vec![],
        hr20: vec![],
        ndcg20: vec![],
    };
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("{}: {e}", path.display()))?;
        let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
        s.epochs.push(f("epoch"));
        s.rec.push(f("loss_rec"));
        s.cl1.push(f("loss_cl1"));
        s.cl2.push(f("loss_cl2"));
        s.reg.push(f("loss_reg"));
        s.hr20
            .push(v["valid"]["hr@20"].as_f64().unwrap_or(f64::NAN));
        s.ndcg20
            .push(v["valid"]["ndcg@20"].as_f64().unwrap_or(f64::NAN));
    }
    Ok(s)
}

pub(crate) fn range(v: &[f64]) -> (f64, f64) {
    let lo = v
        .iter()
        .copied()
        .filter(|x| x.is_finite())
        .fold(f64::INFINITY, f64::min);
    let hi = v
        .iter()
        .copied()
        .filter(|x| x.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.1).max(1e-6);
    (lo - pad, hi + pad)
}

pub(crate) type Err = Box<dyn std::error::Error>;

/// A chart with `f64` axes on a PNG.
pub(crate) type Chart<'a, 'b> = ChartContext<
    'a,
    BitMapBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// Draws the chart's legend at `position` in the project's style.
pub(crate) fn legend<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    position: SeriesLabelPosition,
) -> Result<(), Err> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()?;
    Ok(())
}

fn panel(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    title: &str,
    x: &[f64],
    y: &[f64],
    color: RGBColor,
) -> Result<(), Err> {
    let (lo, hi) = range(y);
    let xmax = x.last().copied().unwrap_or(1.0).max(2.0);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(52)
        .build_cartesian_2d(1f64..xmax, lo..hi)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .label_style(("sans-serif", 12))
        .draw()?;
    chart.draw_series(LineSeries::new(
        x.iter().copied().zip(y.iter().copied()),
        color.stroke_width(2),
    ))?;
    Ok(())
}

/// Draws `losses.png` and `validation.png` into the run directory.
pub fn draw(dir: &Path) -> Result<(), Err> {
    register_font();
    let s = read(dir)?;
    if s.epochs.is_empty() {
        return Ok(());
    }
    let losses = dir.join("losses.png");
    {
        let root = BitMapBackend::new(&losses, (1000, 700)).into_drawing_area();
        root.fill(&WHITE)?;
        let areas = root.split_evenly((2, 2));
        panel(&areas[0], "L_rec", &s.epochs, &s.rec, BLUE)?;
        panel(&areas[1], "L_cl1", &s.epochs, &s.cl1, RED)?;
        panel(&areas[2], "L_cl2", &s.epochs, &s.cl2, GREEN)?;
        panel(&areas[3], "R", &s.epochs, &s.reg, MAGENTA)?;
        root.present()?;
    }
    let valid = dir.join("validation.png");
    {
        let root = BitMapBackend::new(&valid, (1000, 500)).into_drawing_area();
        root.fill(&WHITE)?;
        let (_, hi) = range(&[s.hr20.clone(), s.ndcg20.clone()].concat());
        let xmax = s.epochs.last().copied().unwrap_or(1.0).max(2.0);
        let mut chart = ChartBuilder::on(&root)
            .caption("validation HR@20 and NDCG@20", ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(32)
            .y_label_area_size(56)
            .build_cartesian_2d(0.5f64..xmax + 0.5, 0f64..hi.max(1e-3))?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .label_style(("sans-serif", 13))
            .draw()?;
        let pts = |v: &[f64]| {
            s.epochs
                .iter()
                .copied()
                .zip(v.iter().copied())
                .collect::<Vec<_>>()
        };
        chart
            .draw_series(LineSeries::new(pts(&s.hr20), BLUE.stroke_width(2)))?
            .label("HR@20")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLUE));
        chart
            .draw_series(LineSeries::new(pts(&s.ndcg20), RED.stroke_width(2)))?
            .label("NDCG@20")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], RED));
        // The best epoch by the results file (the early-stopping metric), else by HR@20.
        let best = std::fs::read_to_string(dir.join("results.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["best_epoch"].as_f64());
        if let Some(b) = best {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(b, 0.0), (b, hi)],
                    BLACK.stroke_width(1),
                )))?
                .label(format!("best epoch {b}"))
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK));
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        root.present()?;
    }
    Ok(())
}
