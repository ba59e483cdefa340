//! The one integration-test binary (one link, many modules).

mod api;
mod bad_input;
mod cli;
mod corpus;
mod golden;
mod jit;
mod kernels;
mod no_traps;
mod parallel;
