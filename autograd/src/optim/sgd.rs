//! Stochastic gradient descent, as `torch.optim.SGD`: `g += wd * p`; with momentum
//! `b = mu * b + g` (the first step takes `b = g`); `p -= lr * b`.

use mclrec_tensor::{Element, Tensor};

use super::Optimizer;
use crate::params::{GroupId, ParamId, ParamStore};

/// SGD with optional momentum and L2 weight decay over one group.
#[derive(Clone, Debug)]
pub struct Sgd<E: Element> {
    group: GroupId,
    /// Learning rate.
    pub lr: f64,
    /// Momentum factor (0 = plain SGD).
    pub momentum: f64,
    /// L2 penalty.
    pub weight_decay: f64,
    buffers: Vec<(ParamId, Tensor<E>)>,
}

impl<E: Element> Sgd<E> {
    /// Plain SGD with learning rate `lr` over `group`.
    pub fn new(group: GroupId, lr: f64) -> Self {
        Sgd {
            group,
            lr,
            momentum: 0.0,
            weight_decay: 0.0,
            buffers: Vec::new(),
        }
    }
}

impl<E: Element> Optimizer<E> for Sgd<E> {
    fn group(&self) -> GroupId {
        self.group
    }

    fn step(&mut self, store: &mut ParamStore<E>) {
        for id in store.ids_in(self.group) {
            let p = store.get(id);
            let Some(mut g) = p.grad.clone() else {
                continue;
            };
            if self.weight_decay != 0.0 {
                g = g.add(&p.value.mul_scalar(E::from_f64(self.weight_decay)));
            }
            if self.momentum != 0.0 {
                let mu = E::from_f64(self.momentum);
                g = match self.buffers.iter_mut().find(|(q, _)| *q == id) {
                    Some((_, b)) => {
                        *b = b.mul_scalar(mu).add(&g);
                        b.clone()
                    }
                    None => {
                        self.buffers.push((id, g.clone()));
                        g
                    }
                };
            }
            let new = store.value(id).sub(&g.mul_scalar(E::from_f64(self.lr)));
            store.get_mut(id).value = new;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tape;

    #[test]
    fn sgd_step_matches_the_formula() {
        let mut store = ParamStore::<f64>::new();
        let g = store.group("all");
        let w = store.add("w", Tensor::from_f64s(&[1.0, -2.0], &[2]), g);
        let mut opt = Sgd::new(g, 0.1);
        opt.momentum = 0.9;
        for _ in 0..2 {
            let tape = Tape::new();
            let x = tape.param(&store, w);
            (x * x).sum_all().backward().accumulate_into(&mut store);
            opt.step(&mut store);
            opt.zero_grad(&mut store);
        }
        // step 1: g = 2w = (2, -4), b = g, w = (0.8, -1.6)
        // step 2: g = (1.6, -3.2), b = 0.9*(2,-4) + g = (3.4, -6.8), w = (0.46, -0.92)
        let v = store.value(w).to_vec();
        assert!(
            (v[0] - 0.46).abs() < 1e-12 && (v[1] + 0.92).abs() < 1e-12,
            "{v:?}"
        );
    }
}
