//! Optimisers with PyTorch's semantics, each owning one parameter group.
//!
//! MCLRec trains with two Adams over disjoint groups (the encoder and the augmenters): each
//! optimiser's [`zero_grad`](Optimizer::zero_grad) and [`step`](Optimizer::step) touch
//! only its own group.

mod adam;
mod sgd;

pub use adam::{Adam, AdamState};
pub use sgd::Sgd;

use mclrec_tensor::Element;

use crate::params::{GroupId, ParamStore};

/// What the trainer needs of an optimiser.
pub trait Optimizer<E: Element> {
    /// The group this optimiser updates.
    fn group(&self) -> GroupId;
    /// Updates every parameter of the group that has a gradient.
    fn step(&mut self, store: &mut ParamStore<E>);
    /// Clears the gradients of the group.
    fn zero_grad(&self, store: &mut ParamStore<E>) {
        store.zero_grad(self.group());
    }
}
