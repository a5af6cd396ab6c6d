//! Charts drawn with plotters, as SVG (for the HTML page) and as PNG files.

use std::sync::Once;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

static FONT: Once = Once::new();

/// Registers the bundled DejaVu Sans as `sans-serif` (once).
fn font() {
    FONT.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../assets/DejaVuSans.ttf");
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).ok();
    });
}

/// Chart size in pixels.
pub const SIZE: (u32, u32) = (720, 420);

/// A line chart: its title, axis labels and named series of `(x, y)` points.
#[derive(Debug, Clone)]
pub struct LineChart {
    /// The title.
    pub title: String,
    /// The x axis label.
    pub x_label: String,
    /// The series.
    pub series: Vec<(String, Vec<(f64, f64)>)>,
    /// Points (markers) rather than lines, for series with few values.
    pub markers: bool,
}

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

type Failure = Box<dyn std::error::Error>;

fn bounds(chart: &LineChart) -> Option<((f64, f64), (f64, f64))> {
    let points = chart.series.iter().flat_map(|(_, p)| p.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for &(x, y) in points {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if !x0.is_finite() {
        return None;
    }
    if x1 == x0 {
        x1 = x0 + 1.0;
    }
    // A little room on both sides, so that markers at the ends are drawn whole.
    let pad = (x1 - x0) * 0.02;
    (x0, x1) = (x0 - pad, x1 + pad);
    if y1 == y0 {
        let pad = if y0 == 0.0 { 1.0 } else { y0.abs() * 0.1 };
        (y0, y1) = (y0 - pad, y1 + pad);
    }
    Some(((x0, x1), (y0, y1)))
}

/// An axis label: integers without decimals, others with as few digits as they need.
fn axis_number(v: f64) -> String {
    if v == v.round() && v.abs() < 1e7 {
        format!("{}", v as i64)
    } else if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e5) {
        format!("{v:.1e}")
    } else {
        let text = format!("{v:.4}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// The corner of the plot with the fewest data points under it, where the legend hides least
/// (upper right when several are equally free).
fn legend_corner(chart: &LineChart, x: (f64, f64), y: (f64, f64)) -> SeriesLabelPosition {
    let log = wants_log(y);
    let y_of = |v: f64| if log { v.ln() } else { v };
    let (y0, y1) = (y_of(y.0), y_of(y.1));
    let corners = [
        (SeriesLabelPosition::UpperRight, true, true),
        (SeriesLabelPosition::UpperLeft, false, true),
        (SeriesLabelPosition::LowerRight, true, false),
        (SeriesLabelPosition::LowerLeft, false, false),
    ];
    let covered = |right: bool, upper: bool| {
        chart
            .series
            .iter()
            .flat_map(|(_, points)| points.iter())
            .filter(|&&(px, py)| {
                let fx = (px - x.0) / (x.1 - x.0);
                let fy = (y_of(py) - y0) / (y1 - y0);
                let in_x = if right { fx > 0.6 } else { fx < 0.4 };
                let in_y = if upper { fy > 0.65 } else { fy < 0.35 };
                in_x && in_y
            })
            .count()
    };
    corners
        .into_iter()
        .min_by_key(|(_, right, upper)| covered(*right, *upper))
        .map(|(position, _, _)| position)
        .unwrap_or(SeriesLabelPosition::UpperRight)
}

/// Whether a chart's values span enough orders of magnitude (all positive) for a log scale.
fn wants_log(y: (f64, f64)) -> bool {
    y.0 > 0.0 && y.1 / y.0 > 30.0
}

fn draw_lines<DB: DrawingBackend>(
    area: DrawingArea<DB, plotters::coord::Shift>,
    chart: &LineChart,
) -> Result<(), Failure>
where
    DB::ErrorType: 'static,
{
    font();
    area.fill(&WHITE)?;
    let Some(((x0, x1), (y0, y1))) = bounds(chart) else {
        area.draw(&Text::new(
            format!("{}: nothing logged", chart.title),
            (20, 20),
            ("sans-serif", 16),
        ))?;
        return Ok(());
    };
    let mut builder = ChartBuilder::on(&area);
    builder
        .caption(&chart.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(72);
    macro_rules! finish {
        ($ctx:expr, $y_desc:expr) => {{
            let mut ctx = $ctx;
            ctx.configure_mesh()
                .x_desc(chart.x_label.as_str())
                .y_desc($y_desc)
                .x_labels(8)
                .y_labels(8)
                .x_label_formatter(&|x| axis_number(*x))
                .y_label_formatter(&|y| axis_number(*y))
                .label_style(("sans-serif", 13))
                .axis_desc_style(("sans-serif", 14))
                .light_line_style(RGBColor(235, 235, 235))
                .draw()?;
            for (i, (name, points)) in chart.series.iter().enumerate() {
                let color = COLORS[i % COLORS.len()];
                let style = ShapeStyle::from(&color).stroke_width(2);
                if chart.markers || points.len() == 1 {
                    ctx.draw_series(points.iter().map(|&p| Circle::new(p, 4, style.filled())))?
                        .label(name.as_str())
                        .legend(move |(x, y)| Circle::new((x + 10, y), 4, style.filled()));
                } else {
                    ctx.draw_series(LineSeries::new(points.iter().copied(), style))?
                        .label(name.as_str())
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
                }
            }
            ctx.configure_series_labels()
                .position(legend_corner(chart, (x0, x1), (y0, y1)))
                .label_font(("sans-serif", 13))
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(180, 180, 180))
                .draw()?;
        }};
    }
    let pad = (y1 - y0) * 0.05;
    if wants_log((y0, y1)) {
        finish!(
            builder.build_cartesian_2d(x0..x1, (y0 * 0.9..y1 * 1.1).log_scale())?,
            "value (log scale)"
        );
    } else {
        let y: RangedCoordf64 = (y0 - pad..y1 + pad).into();
        finish!(builder.build_cartesian_2d(x0..x1, y)?, "value");
    }
    area.present()?;
    Ok(())
}

fn draw_heatmap<DB: DrawingBackend>(
    area: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    matrix: &[Vec<u64>],
) -> Result<(), Failure>
where
    DB::ErrorType: 'static,
{
    font();
    area.fill(&WHITE)?;
    let n = matrix.len();
    let max = matrix.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
    let mut ctx = ChartBuilder::on(&area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        // An integer range covers both its ends: 0..n-1 makes the n cells.
        .build_cartesian_2d(
            (0..n.saturating_sub(1)).into_segmented(),
            (0..n.saturating_sub(1)).into_segmented(),
        )?;
    // Row i (true class i) is drawn at y = n - 1 - i, so that class 0 is the top row.
    let class_at = |v: &SegmentValue<usize>, flip: bool| match v {
        SegmentValue::CenterOf(k) if *k < n => (if flip { n - 1 - k } else { *k }).to_string(),
        _ => String::new(),
    };
    ctx.configure_mesh()
        .disable_mesh()
        .x_desc("predicted class")
        .y_desc("true class")
        .x_labels(n)
        .y_labels(n)
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .x_label_formatter(&|v| class_at(v, false))
        .y_label_formatter(&|v| class_at(v, true))
        .draw()?;
    let font_size = if n <= 10 { 15 } else { 10 };
    for (i, row) in matrix.iter().enumerate() {
        for (j, &count) in row.iter().enumerate() {
            let shade = count as f64 / max;
            let color = RGBColor(
                (255.0 - shade * 224.0) as u8,
                (255.0 - shade * 136.0) as u8,
                (255.0 - shade * 75.0) as u8,
            );
            let y = n - 1 - i;
            ctx.draw_series(std::iter::once(Rectangle::new(
                [
                    (SegmentValue::Exact(j), SegmentValue::Exact(y)),
                    (SegmentValue::Exact(j + 1), SegmentValue::Exact(y + 1)),
                ],
                color.filled(),
            )))?;
            let text_color = if shade > 0.55 { WHITE } else { BLACK };
            ctx.draw_series(std::iter::once(Text::new(
                count.to_string(),
                (SegmentValue::CenterOf(j), SegmentValue::CenterOf(y)),
                ("sans-serif", font_size)
                    .into_font()
                    .color(&text_color)
                    .pos(plotters::style::text_anchor::Pos::new(
                        plotters::style::text_anchor::HPos::Center,
                        plotters::style::text_anchor::VPos::Center,
                    )),
            )))?;
        }
    }
    area.present()?;
    Ok(())
}

/// A chart as SVG text.
pub fn line_svg(chart: &LineChart) -> Result<String, String> {
    let mut svg = String::new();
    draw_lines(
        SVGBackend::with_string(&mut svg, SIZE).into_drawing_area(),
        chart,
    )
    .map_err(|e| e.to_string())?;
    Ok(svg)
}

/// A chart as PNG bytes.
pub fn line_png(chart: &LineChart) -> Result<Vec<u8>, String> {
    let mut rgb = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
    draw_lines(
        BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area(),
        chart,
    )
    .map_err(|e| e.to_string())?;
    encode_png(&rgb, SIZE)
}

/// A confusion matrix heat map as SVG text.
pub fn heatmap_svg(title: &str, matrix: &[Vec<u64>]) -> Result<String, String> {
    let mut svg = String::new();
    draw_heatmap(
        SVGBackend::with_string(&mut svg, (520, 480)).into_drawing_area(),
        title,
        matrix,
    )
    .map_err(|e| e.to_string())?;
    Ok(svg)
}

/// A confusion matrix heat map as PNG bytes.
pub fn heatmap_png(title: &str, matrix: &[Vec<u64>]) -> Result<Vec<u8>, String> {
    let size = (520, 480);
    let mut rgb = vec![0u8; (size.0 * size.1 * 3) as usize];
    draw_heatmap(
        BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area(),
        title,
        matrix,
    )
    .map_err(|e| e.to_string())?;
    encode_png(&rgb, size)
}

/// Encodes an RGB buffer as PNG.
pub fn encode_png(rgb: &[u8], (width, height): (u32, u32)) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(rgb).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_lines_and_heatmaps_in_both_formats() {
        let chart = LineChart {
            title: "loss".into(),
            x_label: "step".into(),
            series: vec![
                (
                    "train_loss".into(),
                    vec![(1.0, 1.0), (2.0, 0.5), (3.0, 0.01)],
                ),
                ("val_loss".into(), vec![(3.0, 0.02)]),
            ],
            markers: false,
        };
        let svg = line_svg(&chart).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("train_loss") && svg.contains("log scale"),
            "{}",
            &svg[..200]
        );
        let png = line_png(&chart).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let heat = heatmap_svg("confusion", &[vec![5, 1], vec![0, 7]]).unwrap();
        let compact: String = heat.split_whitespace().collect();
        assert!(compact.contains(">7<") && compact.contains(">5<"), "{heat}");
        assert_eq!(
            &heatmap_png("confusion", &[vec![5, 1], vec![0, 7]]).unwrap()[1..4],
            b"PNG"
        );
    }
}
