//! Library side of `cargo xtask`: the verification suite, so that tests (and downstream crates
//! that want the same report) can run it in process.
#![deny(missing_docs)]

pub mod tidy;
pub mod verify;
