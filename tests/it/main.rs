//! The one integration-test binary (one link, many modules).

mod api;
mod bad_input;
mod cli;
mod concurrency;
mod corpus;
mod fuzz_corpus;
mod generated;
mod golden;
mod hostile;
mod jit;
mod kernels;
mod no_traps;
mod parallel;
mod sources;
