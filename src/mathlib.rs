//! The float math routines kern programs call, shared by the interpreter and
//! the JIT so both give bit-identical results.
//!
//! Every routine is an `extern "C" fn` named `kj_<name>_<f64|f32>`: the
//! interpreter calls it directly and the JIT registers the same symbol
//! (see [`SYMBOLS`]) and calls it from generated code. `f32` routines compute
//! in `f32` (the platform's `sinf`, `powf`, ...), never through `f64`.
//! Functions Rust's standard library has (`f64::sin`, which calls the
//! platform libm) come from there; `erf`, `erfc`, `gamma` and `lgamma` come
//! from the `libm` crate. Python's float `//` and `%` are implemented here
//! with CPython's exact algorithm.
//!
//! This module only computes: it knows the typed IR's operator names (to map
//! a [`Builtin`] to its routine) but never evaluates programs.

use crate::tir::{BinaryOp, Builtin};
use crate::types::ScalarType;

/// A math routine's address together with its signature.
#[derive(Clone, Copy, Debug)]
pub enum MathFunction {
    UnaryF64(extern "C" fn(f64) -> f64),
    UnaryF32(extern "C" fn(f32) -> f32),
    BinaryF64(extern "C" fn(f64, f64) -> f64),
    BinaryF32(extern "C" fn(f32, f32) -> f32),
    /// `round`: a float to an `i64`.
    RoundF64(extern "C" fn(f64) -> i64),
    RoundF32(extern "C" fn(f32) -> i64),
}

impl MathFunction {
    /// The routine's entry address, for registering it with the JIT.
    pub fn address(self) -> *const u8 {
        match self {
            MathFunction::UnaryF64(f) => f as *const u8,
            MathFunction::UnaryF32(f) => f as *const u8,
            MathFunction::BinaryF64(f) => f as *const u8,
            MathFunction::BinaryF32(f) => f as *const u8,
            MathFunction::RoundF64(f) => f as *const u8,
            MathFunction::RoundF32(f) => f as *const u8,
        }
    }
}

/// One exported routine: its symbol name and its function.
#[derive(Clone, Copy, Debug)]
pub struct MathSymbol {
    pub name: &'static str,
    pub function: MathFunction,
}

/// Declares the routines of one-operand and two-operand builtins once, and
/// derives from that single list both [`builtin_symbol`] and [`SYMBOLS`].
macro_rules! math_table {
    (
        unary { $($unary:ident => $unary_f64:ident, $unary_f32:ident;)* }
        binary { $($binary:ident => $binary_f64:ident, $binary_f32:ident;)* }
        operators { $($operator:ident => $operator_f64:ident, $operator_f32:ident;)* }
        power { $power:ident }
        round { $round_f64:ident, $round_f32:ident }
    ) => {
        /// The routine implementing a float builtin for dtype `ty` (`f32` or
        /// `f64`); `None` for builtins that are not library calls (`abs` of an
        /// int, `min`, `isnan`, `shape`, ...).
        pub fn builtin_symbol(op: Builtin, ty: ScalarType) -> Option<MathSymbol> {
            let (name, function) = match (op, ty) {
                $(
                    (Builtin::$unary, ScalarType::F64) => (stringify!($unary_f64), MathFunction::UnaryF64($unary_f64)),
                    (Builtin::$unary, ScalarType::F32) => (stringify!($unary_f32), MathFunction::UnaryF32($unary_f32)),
                )*
                $(
                    (Builtin::$binary, ScalarType::F64) => (stringify!($binary_f64), MathFunction::BinaryF64($binary_f64)),
                    (Builtin::$binary, ScalarType::F32) => (stringify!($binary_f32), MathFunction::BinaryF32($binary_f32)),
                )*
                (Builtin::Round, ScalarType::F64) => (stringify!($round_f64), MathFunction::RoundF64($round_f64)),
                (Builtin::Round, ScalarType::F32) => (stringify!($round_f32), MathFunction::RoundF32($round_f32)),
                _ => return None,
            };
            Some(MathSymbol { name, function })
        }

        /// The routine implementing a float binary operator (`//`, `%`, `**`)
        /// for dtype `ty`; `None` for operators compiled inline.
        pub fn operator_symbol(op: BinaryOp, ty: ScalarType) -> Option<MathSymbol> {
            let (name, function) = match (op, ty) {
                (BinaryOp::Pow, _) => return builtin_symbol(Builtin::$power, ty),
                $(
                    (BinaryOp::$operator, ScalarType::F64) => (stringify!($operator_f64), MathFunction::BinaryF64($operator_f64)),
                    (BinaryOp::$operator, ScalarType::F32) => (stringify!($operator_f32), MathFunction::BinaryF32($operator_f32)),
                )*
                _ => return None,
            };
            Some(MathSymbol { name, function })
        }

        /// Every exported routine, for registering with the JIT.
        pub static SYMBOLS: &[MathSymbol] = &[
            $(
                MathSymbol { name: stringify!($unary_f64), function: MathFunction::UnaryF64($unary_f64) },
                MathSymbol { name: stringify!($unary_f32), function: MathFunction::UnaryF32($unary_f32) },
            )*
            $(
                MathSymbol { name: stringify!($binary_f64), function: MathFunction::BinaryF64($binary_f64) },
                MathSymbol { name: stringify!($binary_f32), function: MathFunction::BinaryF32($binary_f32) },
            )*
            $(
                MathSymbol { name: stringify!($operator_f64), function: MathFunction::BinaryF64($operator_f64) },
                MathSymbol { name: stringify!($operator_f32), function: MathFunction::BinaryF32($operator_f32) },
            )*
            MathSymbol { name: stringify!($round_f64), function: MathFunction::RoundF64($round_f64) },
            MathSymbol { name: stringify!($round_f32), function: MathFunction::RoundF32($round_f32) },
        ];
    };
}

