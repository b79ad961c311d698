//! BPR-MF (Rendle et al., UAI'09) as RecBole writes it (`bpr.py`): a user table and an item
//! table; a user's score of an item is the dot product of their rows, and training ranks a
//! user's observed item above a sampled one with the BPR loss. Users are rows, so the model
//! knows only the users it was trained on.
//!
//! ```text
//! s(u, i) = e_u . e_i
//! BPR     = mean over (u, pos, neg) of -ln(1e-10 + sigmoid(s(u, pos) - s(u, neg)))
//! ```
//!
//! (The `1e-10` inside the logarithm is RecBole's `BPRLoss` `gamma`.)

use mclrec_autograd::{GroupId, ParamId, ParamStore, Var};
use mclrec_tensor::{Element, Tensor};
use rand::RngCore;

use crate::Bound;

/// The two embedding tables (`user_embedding.weight`, `item_embedding.weight`).
#[derive(Clone, Debug)]
pub struct Bpr {
    /// `[user rows, d]`.
    pub user_embedding: ParamId,
    /// `[item rows, d]` (row 0 the padding item, a row like the others: BPR's tables have
    /// no padding index).
    pub item_embedding: ParamId,
}

impl Bpr {
    /// Adds the tables to `store`, Xavier-normal as RecBole initialises them.
    pub fn new<E: Element>(
        store: &mut ParamStore<E>,
        group: GroupId,
        (user_rows, item_rows): (usize, usize),
        dim: usize,
        rng: &mut dyn RngCore,
    ) -> Self {
        let mut table = |name: &str, rows: usize| {
            let std = (2.0 / (rows + dim) as f64).sqrt();
            store.add(name, Tensor::normal(&[rows, dim], 0.0, std, rng), group)
        };
        Bpr {
            user_embedding: table("user_embedding.weight", user_rows),
            item_embedding: table("item_embedding.weight", item_rows),
        }
    }

    /// The scores of every item for each of `users` (`[users.len(), item rows]`).
    pub fn scores<'t, E: Element>(&self, p: &Bound<'t, E>, users: &[usize]) -> Var<'t, E> {
        let u = p.get(self.user_embedding).index_select(0, users);
        u.matmul_t(p.get(self.item_embedding), false, true)
    }

    /// The BPR loss of `users[k]` preferring `pos[k]` to `neg[k]`.
    pub fn loss<'t, E: Element>(
        &self,
        p: &Bound<'t, E>,
        users: &[usize],
        (pos, neg): (&[usize], &[usize]),
    ) -> Var<'t, E> {
        let u = p.get(self.user_embedding).index_select(0, users);
        crate::losses::bpr_loss(u, p.get(self.item_embedding), pos, neg)
    }
}
