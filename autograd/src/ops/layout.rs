//! Ops that move values without changing them: reshape, permute / transpose, concat,
//! narrow / split, index-select. Their backward moves the gradient back the same way.
//! PyTorch: `reshape`, `permute`, `transpose`, `torch.cat`, `narrow`, `split`, `index_select`.

use mclrec_tensor::{Element, Tensor};

use crate::{Backward, GradSink, NodeId, Var};

/// The permutation that undoes `perm`.
fn inverse(perm: &[usize]) -> Vec<usize> {
    let mut inv = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inv[p] = i;
    }
    inv
}

struct ReshapeBackward {
    x: NodeId,
    shape: Vec<usize>,
}
impl<E: Element> Backward<E> for ReshapeBackward {
    fn backward(&self, g: &Tensor<E>, grads: &mut GradSink<'_, E>) {
        grads.add(self.x, g.reshape(&self.shape));
    }
}

struct PermuteBackward {
    x: NodeId,
    inverse: Vec<usize>,
}
impl<E: Element> Backward<E> for PermuteBackward {
    fn backward(&self, g: &Tensor<E>, grads: &mut GradSink<'_, E>) {
        grads.add(self.x, g.permute(&self.inverse));
    }
}

struct ConcatBackward {
    xs: Vec<NodeId>,
    sizes: Vec<usize>,
    axis: usize,
}
impl<E: Element> Backward<E> for ConcatBackward {
    fn backward(&self, g: &Tensor<E>, grads: &mut GradSink<'_, E>) {
        for (x, part) in self.xs.iter().zip(g.split(self.axis, &self.sizes)) {
            grads.add(*x, part);
        }
    }
}

struct NarrowBackward {
    x: NodeId,
    shape: Vec<usize>,
    axis: usize,
    start: usize,
}
impl<E: Element> Backward<E> for NarrowBackward {
    fn backward(&self, g: &Tensor<E>, grads: &mut GradSink<'_, E>) {
        // Zeros before and after the slice along the axis.
        let len = g.shape()[self.axis];
        let mut before = self.shape.clone();
        before[self.axis] = self.start;
        let mut after = self.shape.clone();
        after[self.axis] = self.shape[self.axis] - self.start - len;
        let (zb, za) = (
            g.full_like(&before, E::zero()),
            g.full_like(&after, E::zero()),
        );
        grads.add(self.x, Tensor::concat(&[&zb, g, &za], self.axis));
    }
}

struct IndexSelectBackward {
    x: NodeId,
    shape: Vec<usize>,
    axis: usize,
    idx: Vec<usize>,
}
impl<E: Element> Backward<E> for IndexSelectBackward {
    fn backward(&self, g: &Tensor<E>, grads: &mut GradSink<'_, E>) {
        // Move the axis to the front, scatter-add rows, move it back.
        let r = self.shape.len();
        let mut perm: Vec<usize> = (0..r).collect();
        perm.remove(self.axis);
        perm.insert(0, self.axis);
        let gp = g.permute(&perm);
        let rows = gp.shape()[0];
        let rest = gp.numel() / rows.max(1);
        let summed = gp
            .reshape(&[rows, rest])
            .scatter_add_rows(&self.idx, self.shape[self.axis]);
        let mut pshape: Vec<usize> = perm.iter().map(|&p| self.shape[p]).collect();
        pshape[0] = self.shape[self.axis];
        grads.add(self.x, summed.reshape(&pshape).permute(&inverse(&perm)));
    }
}

