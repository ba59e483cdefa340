//! Type inference (stub, being written).
use crate::ast;
use crate::diag::Diagnostic;
use crate::span::Span;
use crate::tir;
use crate::types::Type;

pub fn infer(_module: &ast::Module, kernel: &str, _args: &[Type]) -> Result<tir::Program, Vec<Diagnostic>> {
    Err(vec![Diagnostic::error("E0302", Span::default(), format!("no kernel `{kernel}` (inference not written yet)"))])
}

/// The argument types of a function whose parameters are all annotated.
pub fn annotated_signature(_function: &ast::FunctionDef) -> Result<Option<Vec<Type>>, Vec<Diagnostic>> {
    Ok(None)
}
