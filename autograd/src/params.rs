//! Parameters live outside the tape, in a [`ParamStore`], grouped for separate optimisers.

use mclrec_tensor::{Device, DeviceError, Element, Tensor};

/// The index of a parameter in its [`ParamStore`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParamId(pub usize);

/// A named set of parameters that one optimiser owns (MCLRec has two: the encoder and the
/// augmenters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GroupId(pub usize);

/// One trainable tensor with its accumulated gradient.
#[derive(Clone, Debug)]
pub struct Param<E: Element> {
    /// The full name (e.g. `trm_encoder.layer.0.feed_forward.dense_1.weight`).
    pub name: String,
    /// The current value.
    pub value: Tensor<E>,
    /// The gradient accumulated since the last zero-grad, if any.
    pub grad: Option<Tensor<E>>,
    /// The group (optimiser) it belongs to.
    pub group: GroupId,
}

/// Every parameter of a model, by id and by name, with groups.
#[derive(Clone, Debug, Default)]
pub struct ParamStore<E: Element> {
    params: Vec<Param<E>>,
    groups: Vec<String>,
}

impl<E: Element> ParamStore<E> {
    /// An empty store.
    pub fn new() -> Self {
        ParamStore {
            params: Vec::new(),
            groups: Vec::new(),
        }
    }

    /// Creates a group (or returns the existing one of that name).
    pub fn group(&mut self, name: &str) -> GroupId {
        if let Some(i) = self.groups.iter().position(|g| g == name) {
            return GroupId(i);
        }
        self.groups.push(name.to_string());
        GroupId(self.groups.len() - 1)
    }

    /// The name of a group.
    pub fn group_name(&self, g: GroupId) -> &str {
        &self.groups[g.0]
    }

    /// Adds a parameter.
    ///
    /// # Panics
    /// If the name is already taken.
    pub fn add(&mut self, name: &str, value: Tensor<E>, group: GroupId) -> ParamId {
        assert!(self.find(name).is_none(), "parameter `{name}` added twice");
        self.params.push(Param {
            name: name.to_string(),
            value,
            grad: None,
            group,
        });
        ParamId(self.params.len() - 1)
    }

    /// The parameter named `name`.
    pub fn find(&self, name: &str) -> Option<ParamId> {
        self.params.iter().position(|p| p.name == name).map(ParamId)
    }

    /// The parameter `id`.
    pub fn get(&self, id: ParamId) -> &Param<E> {
        &self.params[id.0]
    }

    /// The parameter `id`, mutably (to load weights).
    pub fn get_mut(&mut self, id: ParamId) -> &mut Param<E> {
        &mut self.params[id.0]
    }

    /// The value of parameter `id`.
    pub fn value(&self, id: ParamId) -> &Tensor<E> {
        &self.params[id.0].value
    }

    /// The number of parameters.
    pub fn len(&self) -> usize {
        self.params.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// All parameters with their ids.
    pub fn iter(&self) -> impl Iterator<Item = (ParamId, &Param<E>)> {
        self.params.iter().enumerate().map(|(i, p)| (ParamId(i), p))
    }

    /// The ids of the parameters of `group`.
    pub fn ids_in(&self, group: GroupId) -> Vec<ParamId> {
        self.iter()
            .filter(|(_, p)| p.group == group)
            .map(|(i, _)| i)
            .collect()
    }

    /// The number of scalar weights.
    pub fn numel(&self) -> usize {
        self.params.iter().map(|p| p.value.numel()).sum()
    }

    /// Moves every value (and gradient) to `device`, e.g. a model built on the CPU to the
    /// GPU that will train it.
    pub fn to_device(&mut self, device: Device) -> Result<(), DeviceError> {
        for p in &mut self.params {
            p.value = p.value.to_device(device)?;
            if let Some(g) = p.grad.take() {
                p.grad = Some(g.to_device(device)?);
            }
        }
        Ok(())
    }

    /// The device of the values (the CPU for an empty store).
    pub fn device(&self) -> Device {
        self.params
            .first()
            .map_or(Device::Cpu, |p| p.value.device())
    }

    /// `grad += g` for parameter `id`.
    pub fn accumulate_grad(&mut self, id: ParamId, g: &Tensor<E>) {
        let p = &mut self.params[id.0];
        p.grad = Some(match p.grad.take() {
            None => g.clone(),
            Some(prev) => prev.add(g),
        });
    }

    /// Clears the gradients of `group`.
    pub fn zero_grad(&mut self, group: GroupId) {
        self.params
            .iter_mut()
            .filter(|p| p.group == group)
            .for_each(|p| p.grad = None);
    }
}
