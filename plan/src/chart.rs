//! The cost/p99 scatter with the Pareto front, as inline SVG drawn with plotters.

use crate::rank::Ranking;
use crate::search::Outcome;
use plotters::prelude::*;

const PASS: RGBColor = RGBColor(0, 114, 176);
const FAIL: RGBColor = RGBColor(213, 94, 0);
const FRONT: RGBColor = RGBColor(30, 30, 30);
const BOUND: RGBColor = RGBColor(176, 0, 32);

/// Every simulated candidate (blue passes, orange fails), the front as a
/// line, the winner ringed, and the p99 bound as a horizontal line. p99 is on
/// a log axis: failures can be orders of magnitude slower.
pub fn pareto_svg(o: &Outcome, r: &Ranking, p99_bound: Option<f64>) -> Result<String, String> {
    let points: Vec<(f64, f64, bool)> = o
        .evaluated
        .iter()
        .map(|e| (e.monthly_cost_usd(), e.p99_seconds() * 1000.0, e.passed()))
        .filter(|p| p.1 > 0.0)
        .collect();
    if points.is_empty() {
        return Ok("<p>No candidate was simulated.</p>".into());
    }
    let bound_ms = p99_bound.map(|b| b * 1000.0);
    let (mut x0, mut x1) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.0), b.max(p.0))
        });
    let pad = ((x1 - x0) * 0.05).max(1.0);
    x0 = (x0 - pad).max(0.0);
    x1 += pad;
    let ys = points.iter().map(|p| p.1).chain(bound_ms);
    let (y0, y1) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
        (a.min(y), b.max(y))
    });
    // Start the log axis at a power of ten: plotters labels decades from there.
    let (y0, y1) = (libm::pow(10.0, libm::log10(y0 / 1.2).floor()), y1 * 1.5);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 400)).into_drawing_area();
        let e = |e: &dyn std::fmt::Debug| format!("{e:?}");
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
            .map_err(|x| e(&x))?;
        chart
            .configure_mesh()
            .y_labels(12)
            // Minor lines of a log axis crowd into grey bands; keep the major ones.
            .light_line_style(WHITE)
            .x_desc("monthly cost (USD)")
            .y_desc("p99 latency (ms)")
            .x_label_formatter(&|v| format!("${v:.0}"))
            .y_label_formatter(&|v| {
                format!("{v:.3}")
                    .trim_end_matches('0')
                    .trim_end_matches('.')
                    .to_string()
            })
            .draw()
            .map_err(|x| e(&x))?;
        if let Some(b) = bound_ms {
            chart
                .draw_series(LineSeries::new(
                    vec![(x0, b), (x1, b)],
                    BOUND.stroke_width(1),
                ))
                .map_err(|x| e(&x))?
                .label("p99 SLO")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BOUND));
        }
        let front: Vec<(f64, f64)> = r
            .front
            .iter()
            .map(|e| (e.monthly_cost_usd(), e.p99_seconds() * 1000.0))
            .filter(|p| p.1 > 0.0)
            .collect();
        chart
            .draw_series(LineSeries::new(front, FRONT.stroke_width(2)))
            .map_err(|x| e(&x))?
            .label("Pareto front")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], FRONT.stroke_width(2)));
        chart
            .draw_series(
                points
                    .iter()
                    .filter(|p| p.2)
                    .map(|p| Circle::new((p.0, p.1), 4, PASS.filled())),
            )
            .map_err(|x| e(&x))?
            .label("passes")
            .legend(|(x, y)| Circle::new((x + 8, y), 4, PASS.filled()));
        chart
            .draw_series(
                points
                    .iter()
                    .filter(|p| !p.2)
                    .map(|p| Circle::new((p.0, p.1), 4, FAIL.filled())),
            )
            .map_err(|x| e(&x))?
            .label("fails")
            .legend(|(x, y)| Circle::new((x + 8, y), 4, FAIL.filled()));
        if let Some(w) = o.winner.and_then(|id| o.get(id)) {
            let p = (w.monthly_cost_usd(), w.p99_seconds() * 1000.0);
            if p.1 > 0.0 {
                chart
                    .draw_series(std::iter::once(Circle::new(p, 9, FRONT.stroke_width(2))))
                    .map_err(|x| e(&x))?
                    .label("plan")
                    .legend(|(x, y)| Circle::new((x + 8, y), 6, FRONT.stroke_width(2)));
            }
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(|x| e(&x))?;
        root.present().map_err(|x| e(&x))?;
    }
    Ok(svg)
}
