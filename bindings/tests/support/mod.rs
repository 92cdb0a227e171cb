//! Shared by the bindings' tests (and, through `#[path]`, the `expected_answers` example).
#![allow(dead_code)] // each test binary uses part of it

pub mod cases;
