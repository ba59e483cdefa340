//! Human text of values for `kernjit run`: Python-style scalars and tuples,
//! arrays printed the way NumPy prints them (nested brackets, aligned
//! columns), summarised with `...` beyond [`THRESHOLD`] elements, after a
//! line of statistics.
//!
//! Entry point [`value_text`]; [`array_text`] for one array.

use crate::value::{ArrayData, Element, Scalar, Value};
use crate::with_array;
use ndarray::IxDyn;

/// Arrays with more elements than this are summarised (NumPy's default).
pub const THRESHOLD: usize = 1000;
/// Elements shown at each end of a summarised axis (NumPy's default).
pub const EDGE_ITEMS: usize = 3;
/// Rows of elements are wrapped to this many characters (NumPy's default).
pub const LINE_WIDTH: usize = 75;

/// A kernel's result as text: empty for `None`.
pub fn value_text(value: &Value) -> String {
    match value {
        Value::None => String::new(),
        Value::Scalar(scalar) => scalar.to_string(),
        Value::Tuple(items) => {
            let items: Vec<String> = items.iter().map(Scalar::to_string).collect();
            match items.as_slice() {
                [one] => format!("({one},)"),
                _ => format!("({})", items.join(", ")),
            }
        }
        Value::Array(array) => array_text(array),
    }
}

/// `f64 array, shape (40, 9): min …, max …, mean …` and, below it, the
/// elements (summarised when there are many).
pub fn array_text(array: &ArrayData) -> String {
    format!("{}\n{}", array_header(array), array_elements(array))
}

/// The statistics line of an array.
pub fn array_header(array: &ArrayData) -> String {
    let shape = shape_text(&array.shape());
    let head = format!("{} array, shape {shape}", array.dtype());
    if array.is_empty() {
        return format!("{head}: empty");
    }
    let (min, max) = with_array!(array, a => min_max(a.iter().map(|v| v.to_scalar())));
    let mean = array.sum_f64() / array.len() as f64;
    format!("{head}: min {}, max {}, mean {}, sum {}", number(min), number(max), float(mean), sum_text(array))
}

/// The sum of the elements: exact for integers and booleans (NumPy's sum of
/// a bool array counts the `True`s), a float for floats.
fn sum_text(array: &ArrayData) -> String {
    match array.dtype() {
        dtype if dtype.is_float() => float(array.sum_f64()),
        _ => with_array!(array, a => a.iter().map(|v| v.to_scalar().to_i128()).sum::<i128>()).to_string(),
    }
}

/// A shape as a Python tuple: `(3,)`, `(3, 4)`.
pub fn shape_text(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    match dims.as_slice() {
        [one] => format!("({one},)"),
        _ => format!("({})", dims.join(", ")),
    }
}

/// The smallest and largest element; NaN if any element is NaN (as
/// `np.min` and `np.max` report).
fn min_max(mut values: impl Iterator<Item = Scalar>) -> (Scalar, Scalar) {
    let first = values.next().expect("the caller checked the array is not empty");
    values.fold((first, first), |(low, high), v| {
        let (x, lo, hi) = (v.to_f64(), low.to_f64(), high.to_f64());
        if x.is_nan() || lo.is_nan() {
            return (if lo.is_nan() { low } else { v }, if hi.is_nan() { high } else { v });
        }
        let low = if less(v, low) { v } else { low };
        let high = if less(high, v) { v } else { high };
        (low, high)
    })
}

/// `a < b` for two scalars of one dtype (exact for 64-bit integers).
fn less(a: Scalar, b: Scalar) -> bool {
    match (a, b) {
        (Scalar::F32(_) | Scalar::F64(_), _) => a.to_f64() < b.to_f64(),
        _ => a.to_i128() < b.to_i128(),
    }
}

/// An element as NumPy shows it: integers in full, `True`/`False`, floats
/// with up to 8 significant digits.
fn number(value: Scalar) -> String {
    match value {
        Scalar::F32(v) => float(v as f64),
        Scalar::F64(v) => float(v),
        other => other.to_string(),
    }
}

/// Fractional digits a float is shown with at most (NumPy's precision).
const PRECISION: usize = 8;

/// A float with up to 8 fractional digits, in scientific notation when very
/// large or small: `0.5`, `3.0`, `0.33333333`, `1.2345e+20`, `nan`.
fn float(value: f64) -> String {
    if !value.is_finite() {
        Scalar::F64(value).to_string()
    } else if needs_scientific(value) {
        scientific(value, PRECISION)
    } else {
        trim_zeros(&format!("{value:.PRECISION$}"))
    }
}

fn needs_scientific(value: f64) -> bool {
    let magnitude = value.abs();
    value.is_finite() && magnitude != 0.0 && !(1e-4..1e16).contains(&magnitude)
}

