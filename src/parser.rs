//! Parser (stub, being written).
use crate::ast;
use crate::diag::Diagnostic;
use crate::span::SourceFile;

/// The parse result: the tree and every error found (the tree is partial when
/// there are errors).
#[derive(Debug)]
pub struct Parsed {
    pub module: ast::Module,
    pub diagnostics: Vec<Diagnostic>,
}

pub fn parse(file: &SourceFile) -> Parsed {
    let _ = crate::lexer::lex(file);
    Parsed { module: ast::Module::default(), diagnostics: vec![] }
}
