//! `kernjit bench --plot FILE.svg`: one chart of the measured rows.
//!
//! Left: per bench line, cold compile time and steady-state call time (and
//! the interpreter's call time with `--interp`) as horizontal bars on a log
//! scale. Right (when several thread counts ran): the speedup of each
//! thread count over the line's first row. Drawn with plotters' SVG backend,
//! whose text is SVG `<text>`, so no font files are needed.

use super::report::{human_time, Engine, Row};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

const COMPILE: RGBColor = RGBColor(0x44, 0x77, 0xaa);
const CALL: RGBColor = RGBColor(0xee, 0x77, 0x33);
const INTERP: RGBColor = RGBColor(0xaa, 0xaa, 0xaa);
/// One colour per extra thread count in the scaling panel.
const THREAD_COLORS: [RGBColor; 4] =
    [RGBColor(0x22, 0x88, 0x33), RGBColor(0xaa, 0x33, 0x77), RGBColor(0x66, 0xcc, 0xee), RGBColor(0xcc, 0xbb, 0x44)];
const FONT: &str = "sans-serif";
/// The height of one bench line's bars.
const ROW_PIXELS: f64 = 42.0;

/// Empty rows below the bars, where the legend (up to 3 entries) goes.
const LEGEND_ROWS: f64 = 1.7;

/// What the chart shows of one bench line.
struct Line {
    label: String,
    compile: f64,
    call: f64,
    call_threads: usize,
    interp: Option<f64>,
    /// (threads, speedup) of the JIT rows after the first.
    scaling: Vec<(usize, f64)>,
}

/// The bench lines of `rows`, in order of first appearance.
fn lines(rows: &[Row]) -> Vec<Line> {
    let mut lines: Vec<(String, Line)> = Vec::new();
    for row in rows {
        let key = format!("{} {}", row.place, row.call);
        let m = &row.measurement;
        let index = match lines.iter().position(|(k, _)| *k == key) {
            Some(index) => index,
            None => {
                let repeats = lines.iter().filter(|(_, line)| line.label.starts_with(m.kernel.as_str())).count();
                let label = if repeats == 0 { m.kernel.clone() } else { format!("{} #{}", m.kernel, repeats + 1) };
                let line = Line { label, compile: 0.0, call: 0.0, call_threads: 0, interp: None, scaling: Vec::new() };
                lines.push((key, line));
                lines.len() - 1
            }
        };
        let line = &mut lines[index].1;
        let median = m.median().as_secs_f64();
        match (row.engine, row.speedup) {
            (Engine::Interp, _) => line.interp = Some(median),
            (Engine::Jit, None) => {
                line.compile = m.compile.total().as_secs_f64();
                line.call = median;
                line.call_threads = m.threads;
            }
            (Engine::Jit, Some(speedup)) => line.scaling.push((m.threads, speedup)),
        }
    }
    lines.into_iter().map(|(_, line)| line).collect()
}

/// Reads one bar's value off a line.
type LineValue = fn(&Line) -> Option<f64>;

/// The SVG text of the chart of `rows`.
pub fn svg(rows: &[Row]) -> Result<String, String> {
    let lines = lines(rows);
    if lines.is_empty() {
        return Err("nothing was measured, so there is nothing to plot".into());
    }
    let scaling = lines.iter().any(|line| !line.scaling.is_empty());
    let width = if scaling { 1200 } else { 800 };
    let height = 110 + (ROW_PIXELS * (lines.len() as f64 + LEGEND_ROWS)) as u32;
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, (width, height)).into_drawing_area();
        draw(&root, &lines, scaling).map_err(|error| format!("cannot draw the plot: {error}"))?;
        root.present().map_err(|error| format!("cannot draw the plot: {error}"))?;
    }
    Ok(text)
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

fn draw(root: &DrawingArea<SVGBackend, Shift>, lines: &[Line], scaling: bool) -> DrawResult {
    root.fill(&WHITE)?;
    let (times, speedups) = if scaling { root.split_horizontally(760) } else { (root.clone(), root.clone()) };
    draw_times(&times, lines)?;
    if scaling {
        draw_scaling(&speedups, lines)?;
    }
    Ok(())
}

/// The vertical extent of bar `slot` of `slots` in row `index`.
fn band(index: usize, slot: usize, slots: usize) -> (f64, f64) {
    let height = 0.8 / slots as f64;
    let top = index as f64 - 0.4 + slot as f64 * height;
    (top + 0.1 * height, top + 0.9 * height)
}

fn label_style(size: u32, h: HPos) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font()).pos(Pos::new(h, VPos::Center))
}