math_table! {
    unary {
        Abs => kj_fabs_f64, kj_fabs_f32;
        Sqrt => kj_sqrt_f64, kj_sqrt_f32;
        Exp => kj_exp_f64, kj_exp_f32;
        Log => kj_log_f64, kj_log_f32;
        Log2 => kj_log2_f64, kj_log2_f32;
        Log10 => kj_log10_f64, kj_log10_f32;
        Log1p => kj_log1p_f64, kj_log1p_f32;
        Expm1 => kj_expm1_f64, kj_expm1_f32;
        Sin => kj_sin_f64, kj_sin_f32;
        Cos => kj_cos_f64, kj_cos_f32;
        Tan => kj_tan_f64, kj_tan_f32;
        Asin => kj_asin_f64, kj_asin_f32;
        Acos => kj_acos_f64, kj_acos_f32;
        Atan => kj_atan_f64, kj_atan_f32;
        Sinh => kj_sinh_f64, kj_sinh_f32;
        Cosh => kj_cosh_f64, kj_cosh_f32;
        Tanh => kj_tanh_f64, kj_tanh_f32;
        Floor => kj_floor_f64, kj_floor_f32;
        Ceil => kj_ceil_f64, kj_ceil_f32;
        Trunc => kj_trunc_f64, kj_trunc_f32;
        Erf => kj_erf_f64, kj_erf_f32;
        Erfc => kj_erfc_f64, kj_erfc_f32;
        Gamma => kj_gamma_f64, kj_gamma_f32;
        Lgamma => kj_lgamma_f64, kj_lgamma_f32;
    }
    binary {
        Atan2 => kj_atan2_f64, kj_atan2_f32;
        Hypot => kj_hypot_f64, kj_hypot_f32;
        Copysign => kj_copysign_f64, kj_copysign_f32;
        Fmod => kj_fmod_f64, kj_fmod_f32;
        Powf => kj_powf_f64, kj_powf_f32;
    }
    operators {
        FloorDiv => kj_floordiv_f64, kj_floordiv_f32;
        Mod => kj_mod_f64, kj_mod_f32;
    }
    // `x ** y` on floats is C `pow`, the same routine as `math.pow`.
    power { Powf }
    round { kj_round_even_f64, kj_round_even_f32 }
}

/// Defines `extern "C"` wrappers around one-operand routines, in `f64` and `f32`.
macro_rules! unary_routines {
    ($($f64_name:ident, $f32_name:ident => $f64_fn:path, $f32_fn:path;)*) => {
        $(
            pub extern "C" fn $f64_name(x: f64) -> f64 {
                $f64_fn(x)
            }
            pub extern "C" fn $f32_name(x: f32) -> f32 {
                $f32_fn(x)
            }
        )*
    };
}

/// Defines `extern "C"` wrappers around two-operand routines.
macro_rules! binary_routines {
    ($($f64_name:ident, $f32_name:ident => $f64_fn:path, $f32_fn:path;)*) => {
        $(
            pub extern "C" fn $f64_name(x: f64, y: f64) -> f64 {
                $f64_fn(x, y)
            }
            pub extern "C" fn $f32_name(x: f32, y: f32) -> f32 {
                $f32_fn(x, y)
            }
        )*
    };
}

