//! The one integration-test binary (one link, many modules).

mod cli;
mod golden;
mod kernels;
