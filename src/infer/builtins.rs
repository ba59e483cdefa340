//! Typing calls: kernels of the same file, builtins, math functions, casts
//! and array creation.

use super::expr::Typed;
use super::stmt::Walker;
use super::{dtype_of, plural, was_were};
use crate::ast;
use crate::diag::Diagnostic;
use crate::span::Span;
use crate::tir::{self, Builtin};
use crate::types::{promote, ArrayType, ScalarType, Type, MAX_NDIM};
use crate::value::Scalar;

/// How a builtin was named: bare (`sqrt`), `math.sqrt` or `np.sqrt`. Math
/// functions follow Python's `math` (always `f64`, `floor` gives an int) when
/// bare or `math.`, and NumPy (keeps `f32`) when `np.`.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Flavor {
    Bare,
    Math,
    Numpy,
}

impl Flavor {
    fn prefix(self) -> &'static str {
        match self {
            Flavor::Bare => "",
            Flavor::Math => "math.",
            Flavor::Numpy => "np.",
        }
    }
}

enum Callee<'a> {
    Kernel(usize),
    Builtin(Flavor, &'a str),
}

/// One-argument float functions and their typed-IR builtin.
fn unary_math(name: &str) -> Option<Builtin> {
    Some(match name {
        "sqrt" => Builtin::Sqrt,
        "exp" => Builtin::Exp,
        "log" => Builtin::Log,
        "log2" => Builtin::Log2,
        "log10" => Builtin::Log10,
        "log1p" => Builtin::Log1p,
        "expm1" => Builtin::Expm1,
        "sin" => Builtin::Sin,
        "cos" => Builtin::Cos,
        "tan" => Builtin::Tan,
        "asin" | "arcsin" => Builtin::Asin,
        "acos" | "arccos" => Builtin::Acos,
        "atan" | "arctan" => Builtin::Atan,
        "sinh" => Builtin::Sinh,
        "cosh" => Builtin::Cosh,
        "tanh" => Builtin::Tanh,
        "floor" => Builtin::Floor,
        "ceil" => Builtin::Ceil,
        "trunc" => Builtin::Trunc,
        "fabs" => Builtin::Abs,
        "erf" => Builtin::Erf,
        "erfc" => Builtin::Erfc,
        "gamma" => Builtin::Gamma,
        "lgamma" => Builtin::Lgamma,
        _ => return None,
    })
}

fn binary_math(name: &str) -> Option<Builtin> {
    Some(match name {
        "atan2" | "arctan2" => Builtin::Atan2,
        "hypot" => Builtin::Hypot,
        "copysign" => Builtin::Copysign,
        "fmod" => Builtin::Fmod,
        "pow" => Builtin::Powf,
        _ => return None,
    })
}

fn predicate_math(name: &str) -> Option<Builtin> {
    Some(match name {
        "isnan" => Builtin::IsNan,
        "isinf" => Builtin::IsInf,
        "isfinite" => Builtin::IsFinite,
        _ => return None,
    })
}

impl<'c, 'a> Walker<'c, 'a> {
    pub(super) fn call(
        &mut self,
        func: &'a ast::Expr,
        args: &'a [ast::Expr],
        keywords: &'a [ast::Keyword],
        span: Span,
    ) -> Typed {
        let Some(callee) = self.callee(func) else { return Typed::poison(span) };
        match callee {
            Callee::Kernel(def_index) => {
                if let Some(keyword) = keywords.first() {
                    self.error(
                        Diagnostic::error(
                            "E0304",
                            keyword.span,
                            "keyword arguments are not supported in calls between kernels",
                        )
                        .with_help("pass the arguments by position"),
                    );
                    return Typed::poison(span);
                }
                self.kernel_call(def_index, args, span)
            }
            Callee::Builtin(flavor, name) => self.builtin_call(flavor, name, func.span, args, keywords, span),
        }
    }