unary_routines! {
    kj_fabs_f64, kj_fabs_f32 => f64::abs, f32::abs;
    kj_sqrt_f64, kj_sqrt_f32 => f64::sqrt, f32::sqrt;
    kj_exp_f64, kj_exp_f32 => f64::exp, f32::exp;
    kj_log_f64, kj_log_f32 => f64::ln, f32::ln;
    kj_log2_f64, kj_log2_f32 => f64::log2, f32::log2;
    kj_log10_f64, kj_log10_f32 => f64::log10, f32::log10;
    kj_log1p_f64, kj_log1p_f32 => f64::ln_1p, f32::ln_1p;
    kj_expm1_f64, kj_expm1_f32 => f64::exp_m1, f32::exp_m1;
    kj_sin_f64, kj_sin_f32 => f64::sin, f32::sin;
    kj_cos_f64, kj_cos_f32 => f64::cos, f32::cos;
    kj_tan_f64, kj_tan_f32 => f64::tan, f32::tan;
    kj_asin_f64, kj_asin_f32 => f64::asin, f32::asin;
    kj_acos_f64, kj_acos_f32 => f64::acos, f32::acos;
    kj_atan_f64, kj_atan_f32 => f64::atan, f32::atan;
    kj_sinh_f64, kj_sinh_f32 => f64::sinh, f32::sinh;
    kj_cosh_f64, kj_cosh_f32 => f64::cosh, f32::cosh;
    kj_tanh_f64, kj_tanh_f32 => f64::tanh, f32::tanh;
    kj_floor_f64, kj_floor_f32 => f64::floor, f32::floor;
    kj_ceil_f64, kj_ceil_f32 => f64::ceil, f32::ceil;
    kj_trunc_f64, kj_trunc_f32 => f64::trunc, f32::trunc;
    kj_erf_f64, kj_erf_f32 => libm::erf, libm::erff;
    kj_erfc_f64, kj_erfc_f32 => libm::erfc, libm::erfcf;
    kj_gamma_f64, kj_gamma_f32 => libm::tgamma, libm::tgammaf;
    kj_lgamma_f64, kj_lgamma_f32 => libm::lgamma, libm::lgammaf;
}

binary_routines! {
    kj_atan2_f64, kj_atan2_f32 => f64::atan2, f32::atan2;
    kj_hypot_f64, kj_hypot_f32 => f64::hypot, f32::hypot;
    kj_copysign_f64, kj_copysign_f32 => f64::copysign, f32::copysign;
    kj_powf_f64, kj_powf_f32 => f64::powf, f32::powf;
    kj_floordiv_f64, kj_floordiv_f32 => floordiv_f64, floordiv_f32;
    kj_mod_f64, kj_mod_f32 => mod_f64, mod_f32;
}

/// C `fmod`: the remainder of `x / y` with the sign of `x`, exact (Rust's `%`
/// on floats is C `fmod`).
pub extern "C" fn kj_fmod_f64(x: f64, y: f64) -> f64 {
    x % y
}

/// C `fmodf`.
pub extern "C" fn kj_fmod_f32(x: f32, y: f32) -> f32 {
    x % y
}

/// Python's `round(x)` for a float: round half to even, to `i64` with
/// saturation (`inf` gives `i64::MAX`, NaN gives 0).
pub extern "C" fn kj_round_even_f64(x: f64) -> i64 {
    x.round_ties_even() as i64
}

/// [`kj_round_even_f64`] for `f32` (rounded in `f32`).
pub extern "C" fn kj_round_even_f32(x: f32) -> i64 {
    x.round_ties_even() as i64
}

