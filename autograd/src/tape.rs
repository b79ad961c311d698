//! The tape (a Wengert list), the [`Var`] handles that point into it, and the backward pass.
//!
//! Every op on a [`Var`] computes its value at once (eager) and appends one [`Node`] to the
//! tape: the value, whether a gradient must flow to it, and, if so, a [`Backward`] object
//! that knows the op's vector-Jacobian product. The tape is in execution order, so
//! [`Var::backward`] is a plain loop from the loss back to the first node: no topological
//! sort is needed.
//!
//! Every node also records its op's name and its inputs, so a tape can be looked at: it
//! prints one line per node (`{tape}`, or `{tape:?}`) and exports a Graphviz graph
//! ([`Tape::to_dot`]).
//!
//! Gradients never live on the values. `backward` returns a fresh [`Gradients`] store keyed by
//! node id, so calling it twice gives the same answer twice (micrograd's `.grad` fields would
//! silently double).

use std::cell::{Cell, RefCell};

use mclrec_tensor::{Element, Tensor};

use crate::params::{ParamId, ParamStore};

/// An op's vector-Jacobian product: given the gradient of its output, add the gradients of
/// its inputs to `grads`.
pub trait Backward<E: Element> {
    /// Propagates `grad_out` (shaped like the op's output) to the op's inputs.
    fn backward(&self, grad_out: &Tensor<E>, grads: &mut GradSink<'_, E>);
}

/// One recorded value.
struct Node<E: Element> {
    value: Tensor<E>,
    requires_grad: bool,
    backward: Option<Box<dyn Backward<E>>>,
    param: Option<ParamId>,
    /// The op that made it (`leaf`, `constant`, `param` for inputs).
    op: &'static str,
    /// Its inputs: `edges[inputs.0..inputs.1]` of the tape.
    inputs: (usize, usize),
}

/// The list of values computed in one step, in execution order.
///
/// A tape is created once and [`reset`](Tape::reset) between steps; its node list keeps
/// its capacity, so a training loop does not reallocate it.
///
/// ```
/// use mclrec_autograd::Tape;
/// use mclrec_tensor::Tensor;
///
/// let tape = Tape::<f64>::new();
/// let x = tape.leaf(Tensor::from_f64s(&[2.0], &[]));
/// let y = x * x + x;                 // y = x^2 + x
/// let g = y.backward();
/// assert_eq!(g.get(x).unwrap().item(), 5.0);   // dy/dx = 2x + 1
/// ```
pub struct Tape<E: Element = f32> {
    nodes: RefCell<Vec<Node<E>>>,
    /// Every node's input ids, one after another (one list for the tape, so recording a
    /// node allocates nothing once the list has grown).
    edges: RefCell<Vec<usize>>,
    grad_enabled: Cell<bool>,
}

/// The index of a node on its tape: what backward functions keep to name their inputs
/// (a [`Var`] borrows the tape, a `NodeId` does not).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeId(pub usize);

/// A handle to a value on a [`Tape`]. Cheap to copy; ops on it record onto the same tape.
#[derive(Clone, Copy)]
pub struct Var<'t, E: Element = f32> {
    pub(crate) tape: &'t Tape<E>,
    pub(crate) id: usize,
}

impl<E: Element> Default for Tape<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: Element> Tape<E> {
    /// An empty tape with gradients enabled.
    pub fn new() -> Self {
        Tape {
            nodes: RefCell::new(Vec::new()),
            edges: RefCell::new(Vec::new()),
            grad_enabled: Cell::new(true),
        }
    }

    /// Forgets every node (keeping the list's capacity). Needs `&mut`, so no [`Var`] of the
    /// previous step can outlive it.
    pub fn reset(&mut self) {
        self.nodes.get_mut().clear();
        self.edges.get_mut().clear();
    }

    /// The number of recorded nodes.
    pub fn len(&self) -> usize {
        self.nodes.borrow().len()
    }

    /// True when nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stores `inputs` as a node's edges.
    fn edges_of(&self, inputs: &[Var<'_, E>]) -> (usize, usize) {
        let mut edges = self.edges.borrow_mut();
        let start = edges.len();
        edges.extend(inputs.iter().map(|v| v.id));
        (start, edges.len())
    }

    fn push(&self, node: Node<E>) -> Var<'_, E> {
        let mut nodes = self.nodes.borrow_mut();
        nodes.push(node);
        Var {
            tape: self,
            id: nodes.len() - 1,
        }
    }

