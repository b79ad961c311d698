//! Adam (Kingma & Ba), as `torch.optim.Adam`: L2 weight decay added to the gradient,
//! bias-corrected moments, `eps` added after the square root. The update itself is one
//! fused kernel per parameter ([`Tensor::adam_step`], AVX2 for `f32`).

use mclrec_tensor::{AdamParams, Device, DeviceError, Element, Tensor};

use super::Optimizer;
use crate::params::{GroupId, ParamId, ParamStore};

/// Per-parameter state: the moments and the step count.
#[derive(Clone, Debug)]
pub struct AdamState<E: Element> {
    /// First moment.
    pub m: Tensor<E>,
    /// Second moment.
    pub v: Tensor<E>,
    /// Steps taken with this parameter.
    pub step: u64,
}

/// Adam over one parameter group.
#[derive(Clone, Debug)]
pub struct Adam<E: Element> {
    group: GroupId,
    /// Learning rate.
    pub lr: f64,
    /// `(beta1, beta2)`, default `(0.9, 0.999)`.
    pub betas: (f64, f64),
    /// Default `1e-8`.
    pub eps: f64,
    /// L2 penalty, default 0.
    pub weight_decay: f64,
    state: Vec<(ParamId, AdamState<E>)>,
}

impl<E: Element> Adam<E> {
    /// Adam with PyTorch's defaults and learning rate `lr` over `group`.
    pub fn new(group: GroupId, lr: f64) -> Self {
        Adam {
            group,
            lr,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            state: Vec::new(),
        }
    }

    /// The state of each parameter that has been stepped (for checkpoints).
    pub fn state(&self) -> &[(ParamId, AdamState<E>)] {
        &self.state
    }

    /// Replaces the state (when resuming from a checkpoint).
    pub fn set_state(&mut self, state: Vec<(ParamId, AdamState<E>)>) {
        self.state = state;
    }

    /// Moves the moments to `device` (where the parameters are about to go).
    pub fn to_device(&mut self, device: Device) -> Result<(), DeviceError> {
        for (_, s) in &mut self.state {
            s.m = s.m.to_device(device)?;
            s.v = s.v.to_device(device)?;
        }
        Ok(())
    }
}

impl<E: Element> Optimizer<E> for Adam<E> {
    fn group(&self) -> GroupId {
        self.group
    }

    fn step(&mut self, store: &mut ParamStore<E>) {
        for id in store.ids_in(self.group) {
            let Some(grad) = store.get(id).grad.clone() else {
                continue;
            };
            let pos = match self.state.iter().position(|(p, _)| *p == id) {
                Some(i) => i,
                None => {
                    // On the parameter's device.
                    self.state.push((
                        id,
                        AdamState {
                            m: grad.zeros_like(),
                            v: grad.zeros_like(),
                            step: 0,
                        },
                    ));
                    self.state.len() - 1
                }
            };
            let st = &mut self.state[pos].1;
            st.step += 1;
            let h = AdamParams {
                lr: self.lr,
                beta1: self.betas.0,
                beta2: self.betas.1,
                eps: self.eps,
                weight_decay: self.weight_decay,
                step: st.step,
            };
            store
                .get_mut(id)
                .value
                .adam_step(&grad, &mut st.m, &mut st.v, &h);
        }
    }
}
