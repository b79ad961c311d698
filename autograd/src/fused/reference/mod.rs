//! The fused ops written with general [`Var`](crate::Var) ops only, micrograd-style: no
//! hand-written backward (autograd differentiates them), no kernel of their own, any
//! device. They are the definitions the fused ops are tested against, and the place to read
//! the maths.
//!
//! They are slower and keep more on the tape (every intermediate, such as the `[n, classes]`
//! scores of [`linear_cross_entropy`]), which is why the models call the fused ops.
//!
//! ```
//! use std::sync::Arc;
//!
//! use mclrec_autograd::fused::{reference, FusedOps};
//! use mclrec_autograd::Tape;
//! use mclrec_tensor::attention::{QueryRows, SeqLayout};
//! use mclrec_tensor::Tensor;
//!
//! // Two sequences of lengths 1 and 2, one head of width 1; nothing blocked.
//! let layout = Arc::new(SeqLayout::new(vec![0, 1, 3], vec![false; 3]));
//! let tape = Tape::<f64>::new();
//! let q = tape.leaf(Tensor::from_f64s(&[1.0, 0.0, 2.0], &[3, 1]));
//! let kv = tape.leaf(Tensor::from_f64s(&[0.0, 5.0, 1.0, 1.0, 0.5, 3.0], &[3, 2]));
//! let by_hand = reference::attention(q, kv, &layout, QueryRows::All, true, 1, None);
//! let fused = q.attention(kv, &layout, QueryRows::All, true, 1, None);
//! // The first query of each sequence sees only its own key: its value.
//! assert_eq!(by_hand.value().to_vec()[..2], [5.0, 1.0]);
//! for (a, b) in by_hand.value().to_vec().iter().zip(fused.value().to_vec()) {
//!     assert!((a - b).abs() < 1e-12);
//! }
//! ```

mod attention;
mod contrastive_pair;
mod conv_max_pool;
mod gru;
mod linear_cross_entropy;

pub use attention::attention;
pub use contrastive_pair::contrastive_pair;
pub use conv_max_pool::conv_max_pool;
pub use gru::gru_recurrence;
pub use linear_cross_entropy::linear_cross_entropy;
