//! Time-series charts as inline SVG, drawn with plotters.
//!
//! Plotters' SVG backend knows no dash patterns, so a dashed line is drawn in
//! a colour whose two low blue bits encode the pattern, and those strokes are
//! rewritten afterwards. Palette colours keep those bits clear.

use crate::format::sig3;
use crate::series;
use crate::ReportError;
use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::Color as _;

/// Size of every chart's drawing (scaled by CSS to the page width).
pub const WIDTH: u32 = 640;
pub const HEIGHT: u32 = 300;
/// About the plot area's width in pixels: two points per bucket at most.
const BUCKETS: usize = 560;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Color(pub u8, pub u8, pub u8);

impl Color {
    pub fn hex(self) -> String {
        format!("#{:02X}{:02X}{:02X}", self.0, self.1, self.2 & !3)
    }

    fn rgb(self) -> RGBColor {
        RGBColor(self.0, self.1, self.2 & !3)
    }

    fn encoded(self, dash: Dash) -> RGBColor {
        RGBColor(self.0, self.1, (self.2 & !3) | dash as u8)
    }
}

/// Okabe–Ito colours (safe for colour-blind readers), blue bits cleared.
pub const BLUE: Color = Color(0, 114, 176);
pub const ORANGE: Color = Color(230, 159, 0);
pub const GREEN: Color = Color(0, 158, 112);
pub const VERMILION: Color = Color(213, 94, 0);
pub const PURPLE: Color = Color(204, 121, 164);
pub const SKY: Color = Color(86, 180, 232);
pub const GREY: Color = Color(100, 100, 100);
pub const BLACK_INK: Color = Color(30, 30, 30);
pub const SLO_RED: Color = Color(176, 0, 32);

/// Colours for runs or series without a fixed meaning, in order.
pub const PALETTE: [Color; 7] = [BLUE, VERMILION, GREEN, ORANGE, PURPLE, SKY, BLACK_INK];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dash {
    Solid = 0,
    Dashed = 1,
    Dotted = 2,
}