impl<'t, E: Element> Var<'t, E> {
    /// The same values with another shape of the same size.
    pub fn reshape(self, shape: &[usize]) -> Var<'t, E> {
        let x = self.value();
        let old = x.shape().to_vec();
        self.tape.record("reshape", x.reshape(shape), &[self], || {
            Box::new(ReshapeBackward {
                x: self.node(),
                shape: old,
            })
        })
    }

    /// Reorders the axes: output axis `i` is input axis `perm[i]`.
    pub fn permute(self, perm: &[usize]) -> Var<'t, E> {
        let y = self.value().permute(perm);
        let inverse = inverse(perm);
        self.tape.record("permute", y, &[self], || {
            Box::new(PermuteBackward {
                x: self.node(),
                inverse,
            })
        })
    }

    /// Swaps axes `a` and `b`.
    pub fn transpose(self, a: usize, b: usize) -> Var<'t, E> {
        let mut perm: Vec<usize> = (0..self.shape().len()).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }

    /// Joins `xs` along `axis`.
    pub fn concat(xs: &[Var<'t, E>], axis: usize) -> Var<'t, E> {
        let vals: Vec<Tensor<E>> = xs.iter().map(|x| x.value()).collect();
        let refs: Vec<&Tensor<E>> = vals.iter().collect();
        let y = Tensor::concat(&refs, axis);
        let sizes = vals.iter().map(|v| v.shape()[axis]).collect();
        let ids = xs.iter().map(|x| x.node()).collect();
        xs[0].tape.record("concat", y, xs, || {
            Box::new(ConcatBackward {
                xs: ids,
                sizes,
                axis,
            })
        })
    }

    /// `len` entries of `axis` from `start`.
    pub fn narrow(self, axis: usize, start: usize, len: usize) -> Var<'t, E> {
        let x = self.value();
        let shape = x.shape().to_vec();
        self.tape
            .record("narrow", x.narrow(axis, start, len), &[self], || {
                Box::new(NarrowBackward {
                    x: self.node(),
                    shape,
                    axis,
                    start,
                })
            })
    }

    /// Splits `axis` into consecutive pieces of the given sizes.
    pub fn split(self, axis: usize, sizes: &[usize]) -> Vec<Var<'t, E>> {
        let mut start = 0;
        sizes
            .iter()
            .map(|&s| {
                let v = self.narrow(axis, start, s);
                start += s;
                v
            })
            .collect()
    }

    /// Entries of `axis` in the order `idx` (repeats allowed: their gradients add up).
    pub fn index_select(self, axis: usize, idx: &[usize]) -> Var<'t, E> {
        let x = self.value();
        let shape = x.shape().to_vec();
        let idx_v = idx.to_vec();
        self.tape
            .record("index_select", x.index_select(axis, idx), &[self], || {
                Box::new(IndexSelectBackward {
                    x: self.node(),
                    shape,
                    axis,
                    idx: idx_v,
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use crate::gradcheck::check_gradients;
    use crate::gradcheck::strategies::{shape, tensor};
    use crate::Var;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn grad_reshape(s in shape(3), seed in 0u64..1000) {
            let n: usize = s.iter().product();
            check_gradients(&[tensor(&s, seed, -2.0, 2.0)], |v| v[0].reshape(&[n])).map_err(TestCaseError::fail)?;
        }
        #[test]
        fn grad_permute(s in proptest::collection::vec(1usize..=4, 3), seed in 0u64..1000, rot in 0usize..3) {
            let perm: Vec<usize> = (0..3).map(|i| (i + rot) % 3).collect();
            check_gradients(&[tensor(&s, seed, -2.0, 2.0)], |v| v[0].permute(&perm)).map_err(TestCaseError::fail)?;
        }
        #[test]
        fn grad_transpose(s in proptest::collection::vec(1usize..=4, 2..=3), seed in 0u64..1000) {
            let r = s.len();
            check_gradients(&[tensor(&s, seed, -2.0, 2.0)], |v| v[0].transpose(0, r - 1)).map_err(TestCaseError::fail)?;
        }
        #[test]
        fn grad_concat(s in shape(3), extra in 1usize..4, seed in 0u64..1000, axis_pick in 0usize..3) {
            let axis = axis_pick % s.len();
            let mut s2 = s.clone();
            s2[axis] = extra;
            let xs = [tensor(&s, seed, -2.0, 2.0), tensor(&s2, seed + 1, -2.0, 2.0)];
            check_gradients(&xs, |v| Var::concat(v, axis)).map_err(TestCaseError::fail)?;
        }
        #[test]
        fn grad_split(s in shape(3), seed in 0u64..1000, axis_pick in 0usize..3) {
            let axis = axis_pick % s.len();
            let n = s[axis];
            let first = n / 2;
            let x = tensor(&s, seed, -2.0, 2.0);
            // Weight the pieces differently so a swapped gradient would show.
            check_gradients(&[x], |v| {
                let p = v[0].split(axis, &[first, n - first]);
                Var::concat(&[p[1].mul_scalar(2.0), p[0]], axis)
            }).map_err(TestCaseError::fail)?;
        }
        #[test]
        fn grad_index_select(s in shape(3), seed in 0u64..1000, axis_pick in 0usize..3, picks in proptest::collection::vec(0usize..100, 1..6)) {
            let axis = axis_pick % s.len();
            let idx: Vec<usize> = picks.iter().map(|p| p % s[axis]).collect();
            check_gradients(&[tensor(&s, seed, -2.0, 2.0)], |v| v[0].index_select(axis, &idx)).map_err(TestCaseError::fail)?;
        }
    }
}