    /// A value that gradients flow to (an input you want `d loss / d input` of).
    pub fn leaf(&self, value: Tensor<E>) -> Var<'_, E> {
        self.push(Node {
            value,
            requires_grad: true,
            backward: None,
            param: None,
            op: "leaf",
            inputs: (0, 0),
        })
    }

    /// A value no gradient is wanted for (data, masks, frozen weights).
    pub fn constant(&self, value: Tensor<E>) -> Var<'_, E> {
        self.push(Node {
            value,
            requires_grad: false,
            backward: None,
            param: None,
            op: "constant",
            inputs: (0, 0),
        })
    }

    /// Binds parameter `id` of `store` as a leaf; its gradient can then be accumulated into
    /// the store with [`Gradients::accumulate_into`].
    pub fn param(&self, store: &ParamStore<E>, id: ParamId) -> Var<'_, E> {
        let value = store.value(id).clone();
        self.push(Node {
            value,
            requires_grad: self.grad_enabled.get(),
            backward: None,
            param: Some(id),
            op: "param",
            inputs: (0, 0),
        })
    }

    /// Binds parameter `id` as a constant: gradients flow *through* it to other inputs but
    /// are not computed for it (the frozen augmenters of MCLRec's encoder step).
    pub fn frozen_param(&self, store: &ParamStore<E>, id: ParamId) -> Var<'_, E> {
        self.constant(store.value(id).clone())
    }

    /// Runs `f` with gradient recording off: values are computed, no backward is kept.
    pub fn no_grad<R>(&self, f: impl FnOnce() -> R) -> R {
        let before = self.grad_enabled.replace(false);
        let r = f();
        self.grad_enabled.set(before);
        r
    }

    /// Records the result of the op named `op`. `make_backward` is only called when a
    /// gradient must flow back through the op (some input requires one and recording is on).
    pub fn record<'t>(
        &'t self,
        op: &'static str,
        value: Tensor<E>,
        inputs: &[Var<'t, E>],
        make_backward: impl FnOnce() -> Box<dyn Backward<E>>,
    ) -> Var<'t, E> {
        let requires_grad = self.grad_enabled.get() && {
            let nodes = self.nodes.borrow();
            inputs.iter().any(|v| nodes[v.id].requires_grad)
        };
        let backward = if requires_grad {
            Some(make_backward())
        } else {
            None
        };
        let inputs = self.edges_of(inputs);
        self.push(Node {
            value,
            requires_grad,
            backward,
            param: None,
            op,
            inputs,
        })
    }

    /// The tape as a Graphviz graph: inputs as ellipses (parameters filled), ops as boxes,
    /// each labelled with its id, name and shape; an edge from every input to its op.
    /// `dot -Tpng tape.dot -o tape.png` draws it.
    ///
    /// ```
    /// use mclrec_autograd::Tape;
    /// use mclrec_tensor::Tensor;
    ///
    /// let tape = Tape::<f64>::new();
    /// let x = tape.leaf(Tensor::from_f64s(&[1.0, 2.0], &[2]));
    /// let _y = (x * x).sum_all();
    /// let dot = tape.to_dot();
    /// assert!(dot.contains("n1 [label=\"#1 mul\\n[2]\", shape=box]"));
    /// assert!(dot.contains("n0 -> n1"));
    /// ```
    pub fn to_dot(&self) -> String {
        let nodes = self.nodes.borrow();
        let edges = self.edges.borrow();
        let mut out = String::from("digraph tape {\n  rankdir=LR;\n");
        for (i, n) in nodes.iter().enumerate() {
            let style = match (n.op, n.param.is_some()) {
                (_, true) => "shape=ellipse, style=filled, fillcolor=lightgrey",
                ("leaf" | "constant", _) => "shape=ellipse",
                _ => "shape=box",
            };
            out += &format!(
                "  n{i} [label=\"#{i} {}\\n{:?}\", {style}];\n",
                n.op,
                n.value.shape()
            );
            for &from in &edges[n.inputs.0..n.inputs.1] {
                out += &format!("  n{from} -> n{i};\n");
            }
        }
        out + "}\n"
    }
}