/// `1.5e-07`: `digits` fractional digits of the mantissa at most, trimmed.
fn scientific(value: f64, digits: usize) -> String {
    let text = format!("{value:.digits$e}");
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    format!("{}e{exponent:+03}", trim_zeros(mantissa))
}

/// How the elements of one float array are written: every element with the
/// same number of fractional digits (the most any shown element needs, at
/// most [`PRECISION`]), so that the columns line up on the decimal point.
#[derive(Clone, Copy)]
enum FloatFormat {
    Fixed(usize),
    Scientific(usize),
}

impl FloatFormat {
    fn for_values(values: &[f64]) -> FloatFormat {
        let finite = values.iter().copied().filter(|v| v.is_finite());
        let fractional = |text: &str| text.split_once('.').map_or(0, |(_, f)| f.len());
        if values.iter().any(|&v| needs_scientific(v)) {
            let digits = finite.map(|v| fractional(scientific(v, PRECISION).split('e').next().unwrap_or(""))).max();
            FloatFormat::Scientific(digits.unwrap_or(1))
        } else {
            let digits = finite.map(|v| fractional(&trim_zeros(&format!("{v:.PRECISION$}")))).max();
            FloatFormat::Fixed(digits.unwrap_or(1))
        }
    }

    fn write(self, value: f64) -> String {
        if !value.is_finite() {
            return Scalar::F64(value).to_string();
        }
        match self {
            FloatFormat::Fixed(digits) => format!("{value:.digits$}"),
            FloatFormat::Scientific(digits) => {
                let text = format!("{value:.digits$e}");
                let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
                format!("{mantissa}e{:+03}", exponent.parse::<i32>().unwrap_or(0))
            }
        }
    }
}

/// `1.2500` → `1.25`, `3.000` → `3.0`.
fn trim_zeros(text: &str) -> String {
    if !text.contains('.') {
        return text.to_string();
    }
    let trimmed = text.trim_end_matches('0');
    if trimmed.ends_with('.') {
        format!("{trimmed}0")
    } else {
        trimmed.to_string()
    }
}

/// The indices shown along an axis of `extent`: all, or the edges with
/// `None` standing for the `...` between them.
fn shown(extent: usize, summarise: bool) -> Vec<Option<usize>> {
    if summarise && extent > 2 * EDGE_ITEMS {
        let head = (0..EDGE_ITEMS).map(Some);
        let tail = (extent - EDGE_ITEMS..extent).map(Some);
        head.chain(std::iter::once(None)).chain(tail).collect()
    } else {
        (0..extent).map(Some).collect()
    }
}

/// The elements in nested brackets, columns right-aligned to one width.
pub fn array_elements(array: &ArrayData) -> String {
    let shape = array.shape();
    let summarise = array.len() > THRESHOLD;
    let element = |index: &[usize]| with_array!(array, a => a[IxDyn(index)].to_scalar());
    // Every shown element first, to pick one float format and column width.
    let mut shown_values = Vec::new();
    let mut index = Vec::with_capacity(shape.len());
    collect(&shape, summarise, &mut index, &mut |i| shown_values.push(element(i)));
    let texts: Vec<String> = if array.dtype().is_float() {
        let floats: Vec<f64> = shown_values.iter().map(|v| v.to_f64()).collect();
        let format = FloatFormat::for_values(&floats);
        floats.into_iter().map(|v| format.write(v)).collect()
    } else {
        shown_values.into_iter().map(number).collect()
    };
    let width = texts.iter().map(|t| t.chars().count()).max().unwrap_or(0);
    let mut texts = texts.into_iter();
    let mut out = String::new();
    write_axis(&shape, 0, summarise, width, &mut texts, &mut out);
    out
}

/// Calls `visit` with the index of every shown element, in C order.
fn collect(shape: &[usize], summarise: bool, index: &mut Vec<usize>, visit: &mut dyn FnMut(&[usize])) {
    if index.len() == shape.len() {
        visit(index);
        return;
    }
    for i in shown(shape[index.len()], summarise).into_iter().flatten() {
        index.push(i);
        collect(shape, summarise, index, visit);
        index.pop();
    }
}

