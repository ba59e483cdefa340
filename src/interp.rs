//! Reference interpreter (stub, being written).
use crate::span::Span;
use crate::tir;
use crate::value::{RuntimeError, RuntimeErrorKind, Value};

pub fn interpret(_program: &tir::Program, _args: &mut [Value]) -> Result<Value, RuntimeError> {
    Err(RuntimeError { kind: RuntimeErrorKind::RecursionTooDeep, span: Span::default() })
}
