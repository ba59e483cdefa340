//! The Cranelift JIT: typed IR to machine code, and the runtime it calls.
//!
//! `abi` is the contract, `lower` generates code, `runtime` implements the
//! helpers and marshalling, `pool` runs `prange` loops on worker threads,
//! `engine` owns compiled code and calls it, `cold` compiles checked loop
//! copies on first use, `cache` keeps one compiled
//! program per signature.

pub mod abi;
pub mod cache;
pub mod codegen;
pub mod cold;
pub mod engine;
pub mod hoist;
pub mod lower;
pub mod pool;
pub mod runtime;
pub mod ssa;