fn write_axis(
    shape: &[usize],
    axis: usize,
    summarise: bool,
    width: usize,
    texts: &mut impl Iterator<Item = String>,
    out: &mut String,
) {
    out.push('[');
    let last_axis = axis + 1 == shape.len();
    // Between sub-arrays: a comma, one newline per remaining axis, and the
    // indentation of the opening brackets.
    let separator = if last_axis {
        ", ".to_string()
    } else {
        format!(",{}{}", "\n".repeat(shape.len() - axis - 1), " ".repeat(axis + 1))
    };
    for (position, entry) in shown(shape[axis], summarise).into_iter().enumerate() {
        if position > 0 && last_axis {
            // Wrap long rows as NumPy does, under the first element.
            let column = out.len() - out.rfind('\n').map_or(0, |newline| newline + 1);
            let item = if entry.is_none() { 3 } else { width };
            if column + 2 + item + shape.len() > LINE_WIDTH {
                out.push_str(&format!(",\n{}", " ".repeat(axis + 1)));
            } else {
                out.push_str(&separator);
            }
        } else if position > 0 {
            out.push_str(&separator);
        }
        match entry {
            None => out.push_str("..."),
            Some(_) if last_axis => {
                let text = texts.next().unwrap_or_default();
                out.push_str(&format!("{text:>width$}"));
            }
            Some(_) => write_axis(shape, axis + 1, summarise, width, texts, out),
        }
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ScalarType;

    fn array(dtype: ScalarType, shape: &[usize], values: &[f64]) -> ArrayData {
        let scalars: Vec<Scalar> = values.iter().map(|&v| Scalar::F64(v)).collect();
        ArrayData::from_scalars(dtype, shape, &scalars)
    }

    #[test]
    fn floats_read_like_numpy() {
        let cases = [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (3.0, "3.0"),
            (0.5, "0.5"),
            (1.0 / 3.0, "0.33333333"),
            (123456.789, "123456.789"),
            (2.0f64.sqrt() * 1e6, "1414213.5623731"),
            (1.5e-7, "1.5e-07"),
            (1.2345e20, "1.2345e+20"),
            (f64::NAN, "nan"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        for (value, text) in cases {
            assert_eq!(float(value), text, "{value}");
        }
    }

    #[test]
    fn small_arrays_are_shown_whole_with_aligned_columns() {
        let a = array(ScalarType::F64, &[2, 3], &[1.0, -2.5, 3.0, 10.0, 0.25, 6.0]);
        expect_test::expect![[r#"
            f64 array, shape (2, 3): min -2.5, max 10.0, mean 2.95833333, sum 17.75
            [[ 1.00, -2.50,  3.00],
             [10.00,  0.25,  6.00]]"#]]
        .assert_eq(&array_text(&a));
        let ints = array(ScalarType::I32, &[4], &[3.0, -1.0, 7.0, 0.0]);
        assert_eq!(array_text(&ints), "i32 array, shape (4,): min -1, max 7, mean 2.25, sum 9\n[ 3, -1,  7,  0]");
    }

    #[test]
    fn large_arrays_show_three_items_at_each_end_of_every_axis() {
        let values: Vec<f64> = (0..2 * 30 * 40).map(f64::from).collect();
        let a = array(ScalarType::I64, &[2, 30, 40], &values);
        let text = array_elements(&a);
        expect_test::expect![[r#"
            [[[   0,    1,    2, ...,   37,   38,   39],
              [  40,   41,   42, ...,   77,   78,   79],
              [  80,   81,   82, ...,  117,  118,  119],
              ...,
              [1080, 1081, 1082, ..., 1117, 1118, 1119],
              [1120, 1121, 1122, ..., 1157, 1158, 1159],
              [1160, 1161, 1162, ..., 1197, 1198, 1199]],

             [[1200, 1201, 1202, ..., 1237, 1238, 1239],
              [1240, 1241, 1242, ..., 1277, 1278, 1279],
              [1280, 1281, 1282, ..., 1317, 1318, 1319],
              ...,
              [2280, 2281, 2282, ..., 2317, 2318, 2319],
              [2320, 2321, 2322, ..., 2357, 2358, 2359],
              [2360, 2361, 2362, ..., 2397, 2398, 2399]]]"#]]
        .assert_eq(&text);
    }

    #[test]
    fn statistics_handle_nan_bools_empty_arrays_and_tuples() {
        let a = array(ScalarType::F32, &[3], &[1.0, f64::NAN, -1.0]);
        assert!(array_header(&a).contains("min nan, max nan"), "{}", array_header(&a));
        let b = array(ScalarType::Bool, &[2], &[1.0, 0.0]);
        assert_eq!(array_text(&b), "bool array, shape (2,): min False, max True, mean 0.5, sum 1\n[ True, False]");
        let empty = array(ScalarType::F64, &[0, 3], &[]);
        assert_eq!(array_text(&empty), "f64 array, shape (0, 3): empty\n[]");
        assert_eq!(value_text(&Value::Tuple(vec![Scalar::I64(1), Scalar::F64(2.5)])), "(1, 2.5)");
        assert_eq!(value_text(&Value::Tuple(vec![Scalar::Bool(true)])), "(True,)");
        assert_eq!(value_text(&Value::None), "");
    }
}