/// One line per node: id, op, shape, inputs, and whether a gradient flows to it.
///
/// ```
/// use mclrec_autograd::Tape;
/// use mclrec_tensor::Tensor;
///
/// let tape = Tape::<f64>::new();
/// let x = tape.leaf(Tensor::from_f64s(&[1.0, 2.0, 3.0], &[3]));
/// let y = (x * x + x).sum_all();
/// let _ = y.backward();
/// assert_eq!(
///     tape.to_string(),
///     "#0 leaf     [3] grad\n\
///      #1 mul      [3] <- #0, #0 grad\n\
///      #2 add      [3] <- #1, #0 grad\n\
///      #3 reshape  [3] <- #2 grad\n\
///      #4 sum_axis []  <- #3 grad\n"
/// );
/// ```
impl<E: Element> std::fmt::Display for Tape<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let nodes = self.nodes.borrow();
        let edges = self.edges.borrow();
        let op_w = nodes.iter().map(|n| n.op.len()).max().unwrap_or(0);
        let shape_w = nodes
            .iter()
            .map(|n| format!("{:?}", n.value.shape()).len())
            .max()
            .unwrap_or(0);
        for (i, n) in nodes.iter().enumerate() {
            let ins: Vec<String> = edges[n.inputs.0..n.inputs.1]
                .iter()
                .map(|j| format!("#{j}"))
                .collect();
            let ins = if ins.is_empty() {
                String::new()
            } else {
                format!(" <- {}", ins.join(", "))
            };
            let shape = format!("{:?}", n.value.shape());
            let param = n.param.map_or(String::new(), |p| format!(" param {}", p.0));
            let grad = if n.requires_grad { " grad" } else { "" };
            writeln!(
                f,
                "#{i} {:<op_w$} {shape:<shape_w$}{ins}{param}{grad}",
                n.op
            )?;
        }
        Ok(())
    }
}

impl<E: Element> std::fmt::Debug for Tape<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tape with {} nodes:\n{self}", self.len())
    }
}

impl<'t, E: Element> Var<'t, E> {
    /// The value (a cheap clone: tensors share their storage).
    pub fn value(&self) -> Tensor<E> {
        self.tape.nodes.borrow()[self.id].value.clone()
    }

    /// The shape of the value.
    pub fn shape(&self) -> Vec<usize> {
        self.tape.nodes.borrow()[self.id].value.shape().to_vec()
    }

    /// The node's index on its tape (what [`Gradients`] is keyed by).
    pub fn node(&self) -> NodeId {
        NodeId(self.id)
    }

    /// The tape this value is recorded on.
    pub fn tape(&self) -> &'t Tape<E> {
        self.tape
    }

    /// Whether a gradient will flow to this value.
    pub fn requires_grad(&self) -> bool {
        self.tape.nodes.borrow()[self.id].requires_grad
    }

    /// The same value cut off from the graph: no gradient flows back through it.
    pub fn detach(self) -> Var<'t, E> {
        self.tape.constant(self.value())
    }

    /// Back-propagates from this value, which must have one element (a loss), and returns
    /// the gradients of the leaves (inputs and parameters) that require them.
    ///
    /// # Panics
    /// If the value has more than one element.
    pub fn backward(self) -> Gradients<E> {
        let nodes = self.tape.nodes.borrow();
        let seed = &nodes[self.id].value;
        assert_eq!(
            seed.numel(),
            1,
            "backward() needs a scalar loss, got shape {:?}",
            seed.shape()
        );
        let mut sink = GradSink {
            grads: Vec::with_capacity(self.id + 1),
            nodes: &nodes,
        };
        sink.grads.resize_with(self.id + 1, || None);
        sink.grads[self.id] = Some(seed.full_like(seed.shape(), E::one()));
        // Reverse execution order is a valid topological order of a Wengert list.
        for i in (0..=self.id).rev() {
            if let Some(bw) = &nodes[i].backward {
                if let Some(g) = sink.grads[i].take() {
                    bw.backward(&g, &mut sink);
                }
            }
        }
        let leaf_grads = sink.grads;
        let params = nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| Some((n.param?, leaf_grads.get(i)?.clone()?)))
            .collect();
        Gradients {
            by_node: leaf_grads,
            params,
        }
    }
}

