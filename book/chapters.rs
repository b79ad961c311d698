//! The course book of the MCLRec project, as a crate.
//!
//! The book lives in `src/*.md` (an mdBook: `mdbook build book`). This crate exists only so
//! that `cargo test` compiles and runs every Rust block of every chapter: each chapter is
//! included below as the documentation of an empty module, which makes its code blocks doc
//! tests. A chapter whose code stops compiling, or whose assertions stop holding after a
//! change to `mclrec-tensor` or `mclrec-autograd`, fails the workspace's tests.

#[doc = include_str!("src/introduction.md")]
pub mod introduction {}

#[doc = include_str!("src/ch01-tensors.md")]
pub mod ch01_tensors {}

#[doc = include_str!("src/ch02-tape.md")]
pub mod ch02_tape {}

#[doc = include_str!("src/ch03-custom-op.md")]
pub mod ch03_custom_op {}

#[doc = include_str!("src/ch04-mlp.md")]
pub mod ch04_mlp {}

#[doc = include_str!("src/ch05-attention.md")]
pub mod ch05_attention {}

#[doc = include_str!("src/ch06-sasrec.md")]
pub mod ch06_sasrec {}

#[doc = include_str!("src/ch07-training.md")]
pub mod ch07_training {}

#[doc = include_str!("src/ch08-contrastive.md")]
pub mod ch08_contrastive {}

#[doc = include_str!("src/ch09-fast.md")]
pub mod ch09_fast {}
