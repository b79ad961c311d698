//! Binding a [`ParamStore`] to a tape for one step.

use mclrec_autograd::{GroupId, ParamId, ParamStore, Tape, Var};
use mclrec_tensor::Element;

/// Every parameter of a store bound to one tape: trainable groups as leaves (they receive
/// gradients), the rest as constants (gradients flow through them, not into them).
///
/// Binding once per step and indexing by [`ParamId`] means a parameter used by several
/// forward passes (the encoder on the sequence and on both views) is one leaf.
pub struct Bound<'t, E: Element> {
    vars: Vec<Var<'t, E>>,
}

impl<'t, E: Element> Bound<'t, E> {
    /// Binds every parameter of `store`; those in `trainable` groups get gradients.
    pub fn new(tape: &'t Tape<E>, store: &ParamStore<E>, trainable: &[GroupId]) -> Self {
        let vars = store
            .iter()
            .map(|(id, p)| {
                if trainable.contains(&p.group) {
                    tape.param(store, id)
                } else {
                    tape.frozen_param(store, id)
                }
            })
            .collect();
        Bound { vars }
    }

    /// Stands `vars` in for the parameters `0..vars.len()` (gradient checks bind their
    /// leaves this way).
    #[cfg(test)]
    pub(crate) fn from_vars(vars: Vec<Var<'t, E>>) -> Self {
        Bound { vars }
    }

    /// The bound variable of parameter `id`.
    pub fn get(&self, id: ParamId) -> Var<'t, E> {
        self.vars[id.0]
    }
}