/// Generates Python's float floor division and modulo for one float type,
/// following CPython's `_float_div_mod` (the same as NumPy's `npy_divmod`)
/// step by step, with NumPy's result for a zero divisor.
macro_rules! python_divmod {
    ($float:ty, $divmod:ident, $floordiv:ident, $modulo:ident) => {
        /// `(x // y, x % y)` with Python's float semantics. A zero divisor gives
        /// `(x / y, NaN)`: ±inf or NaN for the quotient, as NumPy does.
        fn $divmod(x: $float, y: $float) -> ($float, $float) {
            let mut modulo = x % y;
            if y == 0.0 {
                return (x / y, modulo);
            }
            // `x - modulo` is mathematically an exact multiple of `y`, but the
            // subtraction and division round, so `div` is only nearly integral.
            let mut div = (x - modulo) / y;
            if modulo != 0.0 {
                // The remainder takes the sign of the divisor.
                if (y < 0.0) != (modulo < 0.0) {
                    modulo += y;
                    div -= 1.0;
                }
            } else {
                // A zero remainder takes the divisor's sign.
                modulo = (0.0 as $float).copysign(y);
            }
            let floordiv = if div != 0.0 {
                // Snap the quotient to the nearest integral value.
                let mut floordiv = div.floor();
                if div - floordiv > 0.5 {
                    floordiv += 1.0;
                }
                floordiv
            } else {
                // A zero quotient takes the sign of the true quotient.
                (0.0 as $float).copysign(x / y)
            };
            (floordiv, modulo)
        }

        fn $floordiv(x: $float, y: $float) -> $float {
            $divmod(x, y).0
        }

        fn $modulo(x: $float, y: $float) -> $float {
            $divmod(x, y).1
        }
    };
}

python_divmod!(f64, divmod_f64, floordiv_f64, mod_f64);
python_divmod!(f32, divmod_f32, floordiv_f32, mod_f32);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_float_floordiv_and_mod() {
        // (x, y, x // y, x % y) as CPython 3 prints them.
        let cases: &[(f64, f64, f64, f64)] = &[
            (-7.5, 2.0, -4.0, 0.5),
            (7.5, -2.0, -4.0, -0.5),
            (5.0, -3.0, -2.0, -1.0),
            (-0.0, 5.0, -0.0, 0.0),
            (0.0, -5.0, -0.0, -0.0),
            (6.0, 3.0, 2.0, 0.0),
            (-6.0, 3.0, -2.0, 0.0),
            (6.0, -3.0, -2.0, -0.0),
            (1e308, 1e-308, f64::INFINITY, 3.498445546245627e-309),
            (5.0, f64::INFINITY, 0.0, 5.0),
            (-5.0, f64::INFINITY, -1.0, f64::INFINITY),
            (0.1, 0.01, 10.0, 3.469446951953614e-18),
        ];
        for &(x, y, quotient, remainder) in cases {
            assert_eq!(kj_floordiv_f64(x, y).to_bits(), quotient.to_bits(), "{x} // {y}");
            assert_eq!(kj_mod_f64(x, y).to_bits(), remainder.to_bits(), "{x} % {y}");
        }
        assert!(kj_floordiv_f64(f64::INFINITY, 2.0).is_nan());
        assert!(kj_mod_f64(f64::INFINITY, 2.0).is_nan());
        assert_eq!(kj_floordiv_f64(1.0, 0.0), f64::INFINITY);
        assert_eq!(kj_floordiv_f64(-1.0, 0.0), f64::NEG_INFINITY);
        assert!(kj_floordiv_f64(0.0, 0.0).is_nan());
        assert!(kj_mod_f64(1.0, 0.0).is_nan());
        assert_eq!(kj_floordiv_f32(-7.5, 2.0), -4.0);
        assert_eq!(kj_mod_f32(-7.5, 2.0), 0.5);
    }

    #[test]
    fn rounding_is_half_to_even_and_saturating() {
        assert_eq!(kj_round_even_f64(2.5), 2);
        assert_eq!(kj_round_even_f64(3.5), 4);
        assert_eq!(kj_round_even_f64(-2.5), -2);
        assert_eq!(kj_round_even_f64(f64::NAN), 0);
        assert_eq!(kj_round_even_f64(1e300), i64::MAX);
        assert_eq!(kj_round_even_f32(-0.5), 0);
    }

    #[test]
    fn every_builtin_symbol_is_exported_once() {
        let mut names: Vec<&str> = SYMBOLS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        let count = names.len();
        names.dedup();
        assert_eq!(count, names.len());
        assert_eq!(operator_symbol(BinaryOp::Pow, ScalarType::F64).unwrap().name, "kj_powf_f64");
        let sin = builtin_symbol(Builtin::Sin, ScalarType::F32).unwrap();
        assert_eq!(sin.name, "kj_sin_f32");
        assert!(matches!(sin.function, MathFunction::UnaryF32(f) if f(0.0) == 0.0));
        assert!(builtin_symbol(Builtin::Min, ScalarType::F64).is_none());
        assert!((kj_lgamma_f64(-0.5) - (std::f64::consts::PI.sqrt() * 2.0).ln()).abs() < 1e-15);
        assert_eq!(kj_gamma_f64(5.0), 24.0);
    }
}
