//! The one integration-test binary (one link, many modules).

mod bad_input;
mod cli;
mod golden;
mod jit;
mod kernels;