    fn callee(&mut self, func: &'a ast::Expr) -> Option<Callee<'a>> {
        match &func.kind {
            ast::ExprKind::Name(name) => {
                if self.names.contains_key(name.as_str()) {
                    self.error(
                        Diagnostic::error("E0402", func.span, format!("`{name}` is a variable, not a function"))
                            .with_help("functions cannot be stored in variables; call the function by its name"),
                    );
                    return None;
                }
                if let Some(&index) = self.cx.function_index.get(name.as_str()) {
                    return Some(Callee::Kernel(index));
                }
                Some(Callee::Builtin(Flavor::Bare, name))
            }
            ast::ExprKind::Attribute { value, attr } => {
                if let ast::ExprKind::Name(module) = &value.kind {
                    if !self.names.contains_key(module.as_str()) {
                        return match module.as_str() {
                            "math" => Some(Callee::Builtin(Flavor::Math, &attr.name)),
                            "np" | "numpy" => Some(Callee::Builtin(Flavor::Numpy, &attr.name)),
                            "numba" | "nb" => Some(Callee::Builtin(Flavor::Bare, &attr.name)),
                            _ => {
                                self.error(
                                    Diagnostic::error(
                                        "E0301",
                                        value.span,
                                        format!("unknown module or name `{module}`"),
                                    )
                                    .with_help("kernels may use `math.*` and `np.*` functions"),
                                );
                                None
                            }
                        };
                    }
                }
                let receiver = self.expr(value);
                if receiver.expr.ty.is_known() {
                    self.error(
                        Diagnostic::error(
                            "E0305",
                            attr.span,
                            format!("the method `.{}()` is not supported on `{}`", attr.name, receiver.expr.ty),
                        )
                        .with_help("kernels have no methods: write the loop (for `.sum()`, accumulate with `+=`)"),
                    );
                }
                None
            }
            _ => {
                self.error(
                    Diagnostic::error("E0402", func.span, "this expression cannot be called")
                        .with_help("call a function by its name"),
                );
                None
            }
        }
    }

    fn kernel_call(&mut self, def_index: usize, args: &'a [ast::Expr], span: Span) -> Typed {
        let def = &self.cx.module.functions[def_index];
        let typed: Vec<Typed> = args.iter().map(|arg| self.expr(arg)).collect();
        if typed.len() != def.params.len() {
            self.error(
                Diagnostic::error(
                    "E0304",
                    span,
                    format!(
                        "`{}` takes {} argument{} but {} {} given",
                        def.name.name,
                        def.params.len(),
                        plural(def.params.len()),
                        typed.len(),
                        was_were(typed.len())
                    ),
                )
                .with_label(def.name.span, "defined here"),
            );
            return Typed::poison(span);
        }
        let mut arg_types = Vec::new();
        for (arg, ast_arg) in typed.iter().zip(args) {
            match &arg.expr.ty {
                Type::Unknown => return Typed::poison(span),
                Type::None => {
                    self.error(Diagnostic::error(
                        "E0405",
                        ast_arg.span,
                        "this call returns no value, so it cannot be passed on",
                    ));
                    return Typed::poison(span);
                }
                ty => arg_types.push(ty.clone()),
            }
        }
        let params = match self.cx.parameter_types(def_index, &arg_types, Some(span)) {
            Ok(params) => params,
            Err(errors) => {
                for error in errors {
                    self.error(error);
                }
                return Typed::poison(span);
            }
        };
        let spec = self.cx.spec_for(def_index, params.clone());
        let ret = self.cx.ensure_inferred(spec);
        let func = if self.final_pass {
            match self.cx.ensure_emitted(spec) {
                Some(id) => id,
                None => return Typed::poison(span),
            }
        } else {
            tir::FuncId(u32::MAX)
        };
        if !ret.is_known() {
            return Typed::poison(span);
        }
        let args = typed
            .into_iter()
            .zip(&params)
            .map(|(arg, param)| match param {
                Type::Scalar(dtype) => self.cast(arg, *dtype),
                _ => arg.expr,
            })
            .collect();
        Typed::new(tir::ExprKind::Call { func, args }, ret, span, false)
    }

    fn builtin_call(
        &mut self,
        flavor: Flavor,
        name: &'a str,
        name_span: Span,
        args: &'a [ast::Expr],
        keywords: &'a [ast::Keyword],
        span: Span,
    ) -> Typed {
        let creation = matches!(
            name,
            "empty" | "zeros" | "ones" | "full" | "empty_like" | "zeros_like" | "ones_like" | "full_like" | "arange"
        );
        if creation && flavor != Flavor::Math {
            return self.array_creation(name, args, keywords, span);
        }
        if let Some(keyword) = keywords.first() {
            self.error(
                Diagnostic::error(
                    "E0304",
                    keyword.span,
                    format!("`{}{name}` takes no keyword arguments", flavor.prefix()),
                )
                .with_help("pass the arguments by position"),
            );
            return Typed::poison(span);
        }
        let full_name = format!("{}{name}", flavor.prefix());
        match (flavor, name) {
            (_, "range" | "prange") => {
                self.error(
                    Diagnostic::error(
                        "E0305",
                        span,
                        format!("`{name}()` can only be used as the iterator of a `for` loop"),
                    )
                    .with_help(format!("write `for i in {name}(...):`")),
                );
                Typed::poison(span)
            }
            (Flavor::Bare, "print") => {
                self.error(
                    Diagnostic::error("E0305", name_span, "`print` is not supported in kernels")
                        .with_help("return the value, or write it into an output array"),
                );
                Typed::poison(span)
            }
            (Flavor::Bare, "len") => {
                let Some([arg]) = self.typed_args::<1>(&full_name, args, span) else { return Typed::poison(span) };
                match arg.expr.ty.clone() {
                    Type::Array(_) => {
                        self.builtin_expr(Builtin::Shape(0), vec![arg.expr], Type::Scalar(ScalarType::I64), span)
                    }
                    Type::Tuple(items) => Typed::constant(Scalar::I64(items.len() as i64), span, false),
                    Type::Unknown => Typed::poison(span),
                    other => {
                        self.error(Diagnostic::error(
                            "E0402",
                            args[0].span,
                            format!("`len()` needs an array or tuple, not `{other}`"),
                        ));
                        Typed::poison(span)
                    }
                }
            }
            (Flavor::Bare, "abs") | (Flavor::Numpy, "abs" | "absolute") => {
                let Some([arg]) = self.scalar_args::<1>(&full_name, args, span) else { return Typed::poison(span) };
                let dtype = arg.scalar().expect("scalar");
                let dtype = if dtype.is_bool() { ScalarType::I64 } else { dtype };
                let weak = arg.weak;
                let value = self.cast(arg, dtype);
                let mut typed = self.builtin_expr(Builtin::Abs, vec![value], Type::Scalar(dtype), span);
                typed.weak = weak;
                typed
            }
            (Flavor::Bare, "min" | "max") => self.min_max(name, args, span),
            (Flavor::Bare, "round") => {
                if args.len() == 2 {
                    self.error(
                        Diagnostic::error("E0305", span, "`round(x, ndigits)` is not supported")
                            .with_help("scale explicitly: `round(x * 100.0) / 100.0`"),
                    );
                    return Typed::poison(span);
                }
                let Some([arg]) = self.scalar_args::<1>(&full_name, args, span) else { return Typed::poison(span) };
                let dtype = arg.scalar().expect("scalar");
                if dtype.is_float() {
                    self.builtin_expr(Builtin::Round, vec![arg.expr], Type::Scalar(ScalarType::I64), span)
                } else {
                    let target = if dtype.is_bool() { ScalarType::I64 } else { dtype };
                    let expr = self.cast(arg, target);
                    Typed { expr: tir::Expr { span, ..expr }, weak: false }
                }
            }
            (Flavor::Bare, "int" | "float" | "bool") | (Flavor::Bare | Flavor::Numpy, _)
                if ScalarType::from_name(name).is_some() =>
            {
                let to = ScalarType::from_name(name).expect("checked");
                let Some([arg]) = self.scalar_args::<1>(&full_name, args, span) else { return Typed::poison(span) };
                let expr = self.cast(arg, to);
                Typed { expr: tir::Expr { span, ..expr }, weak: false }
            }
            (Flavor::Numpy, "power") => {
                let Some([base, exponent]) = self.scalar_args::<2>(&full_name, args, span) else {
                    return Typed::poison(span);
                };
                self.binary(ast::BinOp::Pow, base, exponent, span)
            }
            (_, "log") if args.len() == 2 && flavor != Flavor::Numpy => {
                let Some([x, base]) = self.scalar_args::<2>(&full_name, args, span) else { return Typed::poison(span) };
                let x = self.cast(x, ScalarType::F64);
                let base = self.cast(base, ScalarType::F64);
                let log_x = self.builtin_expr(Builtin::Log, vec![x], Type::Scalar(ScalarType::F64), span).expr;
                let log_base = self.builtin_expr(Builtin::Log, vec![base], Type::Scalar(ScalarType::F64), span).expr;
                Typed::new(
                    tir::ExprKind::Binary(tir::BinaryOp::Div, Box::new(log_x), Box::new(log_base)),
                    Type::Scalar(ScalarType::F64),
                    span,
                    false,
                )
            }
            _ => {
                if let Some(op) = unary_math(name) {
                    return self.unary_math(flavor, name, op, args, span);
                }
                if let Some(op) = binary_math(name).filter(|_| !(flavor == Flavor::Numpy && name == "pow")) {
                    let Some([a, b]) = self.scalar_args::<2>(&full_name, args, span) else {
                        return Typed::poison(span);
                    };
                    let dtype = self.math_dtype(flavor, &[&a, &b]);
                    let (a, b) = (self.cast(a, dtype), self.cast(b, dtype));
                    return self.builtin_expr(op, vec![a, b], Type::Scalar(dtype), span);
                }
                if let Some(op) = predicate_math(name) {
                    let Some([a]) = self.scalar_args::<1>(&full_name, args, span) else { return Typed::poison(span) };
                    let dtype = self.math_dtype(Flavor::Numpy, &[&a]);
                    let a = self.cast(a, dtype);
                    return self.builtin_expr(op, vec![a], Type::Scalar(ScalarType::Bool), span);
                }
                let help = match name {
                    "sum" | "prod" | "mean" | "dot" | "min" | "max" | "amin" | "amax" | "argmin" | "argmax" => {
                        "whole-array reductions are not supported: write a loop that accumulates (`s += a[i]`)"
                            .to_string()
                    }
                    "sign" => "write `(x > 0) - (x < 0)`".to_string(),
                    _ => "see the README for the supported builtins and math functions".to_string(),
                };
                let (code, help) = match flavor {
                    Flavor::Bare if help.starts_with("see the README") => {
                        let names: Vec<&str> = self.cx.module.functions.iter().map(|f| f.name.name.as_str()).collect();
                        let help =
                            match names.iter().find(|candidate| super::expr::edit_distance(candidate, name) <= 2) {
                                Some(close) => format!("did you mean `{close}`?"),
                                None => "call a function defined in this file, or a builtin listed in the README"
                                    .to_string(),
                            };
                        ("E0301", help)
                    }
                    _ => ("E0305", help),
                };
                self.error(
                    Diagnostic::error(code, name_span, format!("unknown function `{full_name}`")).with_help(help),
                );
                for arg in args {
                    self.expr(arg);
                }
                Typed::poison(span)
            }
        }
    }

    /// Evaluates exactly `N` arguments, reporting a count mismatch.
    fn typed_args<const N: usize>(&mut self, name: &str, args: &'a [ast::Expr], span: Span) -> Option<[Typed; N]> {
        let typed: Vec<Typed> = args.iter().map(|arg| self.expr(arg)).collect();
        if typed.len() != N {
            self.error(Diagnostic::error(
                "E0304",
                span,
                format!(
                    "`{name}()` takes {N} argument{} but {} {} given",
                    plural(N),
                    typed.len(),
                    was_were(typed.len())
                ),
            ));
            return None;
        }
        if typed.iter().any(|t| !t.expr.ty.is_known()) {
            return None;
        }
        typed.try_into().ok()
    }

    /// Like [`Self::typed_args`], and every argument must be a scalar.
    fn scalar_args<const N: usize>(&mut self, name: &str, args: &'a [ast::Expr], span: Span) -> Option<[Typed; N]> {
        let typed = self.typed_args::<N>(name, args, span)?;
        for (arg, ast_arg) in typed.iter().zip(args) {
            if arg.scalar().is_none() {
                let help = if matches!(arg.expr.ty, Type::Array(_)) {
                    "kernel functions apply to scalars: write a loop over the elements"
                } else {
                    "pass a number"
                };
                self.error(
                    Diagnostic::error(
                        "E0402",
                        ast_arg.span,
                        format!("`{name}()` needs a scalar here, not `{}`", arg.expr.ty),
                    )
                    .with_help(help),
                );
                return None;
            }
        }
        Some(typed)
    }

    /// The float dtype of a math function's operands and result.
    fn math_dtype(&self, flavor: Flavor, args: &[&Typed]) -> ScalarType {
        if flavor != Flavor::Numpy {
            return ScalarType::F64;
        }
        let concrete: Vec<ScalarType> = args.iter().filter(|a| !a.weak).filter_map(|a| a.scalar()).collect();
        let common = concrete.into_iter().reduce(promote);
        match common {
            Some(dtype) if dtype.is_float() => dtype,
            _ => ScalarType::F64,
        }
    }

    fn unary_math(&mut self, flavor: Flavor, name: &str, op: Builtin, args: &'a [ast::Expr], span: Span) -> Typed {
        let full_name = format!("{}{name}", flavor.prefix());
        let Some([arg]) = self.scalar_args::<1>(&full_name, args, span) else { return Typed::poison(span) };
        let rounding = matches!(op, Builtin::Floor | Builtin::Ceil | Builtin::Trunc);
        let source = arg.scalar().expect("scalar");
        // Python's math.floor/ceil/trunc return ints (identity on ints).
        if rounding && flavor != Flavor::Numpy && !source.is_float() {
            let expr = self.cast(arg, ScalarType::I64);
            return Typed { expr: tir::Expr { span, ..expr }, weak: false };
        }
        let weak = arg.weak && flavor == Flavor::Numpy;
        let dtype = self.math_dtype(flavor, &[&arg]);
        let value = self.cast(arg, dtype);
        let mut result = self.builtin_expr(op, vec![value], Type::Scalar(dtype), span);
        if rounding && flavor != Flavor::Numpy {
            let expr = self.cast(result, ScalarType::I64);
            return Typed { expr, weak: false };
        }
        result.weak = weak;
        result
    }

    fn min_max(&mut self, name: &str, args: &'a [ast::Expr], span: Span) -> Typed {
        let typed: Vec<Typed> = args.iter().map(|arg| self.expr(arg)).collect();
        if typed.len() < 2 {
            let help = if typed.first().is_some_and(|t| matches!(t.expr.ty, Type::Array(_))) {
                format!("`{name}` of a whole array is not supported: loop and keep the running {name}imum with `m = {name}(m, a[i])`")
            } else {
                format!("`{name}` takes two or more scalars: `{name}(a, b)`")
            };
            self.error(
                Diagnostic::error("E0304", span, format!("`{name}()` needs at least two arguments")).with_help(help),
            );
            return Typed::poison(span);
        }
        if typed.iter().any(|t| !t.expr.ty.is_known()) {
            return Typed::poison(span);
        }
        for (arg, ast_arg) in typed.iter().zip(args) {
            if arg.scalar().is_none() {
                self.error(
                    Diagnostic::error(
                        "E0402",
                        ast_arg.span,
                        format!("`{name}()` takes scalars, not `{}`", arg.expr.ty),
                    )
                    .with_help("loop over the array and compare element by element"),
                );
                return Typed::poison(span);
            }
        }
        let weak = typed.iter().all(|t| t.weak);
        let concrete: Vec<ScalarType> = typed.iter().filter(|t| !t.weak).filter_map(Typed::scalar).collect();
        let dtype = match concrete.into_iter().reduce(promote) {
            Some(common) => typed.iter().filter(|t| t.weak).filter_map(Typed::scalar).fold(common, |acc, weak_ty| {
                // A weak float next to ints makes the result f64.
                if weak_ty == ScalarType::F64 && !acc.is_float() {
                    ScalarType::F64
                } else if acc.is_bool() && weak_ty == ScalarType::I64 {
                    ScalarType::I64
                } else {
                    acc
                }
            }),
            None => typed.iter().filter_map(Typed::scalar).reduce(promote).expect("two or more"),
        };
        let values = typed.into_iter().map(|t| self.cast(t, dtype)).collect();
        let op = if name == "min" { Builtin::Min } else { Builtin::Max };
        let mut result = self.builtin_expr(op, values, Type::Scalar(dtype), span);
        result.weak = weak;
        result
    }

    fn array_creation(
        &mut self,
        name: &'a str,
        args: &'a [ast::Expr],
        keywords: &'a [ast::Keyword],
        span: Span,
    ) -> Typed {
        let full_name = format!("np.{name}");
        let mut dtype_expr: Option<&'a ast::Expr> = None;
        for keyword in keywords {
            if keyword.name.name == "dtype" {
                dtype_expr = Some(&keyword.value);
            } else {
                self.error(
                    Diagnostic::error(
                        "E0304",
                        keyword.span,
                        format!("`{full_name}` does not take `{}=` in kernels", keyword.name.name),
                    )
                    .with_help("only `dtype=` is supported (arrays are always C-ordered)"),
                );
            }
        }
        let like = name.ends_with("_like");
        let base = name.trim_end_matches("_like");
        // Positional arguments: the shape (or the model array), the fill
        // value for `full`, then optionally the dtype.
        let value_count = if base == "full" { 2 } else { 1 };
        if name == "arange" {
            return self.arange(args, dtype_expr, span);
        }
        if args.len() == value_count + 1 && dtype_expr.is_none() {
            dtype_expr = Some(&args[value_count]);
        } else if args.len() != value_count {
            self.error(Diagnostic::error(
                "E0304",
                span,
                format!(
                    "`{full_name}` takes {value_count} argument{} (and `dtype=`), but {} were given",
                    plural(value_count),
                    args.len()
                ),
            ));
            return Typed::poison(span);
        }
        let mut explicit_dtype = None;
        if let Some(dtype_expr) = dtype_expr {
            match dtype_of(dtype_expr) {
                Some(dtype) => explicit_dtype = Some(dtype),
                None => {
                    self.error(
                        Diagnostic::error("E0306", dtype_expr.span, "this is not a dtype")
                            .with_help("write `dtype=np.float32`, `dtype=np.int64`, `dtype=float`, ..."),
                    );
                    return Typed::poison(span);
                }
            }
        }
        let (shape, model_dtype) = if like {
            let model = self.expr(&args[0]);
            match model.expr.ty.clone() {
                Type::Array(array_ty) => {
                    if !matches!(model.expr.kind, tir::ExprKind::Local(_)) {
                        self.error(
                            Diagnostic::error(
                                "E0409",
                                args[0].span,
                                format!("`{full_name}` of a temporary array is not supported"),
                            )
                            .with_help("store the array in a variable first"),
                        );
                        return Typed::poison(span);
                    }
                    let shape = (0..array_ty.ndim)
                        .map(|axis| {
                            self.builtin_expr(
                                Builtin::Shape(axis),
                                vec![model.expr.clone()],
                                Type::Scalar(ScalarType::I64),
                                span,
                            )
                            .expr
                        })
                        .collect();
                    (shape, Some(array_ty.dtype))
                }
                Type::Unknown => return Typed::poison(span),
                other => {
                    self.error(Diagnostic::error(
                        "E0402",
                        args[0].span,
                        format!("`{full_name}` needs an array, not `{other}`"),
                    ));
                    return Typed::poison(span);
                }
            }
        } else {
            match self.shape_arg(&args[0]) {
                Some(shape) => (shape, None),
                None => return Typed::poison(span),
            }
        };
        let (fill, value_dtype) = match base {
            "full" => {
                let value = self.expr(&args[1]);
                let Some(value_dtype) = value.scalar() else {
                    if value.expr.ty.is_known() {
                        self.error(Diagnostic::error(
                            "E0402",
                            args[1].span,
                            format!("the fill value must be a scalar, not `{}`", value.expr.ty),
                        ));
                    }
                    return Typed::poison(span);
                };
                let dtype = explicit_dtype.or(model_dtype).unwrap_or(value_dtype);
                let value = self.cast(value, dtype);
                (tir::Fill::Value(Box::new(value)), Some(dtype))
            }
            "zeros" => (tir::Fill::Zeros, None),
            "ones" => (tir::Fill::Ones, None),
            _ => (tir::Fill::Empty, None),
        };
        let dtype = explicit_dtype.or(value_dtype).or(model_dtype).unwrap_or(ScalarType::F64);
        let ty = Type::Array(ArrayType { dtype, ndim: shape.len() as u8 });
        Typed::new(tir::ExprKind::NewArray { shape, fill }, ty, span, false)
    }

    /// A shape: an int, a tuple of ints, or `a.shape`.
    fn shape_arg(&mut self, arg: &'a ast::Expr) -> Option<Vec<tir::Expr>> {
        let dims: Vec<tir::Expr> = match &arg.kind {
            ast::ExprKind::Tuple(items) => items.iter().map(|item| self.shape_dim(item)).collect::<Option<_>>()?,
            _ => {
                let typed = self.expr(arg);
                match typed.expr.ty.clone() {
                    Type::Tuple(items) => {
                        if !matches!(typed.expr.kind, tir::ExprKind::Local(_) | tir::ExprKind::Tuple(_)) {
                            self.error(
                                Diagnostic::error("E0409", arg.span, "a shape from a temporary tuple is not supported")
                                    .with_help("store the tuple in a variable first"),
                            );
                            return None;
                        }
                        if items.iter().any(|d| !d.is_int()) {
                            self.error(Diagnostic::error("E0402", arg.span, "array dimensions must be integers"));
                            return None;
                        }
                        match typed.expr.kind {
                            tir::ExprKind::Tuple(parts) => parts
                                .into_iter()
                                .map(|part| self.cast(Typed { expr: part, weak: false }, ScalarType::I64))
                                .collect(),
                            _ => (0..items.len())
                                .map(|index| {
                                    let part = tir::Expr {
                                        kind: tir::ExprKind::TupleGet(Box::new(typed.expr.clone()), index as u32),
                                        ty: Type::Scalar(items[index]),
                                        span: arg.span,
                                    };
                                    self.cast(Typed { expr: part, weak: false }, ScalarType::I64)
                                })
                                .collect(),
                        }
                    }
                    Type::Scalar(dtype) if dtype.is_int() => vec![self.cast(typed, ScalarType::I64)],
                    Type::Unknown => return None,
                    other => {
                        self.error(
                            Diagnostic::error(
                                "E0402",
                                arg.span,
                                format!("an array shape must be an int or a tuple of ints, not `{other}`"),
                            )
                            .with_help("write `np.zeros(n)` or `np.zeros((rows, cols))`"),
                        );
                        return None;
                    }
                }
            }
        };
        if dims.is_empty() || dims.len() > MAX_NDIM {
            self.error(
                Diagnostic::error(
                    "E0402",
                    arg.span,
                    format!("arrays have 1 to {MAX_NDIM} dimensions, not {}", dims.len()),
                )
                .with_help("kern supports 1-D, 2-D and 3-D arrays"),
            );
            return None;
        }
        Some(dims)
    }

    fn shape_dim(&mut self, dim: &'a ast::Expr) -> Option<tir::Expr> {
        let typed = self.expr(dim);
        match typed.expr.ty.clone() {
            Type::Scalar(dtype) if dtype.is_int() => Some(self.cast(typed, ScalarType::I64)),
            Type::Unknown => None,
            other => {
                self.error(
                    Diagnostic::error("E0402", dim.span, format!("array dimensions must be integers, not `{other}`"))
                        .with_help("convert with `int(...)`"),
                );
                None
            }
        }
    }

    fn arange(&mut self, args: &'a [ast::Expr], dtype_expr: Option<&'a ast::Expr>, span: Span) -> Typed {
        if args.is_empty() || args.len() > 3 {
            self.error(
                Diagnostic::error(
                    "E0304",
                    span,
                    format!("`np.arange` takes 1 to 3 arguments, but {} were given", args.len()),
                )
                .with_help("write `np.arange(stop)`, `np.arange(start, stop)` or `np.arange(start, stop, step)`"),
            );
            return Typed::poison(span);
        }
        let typed: Vec<Typed> = args.iter().map(|arg| self.expr(arg)).collect();
        if typed.iter().any(|t| !t.expr.ty.is_known()) {
            return Typed::poison(span);
        }
        for (arg, ast_arg) in typed.iter().zip(args) {
            if arg.scalar().is_none_or(|s| s.is_bool()) {
                self.error(Diagnostic::error(
                    "E0402",
                    ast_arg.span,
                    format!("`np.arange` bounds must be numbers, not `{}`", arg.expr.ty),
                ));
                return Typed::poison(span);
            }
        }
        let explicit = match dtype_expr {
            Some(expr) => match dtype_of(expr) {
                Some(dtype) => Some(dtype),
                None => {
                    self.error(
                        Diagnostic::error("E0306", expr.span, "this is not a dtype")
                            .with_help("write `dtype=np.float64`, ..."),
                    );
                    return Typed::poison(span);
                }
            },
            None => None,
        };
        let dtype = explicit.unwrap_or_else(|| {
            let natural = typed.iter().filter_map(Typed::scalar).map(|s| if s.is_bool() { ScalarType::I64 } else { s });
            natural.reduce(promote).unwrap_or(ScalarType::I64)
        });
        if dtype.is_bool() {
            self.error(Diagnostic::error("E0402", span, "`np.arange` cannot make a bool array"));
            return Typed::poison(span);
        }
        let mut bounds: Vec<tir::Expr> = typed.into_iter().map(|t| self.cast(t, dtype)).collect();
        let constant = |value: i64| Typed::constant(Scalar::I64(value), span, true);
        let (start, stop, step) = match bounds.len() {
            1 => (self.cast(constant(0), dtype), bounds.remove(0), self.cast(constant(1), dtype)),
            2 => {
                let stop = bounds.remove(1);
                (bounds.remove(0), stop, self.cast(constant(1), dtype))
            }
            _ => {
                let step = bounds.remove(2);
                let stop = bounds.remove(1);
                (bounds.remove(0), stop, step)
            }
        };
        let ty = Type::Array(ArrayType { dtype, ndim: 1 });
        Typed::new(
            tir::ExprKind::Arange { start: Box::new(start), stop: Box::new(stop), step: Box::new(step) },
            ty,
            span,
            false,
        )
    }
}