/// Where backward functions deposit input gradients; sums when a value is used twice.
pub struct GradSink<'a, E: Element> {
    grads: Vec<Option<Tensor<E>>>,
    nodes: &'a [Node<E>],
}

impl<E: Element> GradSink<'_, E> {
    /// Whether the value `v` needs a gradient (backward functions skip work when not).
    pub fn wants(&self, v: NodeId) -> bool {
        self.nodes[v.0].requires_grad
    }

    /// Adds `g` to the gradient of `v` (ignored when `v` needs none).
    ///
    /// # Panics
    /// If `g`'s shape differs from `v`'s value, which is a bug in an op's backward.
    pub fn add(&mut self, v: NodeId, g: Tensor<E>) {
        if !self.nodes[v.0].requires_grad {
            return;
        }
        let want = self.nodes[v.0].value.shape();
        assert_eq!(
            g.shape(),
            want,
            "gradient shape {:?} for a value of shape {:?}",
            g.shape(),
            want
        );
        let slot = &mut self.grads[v.0];
        *slot = Some(match slot.take() {
            None => g,
            Some(prev) => prev.add(&g),
        });
    }

    /// Adds the rows `rows` at the rows `idx` of `v`'s gradient (`[n_rows, cols]`; an
    /// embedding lookup's backward): into the gradient in place when one is there already,
    /// else as a scatter into zeros. The same numbers as
    /// `add(v, rows.scatter_add_rows(idx, n_rows))`, without a table-sized scatter and sum.
    pub fn add_rows(&mut self, v: NodeId, rows: &Tensor<E>, idx: &[usize], n_rows: usize) {
        if !self.nodes[v.0].requires_grad {
            return;
        }
        let slot = &mut self.grads[v.0];
        *slot = Some(match slot.take() {
            None => rows.scatter_add_rows(idx, n_rows),
            Some(mut prev) => {
                prev.add_rows(rows, idx);
                prev
            }
        });
    }
}

/// The gradients of one backward pass: by leaf [`Var`] and by parameter.
pub struct Gradients<E: Element> {
    by_node: Vec<Option<Tensor<E>>>,
    params: Vec<(ParamId, Tensor<E>)>,
}

impl<E: Element> Gradients<E> {
    /// `d loss / d v` for a leaf `v`, or `None` when no gradient reached it.
    pub fn get(&self, v: Var<'_, E>) -> Option<&Tensor<E>> {
        self.by_node.get(v.id)?.as_ref()
    }

    /// The gradient of each bound parameter that received one.
    pub fn params(&self) -> &[(ParamId, Tensor<E>)] {
        &self.params
    }

    /// Adds the parameter gradients into `store` (PyTorch's `.grad +=`).
    pub fn accumulate_into(&self, store: &mut ParamStore<E>) {
        for (id, g) in &self.params {
            store.accumulate_grad(*id, g);
        }
    }
}

#[cfg(test)]
mod view_tests {
    use super::*;

    #[test]
    fn a_tape_shows_its_parameters_constants_and_edges() {
        let mut store = ParamStore::<f64>::new();
        let g = store.group("g");
        let w = store.add("w", Tensor::from_f64s(&[1.0, 2.0, 3.0, 4.0], &[2, 2]), g);
        let tape = Tape::new();
        let wv = tape.param(&store, w);
        let x = tape.constant(Tensor::from_f64s(&[1.0, -1.0], &[1, 2]));
        let y = x.matmul(wv).relu();
        let text = tape.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(
            lines[0].starts_with("#0 param") && lines[0].ends_with("param 0 grad"),
            "{text}"
        );
        assert!(
            lines[1].starts_with("#1 constant") && !lines[1].ends_with("grad"),
            "{text}"
        );
        assert!(
            lines[2].contains("matmul") && lines[2].contains("<- #1, #0"),
            "{text}"
        );
        assert!(
            lines[3].contains("clamp_min") && lines[3].contains("<- #2"),
            "{text}"
        );
        let dot = tape.to_dot();
        for edge in ["n1 -> n2", "n0 -> n2", "n2 -> n3"] {
            assert!(dot.contains(edge), "{dot}");
        }
        assert!(
            dot.contains("fillcolor=lightgrey"),
            "the parameter is marked: {dot}"
        );
        assert!(format!("{tape:?}").starts_with("Tape with 4 nodes:"));
        let _ = y;
    }
}
