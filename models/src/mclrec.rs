//! The whole MCLRec model: one encoder and two augmenters in one parameter store.

use mclrec_autograd::{GroupId, ParamStore};
use mclrec_tensor::Element;
use rand::RngCore;

use crate::{Augmenter, SasRecConfig, SasRecEncoder};

/// The name of the encoder's parameter group.
pub const ENCODER_GROUP: &str = "encoder";
/// The name of the augmenters' parameter group.
pub const AUGMENTER_GROUP: &str = "augmenters";

/// The encoder, the two augmenters (`aug_1`, `aug_2`) and their parameters.
///
/// With `shared_augmenter`, both views go through `aug_1` (the paper's ablation).
#[derive(Clone, Debug)]
pub struct Mclrec<E: Element> {
    /// All parameters, in the groups [`ENCODER_GROUP`] and [`AUGMENTER_GROUP`].
    pub store: ParamStore<E>,
    /// The SASRec encoder.
    pub encoder: SasRecEncoder,
    /// The augmenter of the first view.
    pub aug_1: Augmenter,
    /// The augmenter of the second view (`None` when shared).
    pub aug_2: Option<Augmenter>,
    /// The encoder's group.
    pub encoder_group: GroupId,
    /// The augmenters' group.
    pub augmenter_group: GroupId,
}

impl<E: Element> Mclrec<E> {
    /// A freshly initialised model (encoder first, then the augmenters, from one rng).
    pub fn new(config: SasRecConfig, shared_augmenter: bool, rng: &mut dyn RngCore) -> Self {
        let mut store = ParamStore::new();
        let encoder_group = store.group(ENCODER_GROUP);
        let augmenter_group = store.group(AUGMENTER_GROUP);
        let dims = [config.hidden, 32, 16, config.hidden];
        let encoder = SasRecEncoder::new(&mut store, encoder_group, config, rng);
        let aug_1 = Augmenter::new(&mut store, augmenter_group, "aug_1", &dims, rng);
        let aug_2 = (!shared_augmenter)
            .then(|| Augmenter::new(&mut store, augmenter_group, "aug_2", &dims, rng));
        Mclrec {
            store,
            encoder,
            aug_1,
            aug_2,
            encoder_group,
            augmenter_group,
        }
    }

    /// The augmenter of the second view (`aug_1` when shared).
    pub fn second_augmenter(&self) -> &Augmenter {
        self.aug_2.as_ref().unwrap_or(&self.aug_1)
    }
}
