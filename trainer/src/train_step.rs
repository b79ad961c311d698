//! A model and its optimisers: one batch of samples through the model's schedule.

use mclrec_models::recommender::{Optimisers, TrainBatch};
use mclrec_models::Recommender;
use mclrec_tensor::{Device, DeviceError};
use rand::RngCore;

pub use mclrec_models::recommender::{BatchLosses, NonFiniteLoss};

use crate::config::TrainConfig;
use crate::TrainSample;

/// The model and one Adam per parameter group.
pub struct Learner {
    /// The model and its parameters.
    pub model: Box<dyn Recommender<f32>>,
    /// The optimisers of its groups.
    pub opt: Optimisers<f32>,
}

impl Learner {
    /// Wraps a model with fresh optimisers at the configuration's learning rate.
    pub fn new(model: Box<dyn Recommender<f32>>, config: &TrainConfig) -> Self {
        let opt = Optimisers::new(&model.groups(), config.lr);
        Learner { model, opt }
    }

    /// Moves the parameters and the optimisers' moments to `device` (a learner is built on
    /// the CPU; a resumed one is loaded there first).
    pub fn to_device(&mut self, device: Device) -> Result<(), DeviceError> {
        self.model.store_mut().to_device(device)?;
        self.opt.to_device(device)
    }

    /// Trains on the samples `idx` of `samples` in epoch `epoch` (the model's schedule;
    /// every random draw from `rng`).
    pub fn train_batch(
        &mut self,
        samples: &[TrainSample],
        idx: &[usize],
        epoch: usize,
        rng: &mut dyn RngCore,
    ) -> Result<BatchLosses, NonFiniteLoss> {
        let users: Vec<usize> = idx.iter().map(|&i| samples[i].user).collect();
        let inputs: Vec<&[usize]> = idx.iter().map(|&i| samples[i].input.as_slice()).collect();
        let targets: Vec<usize> = idx.iter().map(|&i| samples[i].target).collect();
        let batch = TrainBatch {
            users: &users,
            inputs: &inputs,
            targets: &targets,
        };
        self.model.train_batch(&batch, epoch, &mut self.opt, rng)
    }
}