impl Dash {
    pub fn pattern(self) -> Option<&'static str> {
        match self {
            Dash::Solid => None,
            Dash::Dashed => Some("7 4"),
            Dash::Dotted => Some("2 3"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Line {
    pub label: String,
    pub color: Color,
    pub dash: Dash,
    pub width: u32,
    /// Shade the area under the line.
    pub fill: bool,
    /// (time in seconds, value in the chart's unit); NaN values leave a gap.
    pub points: Vec<(f64, f64)>,
}

impl Line {
    pub fn new(label: impl Into<String>, color: Color, points: Vec<(f64, f64)>) -> Line {
        Line {
            label: label.into(),
            color,
            dash: Dash::Solid,
            width: 2,
            fill: false,
            points,
        }
    }

    pub fn dash(mut self, dash: Dash) -> Line {
        self.dash = dash;
        self
    }

    pub fn width(mut self, width: u32) -> Line {
        self.width = width;
        self
    }

    pub fn filled(mut self) -> Line {
        self.fill = true;
        self
    }
}

/// A horizontal limit (an SLO threshold), labelled at the right.
#[derive(Debug, Clone)]
pub struct Threshold {
    pub label: String,
    pub value: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerKind {
    ScaleUp,
    ScaleDown,
    /// A pod or node became ready after the start (a cold start).
    Ready,
}

#[derive(Debug, Clone, Copy)]
pub struct Marker {
    pub kind: MarkerKind,
    pub t: f64,
    pub y: f64,
    pub color: Color,
}

/// One chart: what it shows and how its y axis reads.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Anchor and test handle: `traffic`, `latency`, `replicas-resnet`, ...
    pub id: String,
    pub title: String,
    /// One sentence under the title: how to read the chart.
    pub note: String,
    /// Axis description with the unit: `requests per second (req/s)`.
    pub y_label: String,
    /// A ceiling the axis should at least reach (100 for percentages).
    pub y_min_top: f64,
    /// Tick labels only on whole numbers (replicas, nodes).
    pub integer: bool,
    /// Use a logarithmic y axis when the data spans more than a decade or so
    /// (latency with a spike), so the SLO line and the calm hours stay legible.
    pub log_y: bool,
    pub lines: Vec<Line>,
    pub thresholds: Vec<Threshold>,
    pub markers: Vec<Marker>,
}

impl Chart {
    pub fn new(
        id: impl Into<String>,
        title: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Chart {
        Chart {
            id: id.into(),
            title: title.into(),
            note: String::new(),
            y_label: y_label.into(),
            y_min_top: 0.0,
            integer: false,
            log_y: false,
            lines: Vec::new(),
            thresholds: Vec::new(),
            markers: Vec::new(),
        }
    }

    /// True when some line has at least one finite point.
    pub fn has_data(&self) -> bool {
        self.lines
            .iter()
            .any(|l| l.points.iter().any(|p| p.0.is_finite() && p.1.is_finite()))
    }
}

/// The shared time axis: where runs end, the warm-up, and the display unit.
#[derive(Debug, Clone, Copy)]
pub struct TimeAxis {
    pub end_seconds: f64,
    pub warmup_seconds: f64,
}

impl TimeAxis {
    /// Seconds per display unit and the unit's name.
    fn unit(self) -> (f64, &'static str) {
        if self.end_seconds > 3.0 * 3600.0 {
            (3600.0, "h")
        } else if self.end_seconds > 600.0 {
            (60.0, "min")
        } else {
            (1.0, "s")
        }
    }
}

/// Draws `chart` as an SVG document meant to be inlined in HTML.
pub fn draw(chart: &Chart, axis: TimeAxis) -> Result<String, ReportError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        plot(&root, chart, axis).map_err(|e| ReportError::Chart {
            chart: chart.id.clone(),
            message: e.to_string(),
        })?;
    }
    Ok(finish(svg, chart))
}

type DrawResult<T> = Result<T, DrawingAreaErrorKind<std::io::Error>>;

fn plot(root: &DrawingArea<SVGBackend, Shift>, chart: &Chart, axis: TimeAxis) -> DrawResult<()> {
    let top = y_top(chart);
    match log_floor(chart, top) {
        Some(floor) => plot_in(root, chart, axis, (floor..top).log_scale(), floor, top),
        None => plot_in(root, chart, axis, 0.0..top, 0.0, top),
    }
}

/// The bottom of a logarithmic axis, when the chart asks for one and its data
/// spans enough decades to need it.
fn log_floor(chart: &Chart, top: f64) -> Option<f64> {
    if !chart.log_y {
        return None;
    }
    let low = chart
        .lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold(f64::INFINITY, f64::min);
    if !low.is_finite() || top / low < 20.0 {
        return None;
    }
    Some(libm::pow(10.0, libm::log10(low * 0.8).floor()))
}

fn plot_in<Y>(
    root: &DrawingArea<SVGBackend, Shift>,
    chart: &Chart,
    axis: TimeAxis,
    y_spec: Y,
    floor: f64,
    y_top: f64,
) -> DrawResult<()>
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let (per_unit, unit) = axis.unit();
    let x_end = (axis.end_seconds / per_unit).max(1e-9);
    root.fill(&WHITE)?;
    let mut ctx = ChartBuilder::on(root)
        .margin_top(14)
        .margin_right(22)
        .margin_left(6)
        .margin_bottom(4)
        .x_label_area_size(46)
        .y_label_area_size(66)
        .build_cartesian_2d(0.0..x_end, y_spec)?;
    let ink = RGBColor(70, 70, 70);
    let integer = chart.integer;
    let y_fmt = move |v: &f64| {
        if integer && (v.fract().abs() > 1e-9) {
            String::new()
        } else {
            tick(*v)
        }
    };
    let x_fmt = |v: &f64| sig3(*v);
    let y_desc = if floor > 0.0 {
        format!("{} (log scale)", chart.y_label)
    } else {
        chart.y_label.clone()
    };
    ctx.configure_mesh()
        .x_desc(format!("time since start ({unit})"))
        .y_desc(y_desc)
        .x_labels(8)
        .y_labels(if integer {
            (y_top as usize + 1).clamp(2, 6)
        } else if floor > 0.0 {
            // Log axes put few labels per decade unless asked for more.
            12
        } else {
            6
        })
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style(("sans-serif", 17).into_font().color(&ink))
        .axis_desc_style(("sans-serif", 17).into_font().color(&ink))
        .bold_line_style(RGBColor(226, 226, 226))
        .light_line_style(TRANSPARENT)
        .axis_style(RGBColor(150, 150, 150))
        .draw()?;

    if floor > 0.0 && y_top / floor <= libm::pow(10.0, 2.5) {
        // Plotters labels only the decades of a log axis; 2× and 5× steps
        // make values readable without counting gridlines (when they fit).
        let label_font = ("sans-serif", 17)
            .into_font()
            .color(&ink)
            .pos(Pos::new(HPos::Right, VPos::Center));
        let mut decade = floor;
        while decade < y_top {
            for v in [2.0 * decade, 5.0 * decade] {
                if v <= floor || v >= y_top {
                    continue;
                }
                ctx.draw_series(std::iter::once(PathElement::new(
                    vec![(0.0, v), (x_end, v)],
                    RGBColor(238, 238, 238),
                )))?;
                let (px, py) = ctx.backend_coord(&(0.0, v));
                root.draw(&Text::new(tick(v), (px - 10, py), label_font.clone()))?;
            }
            decade *= 10.0;
        }
    }

    if axis.warmup_seconds > 0.0 {
        let w = (axis.warmup_seconds / per_unit).min(x_end);
        ctx.draw_series(std::iter::once(Rectangle::new(
            [(0.0, floor), (w, y_top)],
            RGBColor(0, 0, 0).mix(0.06).filled(),
        )))?;
        ctx.draw_series(std::iter::once(
            EmptyElement::at((0.0, y_top))
                + Text::new(
                    "warm-up",
                    (4, 4),
                    ("sans-serif", 15)
                        .into_font()
                        .color(&RGBColor(110, 110, 110)),
                ),
        ))?;
    }

    let span = (0.0, x_end);
    // On a log axis, zero and below sit on the floor.
    let scaled = |l: &Line| -> Vec<(f64, f64)> {
        l.points
            .iter()
            .map(|&(t, y)| {
                (
                    t / per_unit,
                    if floor > 0.0 && y < floor { floor } else { y },
                )
            })
            .collect()
    };
    for line in chart.lines.iter().filter(|l| l.fill) {
        let fill = line.color.rgb().mix(0.14);
        for seg in series::prepare(&scaled(line), span, BUCKETS) {
            ctx.draw_series(AreaSeries::new(seg, floor, fill).border_style(ShapeStyle {
                color: TRANSPARENT,
                filled: false,
                stroke_width: 0,
            }))?;
        }
    }
    for line in &chart.lines {
        let style = ShapeStyle {
            color: line.color.encoded(line.dash).to_rgba(),
            filled: false,
            stroke_width: line.width,
        };
        for seg in series::prepare(&scaled(line), span, BUCKETS) {
            if seg.len() == 1 {
                // A lone point still shows.
                ctx.draw_series(std::iter::once(Circle::new(seg[0], 2, style.filled())))?;
            } else {
                ctx.draw_series(LineSeries::new(seg, style))?;
            }
        }
    }

    let slo_style = ShapeStyle {
        color: SLO_RED.encoded(Dash::Dashed).to_rgba(),
        filled: false,
        stroke_width: 2,
    };
    let mut thresholds: Vec<&Threshold> = chart
        .thresholds
        .iter()
        .filter(|t| t.value.is_finite() && t.value > floor)
        .collect();
    thresholds.sort_by(|a, b| a.value.total_cmp(&b.value));
    // Labels stack upwards when their lines are close together.
    let mut last_label_y = i32::MAX;
    for th in thresholds {
        ctx.draw_series(std::iter::once(PathElement::new(
            vec![(0.0, th.value), (x_end, th.value)],
            slo_style,
        )))?;
        let (px, py) = ctx.backend_coord(&(x_end, th.value));
        let y = (py - 4).min(last_label_y - 17);
        last_label_y = y;
        let font = ("sans-serif", 16)
            .into_font()
            .color(&SLO_RED.rgb())
            .pos(Pos::new(HPos::Right, VPos::Bottom));
        root.draw(&Text::new(th.label.clone(), (px - 4, y), font))?;
    }

    // One marker per pixel column and kind is enough to see them.
    let mut last: Option<(MarkerKind, i64, i64)> = None;
    for m in &chart.markers {
        let x = m.t / per_unit;
        let key = (
            m.kind,
            (x / x_end * BUCKETS as f64).round() as i64,
            (m.y / y_top * 100.0).round() as i64,
        );
        if last == Some(key) || !x.is_finite() || !m.y.is_finite() {
            continue;
        }
        last = Some(key);
        let at = EmptyElement::at((x, m.y));
        let c = m.color.rgb();
        match m.kind {
            MarkerKind::ScaleUp => ctx.draw_series(std::iter::once(
                at + Polygon::new(vec![(0, -11), (6, -3), (-6, -3)], c.filled()),
            ))?,
            MarkerKind::ScaleDown => ctx.draw_series(std::iter::once(
                at + Polygon::new(vec![(0, -3), (6, -11), (-6, -11)], c.filled()),
            ))?,
            MarkerKind::Ready => ctx.draw_series(std::iter::once(
                at + Circle::new(
                    (0, 0),
                    4,
                    ShapeStyle {
                        color: c.to_rgba(),
                        filled: false,
                        stroke_width: 2,
                    },
                ),
            ))?,
        };
    }
    root.present()?;
    Ok(())
}

/// Axis numbers kept short enough for the label column: `60k`, `1.5M`.
fn tick(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", sig3(v / 1e6))
    } else if a >= 1e4 {
        format!("{}k", sig3(v / 1e3))
    } else {
        sig3(v)
    }
}

