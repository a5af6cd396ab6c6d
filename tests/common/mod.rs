//! The shared helpers of the end-to-end tests (the `stoker-testing` crate).
#![allow(unused_imports)]

pub use stoker_testing::*;