fn draw_times(area: &DrawingArea<SVGBackend, Shift>, lines: &[Line]) -> DrawResult {
    let values = lines.iter().flat_map(|line| [line.compile, line.call].into_iter().chain(line.interp));
    let positive: Vec<f64> = values.filter(|v| *v > 0.0).collect();
    let low = positive.iter().copied().fold(f64::INFINITY, f64::min).max(1e-9) / 3.0;
    let high = positive.iter().copied().fold(0.0, f64::max).max(low * 10.0) * 8.0;
    let slots = if lines.iter().any(|line| line.interp.is_some()) { 3 } else { 2 };
    let rows = lines.len() as f64 + LEGEND_ROWS;
    let mut chart = ChartBuilder::on(area)
        .caption("compile and per-call time (log scale)", (FONT, 18))
        .margin(12)
        .margin_left(150)
        .x_label_area_size(40)
        .build_cartesian_2d((low..high).log_scale(), (rows - 0.5)..-0.5)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_label_formatter(&|seconds| human_time(*seconds))
        .x_desc("time per compile / per call")
        .draw()?;

    let threads = lines.first().map_or(0, |line| line.call_threads);
    let series: [(&str, RGBColor, LineValue); 3] = [
        ("cold compile", COMPILE, |line| Some(line.compile)),
        ("call", CALL, |line| Some(line.call)),
        ("call, interpreter", INTERP, |line| line.interp),
    ];
    for (slot, (name, color, value)) in series.into_iter().enumerate().take(slots) {
        let bars = lines.iter().enumerate().filter_map(|(index, line)| {
            let (top, bottom) = band(index, slot, slots);
            value(line).map(|v| Rectangle::new([(low, top), (v.max(low), bottom)], color.filled()))
        });
        let label = match (name, threads) {
            ("call", 1) => "call (1 thread)".to_string(),
            ("call", _) => format!("call ({threads} threads)"),
            _ => name.to_string(),
        };
        chart
            .draw_series(bars)?
            .label(label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
        let values = lines.iter().enumerate().filter_map(|(index, line)| {
            let (top, bottom) = band(index, slot, slots);
            value(line).map(|v| {
                Text::new(format!(" {}", human_time(v)), (v, (top + bottom) / 2.0), label_style(11, HPos::Left))
            })
        });
        chart.draw_series(values)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    for (index, line) in lines.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(low, index as f64));
        area.draw(&Text::new(line.label.clone(), (x - 8, y), label_style(13, HPos::Right)))?;
    }
    Ok(())
}

fn draw_scaling(area: &DrawingArea<SVGBackend, Shift>, lines: &[Line]) -> DrawResult {
    let mut counts: Vec<usize> = lines.iter().flat_map(|line| line.scaling.iter().map(|(t, _)| *t)).collect();
    counts.sort_unstable();
    counts.dedup();
    let largest = lines.iter().flat_map(|line| line.scaling.iter().map(|(_, s)| *s)).fold(1.0, f64::max);
    let rows = lines.len() as f64 + LEGEND_ROWS;
    let mut chart = ChartBuilder::on(area)
        .caption("thread scaling (speedup)", (FONT, 18))
        .margin(12)
        .x_label_area_size(40)
        .build_cartesian_2d(0.0..(largest * 1.25).ceil(), (rows - 0.5)..-0.5)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_label_formatter(&|x| format!("{x}×"))
        .x_desc("median of the first row / median")
        .draw()?;
    let slots = counts.len();
    for (slot, &threads) in counts.iter().enumerate() {
        let color = THREAD_COLORS[slot % THREAD_COLORS.len()];
        let bars = lines.iter().enumerate().filter_map(|(index, line)| {
            let (top, bottom) = band(index, slot, slots);
            let speedup = line.scaling.iter().find(|(t, _)| *t == threads)?.1;
            Some(Rectangle::new([(0.0, top), (speedup, bottom)], color.filled()))
        });
        chart
            .draw_series(bars)?
            .label(format!("{threads} threads"))
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
        let values = lines.iter().enumerate().filter_map(|(index, line)| {
            let (top, bottom) = band(index, slot, slots);
            let speedup = line.scaling.iter().find(|(t, _)| *t == threads)?.1;
            Some(Text::new(format!(" {speedup:.2}×"), (speedup, (top + bottom) / 2.0), label_style(11, HPos::Left)))
        });
        chart.draw_series(values)?;
    }
    // The break-even line: left of it, more threads made the call slower.
    chart.draw_series(LineSeries::new([(1.0, -0.5), (1.0, rows - 0.5)], BLACK.mix(0.5).stroke_width(1)))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::report::tests::row;

    #[test]
    fn the_chart_names_every_line_and_value() {
        let mut interp = row("dot", 1, 9000, Some(0.01));
        interp.engine = Engine::Interp;
        let rows = [row("dot", 1, 100, None), row("dot", 2, 52, Some(1.92)), interp, row("axpy", 1, 300, None)];
        let svg = svg(&rows).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        for text in ["dot", "axpy", "500 µs", "100 µs", "300 µs", "9.00 ms", "1.92×", "2 threads", "call, interpreter"]
        {
            assert!(svg.contains(text), "{text} missing from the plot");
        }
    }

    #[test]
    fn one_thread_count_draws_only_the_times() {
        let svg = svg(&[row("dot", 1, 100, None)]).unwrap();
        assert!(svg.contains("compile and per-call time") && !svg.contains("thread scaling"));
        assert!(svg.contains("width=\"800\""));
    }

    #[test]
    fn no_rows_is_an_error() {
        assert!(svg(&[]).is_err());
    }
}