fn y_top(chart: &Chart) -> f64 {
    let data = chart
        .lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .chain(chart.thresholds.iter().map(|t| t.value))
        .chain(chart.markers.iter().map(|m| m.y))
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    let top = (data * 1.1).max(chart.y_min_top);
    if chart.integer {
        top.max(1.0).ceil()
    } else if top > 0.0 && top.is_finite() {
        top
    } else {
        1.0
    }
}

/// Makes plotters' SVG fit an HTML page: scalable, labelled, dashes applied.
fn finish(svg: String, chart: &Chart) -> String {
    let mut svg = svg.replacen(
        &format!("<svg width=\"{WIDTH}\" height=\"{HEIGHT}\" "),
        &format!(
            "<svg class=\"chart\" role=\"img\" aria-label=\"{}\" data-chart=\"{}\" ",
            crate::html::esc(&chart.title),
            crate::html::esc(&chart.id)
        ),
        1,
    );
    svg = svg.replace(
        "<polyline fill=\"none\"",
        "<polyline fill=\"none\" stroke-linejoin=\"round\"",
    );
    let mut colors: Vec<Color> = chart.lines.iter().map(|l| l.color).collect();
    colors.push(SLO_RED);
    for c in colors {
        for dash in [Dash::Dashed, Dash::Dotted] {
            let enc = c.encoded(dash);
            let from = format!("stroke=\"#{:02X}{:02X}{:02X}\"", enc.0, enc.1, enc.2);
            if svg.contains(&from) {
                let to = format!(
                    "stroke=\"{}\" stroke-dasharray=\"{}\"",
                    c.hex(),
                    dash.pattern().unwrap_or_default()
                );
                svg = svg.replace(&from, &to);
            }
        }
    }
    svg
}
