//! kernjit's Python binding (the native module `kernjit._kernjit`).
use pyo3::prelude::*;

#[pymodule]
fn _kernjit(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
