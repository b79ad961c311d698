//! A model and its optimisers: one batch of samples through the model's schedule.

use mclrec_models::recommender::{Optimisers, TrainBatch};
use mclrec_models::Recommender;
use mclrec_tensor::{Device, DeviceError};
use rand::RngCore;

pub use mclrec_models::recommender::{BatchLosses, NonFiniteLoss};

use crate::config::TrainConfig;
use crate::same_target::SameTargetIndex;
use crate::TrainSample;

/// The model and one Adam per parameter group.
pub struct Learner {
    /// The model and its parameters.
    pub model: Box<dyn Recommender<f32>>,
    /// The optimisers of its groups.
    pub opt: Optimisers<f32>,
    /// The samples by target, for a model that wants same-target partners (built at its
    /// first batch).
    same_target: Option<SameTargetIndex>,
}

impl Learner {
    /// Wraps a model with fresh optimisers at the configuration's learning rate.
    pub fn new(model: Box<dyn Recommender<f32>>, config: &TrainConfig) -> Self {
        let opt = Optimisers::new(&model.groups(), config.lr);
        Learner {
            model,
            opt,
            same_target: None,
        }
    }

    /// Moves the parameters and the optimisers' moments to `device` (a learner is built on
    /// the CPU; a resumed one is loaded there first).
    pub fn to_device(&mut self, device: Device) -> Result<(), DeviceError> {
        self.model.store_mut().to_device(device)?;
        self.opt.to_device(device)
    }

    /// Trains on the samples `idx` of `samples` in epoch `epoch` (the model's schedule;
    /// every random draw from `rng`, the same-target partners first when the model wants
    /// them).
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
        let partners: Option<Vec<&[usize]>> = self.model.wants_same_target().then(|| {
            if self.same_target.as_ref().map(|s| s.len()) != Some(samples.len()) {
                self.same_target = Some(SameTargetIndex::new(samples));
            }
            let index = self.same_target.as_ref().expect("built above");
            idx.iter()
                .map(|&i| samples[index.partner(i, rng)].input.as_slice())
                .collect()
        });
        let batch = TrainBatch {
            users: &users,
            inputs: &inputs,
            targets: &targets,
            same_target: partners.as_deref(),
        };
        self.model.train_batch(&batch, epoch, &mut self.opt, rng)
    }
}
