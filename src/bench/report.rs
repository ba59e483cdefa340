//! Rendering measured bench rows: the table on stdout, the `--json` objects.
//!
//! The plot lives in [`super::plot`]; all three read the same [`Row`]s.

use super::Measurement;
use serde_json::json;
use std::time::Duration;

/// Which engine ran a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Jit,
    Interp,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Jit => "jit",
            Engine::Interp => "interp",
        }
    }
}

/// One measured row of `kernjit bench`: a bench line on one engine and
/// thread count.
#[derive(Clone, Debug)]
pub struct Row {
    /// Where the bench line is, `kernels/kepler.kern:42`.
    pub place: String,
    /// The call as written on the bench line.
    pub call: String,
    pub engine: Engine,
    pub measurement: Measurement,
    /// The median of the line's first row over this row's median (`None`
    /// on the first row).
    pub speedup: Option<f64>,
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

impl Row {
    /// The `--json` object. The field names are stable and documented in the
    /// README; new fields may be added, none renamed or removed.
    pub fn json(&self) -> serde_json::Value {
        let m = &self.measurement;
        json!({
            "line": self.place,
            "call": self.call,
            "kernel": m.kernel,
            "signature": m.signature,
            "engine": self.engine.name(),
            "threads": m.threads,
            "compile_ms": ms(m.compile.total()),
            "compile_phases_ms": {
                "parse": ms(m.compile.parse),
                "infer": ms(m.compile.infer),
                "lower": ms(m.compile.lower),
                "cranelift": ms(m.compile.cranelift),
                "finalize": ms(m.compile.finalize),
            },
            "first_call_ms": ms(m.first_call),
            "median_ms": ms(m.median()),
            "min_ms": ms(m.min()),
            "max_ms": ms(m.max()),
            "reps": m.calls.len(),
            "bytes": m.bytes,
            "elements": m.elements,
            "bytes_per_s": m.bytes_per_second(),
            "elements_per_s": m.elements_per_second(),
            "speedup": self.speedup,
        })
    }
}

/// Seconds as a short human time: `850 ns`, `12.3 µs`, `4.56 ms`, `1.23 s`.
pub fn human_time(seconds: f64) -> String {
    let (value, unit) = match seconds {
        s if s < 1e-6 => (s * 1e9, "ns"),
        s if s < 1e-3 => (s * 1e6, "µs"),
        s if s < 1.0 => (s * 1e3, "ms"),
        s => (s, "s"),
    };
    if value >= 100.0 {
        format!("{value:.0} {unit}")
    } else if value >= 10.0 {
        format!("{value:.1} {unit}")
    } else {
        format!("{value:.2} {unit}")
    }
}

/// The table `kernjit bench` prints; `verbose` adds the compile phases.
pub fn table(rows: &[Row], verbose: bool) -> String {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    let mut header = vec!["bench line", "kernel", "engine", "threads", "compile"];
    if verbose {
        header.extend(["parse", "infer", "lower", "cranelift", "finalize"]);
    }
    header.extend(["first call", "median", "min", "max", "reps", "GB/s", "Melem/s", "speedup"]);
    table.set_header(header);
    for row in rows {
        let m = &row.measurement;
        let mut cells = vec![
            row.place.clone(),
            m.kernel.clone(),
            row.engine.name().to_string(),
            m.threads.to_string(),
            human_time(m.compile.total().as_secs_f64()),
        ];
        if verbose {
            for phase in [m.compile.parse, m.compile.infer, m.compile.lower, m.compile.cranelift, m.compile.finalize] {
                cells.push(human_time(phase.as_secs_f64()));
            }
        }
        cells.extend([
            human_time(m.first_call.as_secs_f64()),
            human_time(m.median().as_secs_f64()),
            human_time(m.min().as_secs_f64()),
            human_time(m.max().as_secs_f64()),
            m.calls.len().to_string(),
            format!("{:.2}", m.bytes_per_second() / 1e9),
            format!("{:.1}", m.elements_per_second() / 1e6),
            row.speedup.map_or(String::new(), |s| format!("{s:.2}×")),
        ]);
        table.add_row(cells);
    }
    format!("{table}\n")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::bench::CompileTimes;

    /// A row with made-up times, for the report and plot tests.
    pub(crate) fn row(kernel: &str, threads: usize, median_us: u64, speedup: Option<f64>) -> Row {
        let micros = Duration::from_micros;
        Row {
            place: format!("kernels/{kernel}.kern:3"),
            call: format!("{kernel}(rand(100))"),
            engine: Engine::Jit,
            measurement: Measurement {
                kernel: kernel.to_string(),
                signature: format!("{kernel}(f64[::1])"),
                threads,
                compile: CompileTimes {
                    parse: micros(10),
                    infer: micros(20),
                    lower: micros(30),
                    cranelift: micros(400),
                    finalize: micros(40),
                },
                first_call: micros(median_us * 2),
                calls: vec![micros(median_us - 1), micros(median_us), micros(median_us + 5)],
                bytes: 800,
                elements: 100,
            },
            speedup,
        }
    }

    #[test]
    fn human_times_keep_three_significant_digits() {
        let cases =
            [(3.2e-8, "32.0 ns"), (8.5e-7, "850 ns"), (1.234e-5, "12.3 µs"), (4.561e-3, "4.56 ms"), (1.5, "1.50 s")];
        for (seconds, text) in cases {
            assert_eq!(human_time(seconds), text);
        }
    }

    #[test]
    fn json_rows_have_the_documented_fields() {
        let object = row("dot", 2, 100, Some(1.9)).json();
        let mut keys: Vec<&str> = object.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        expect_test::expect![[r#"
            ["bytes", "bytes_per_s", "call", "compile_ms", "compile_phases_ms", "elements", "elements_per_s", "engine", "first_call_ms", "kernel", "line", "max_ms", "median_ms", "min_ms", "reps", "signature", "speedup", "threads"]"#]]
        .assert_eq(&format!("{keys:?}"));
        assert_eq!(object["compile_ms"], json!(0.5));
        assert_eq!(object["median_ms"], json!(0.1));
        assert_eq!(object["bytes_per_s"], json!(8e6));
        assert_eq!(object["speedup"], json!(1.9));
    }

    #[test]
    fn the_table_has_a_row_per_measurement_and_phases_on_verbose() {
        let rows = [row("dot", 1, 100, None), row("dot", 2, 50, Some(2.0))];
        let text = table(&rows, false);
        assert!(text.contains("2.00×") && text.contains("500 µs") && !text.contains("cranelift"), "{text}");
        assert_eq!(text.matches("kernels/dot.kern:3").count(), 2);
        assert!(table(&rows, true).contains("cranelift"));
    }
}
