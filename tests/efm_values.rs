//! Files with valid checksums and well-formed metadata whose *values* are hostile: one number,
//! flag, type name or list entry of a reference model's graph (or of a small hand-written graph
//! for the ops the models lack) changed at a time — op attributes, tensor shapes and dtypes,
//! node and graph tensor ids, weight offsets and lengths, quantization parameters. Each mutant is
//! loaded, planned and run once: it may be refused with an `Err`, never panic. Mutants whose
//! attributes change an op's output shape are also tried with the graph's shapes re-inferred
//! downstream, so they get past the output-shape check and reach the kernels.
//!
//! The default run takes a deterministic sample of each model's mutants; `EFM_VALUES_ALL=1`
//! tries every one (minutes).

mod common;

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

use common::*;
use edgefuse_runtime::cpu::{Session, SessionOptions};
use edgefuse_runtime::format::{self, Meta};
use edgefuse_runtime::ir::ops::*;
use edgefuse_runtime::ir::{Graph, Node, Op, QuantParams, TensorInfo};
use edgefuse_runtime::tensor::TensorView;
use edgefuse_runtime::{DType, Model, Tensor};
use serde_json::Value;

/// Mutants whose tensors need more than this in all are loaded but not planned or run.
const RUN_LIMIT: usize = 64 << 20;

const DTYPES: &[&str] = &["f32", "f16", "i64", "i32", "i8", "u8", "bool"];
/// Unit variants of the IR's enums, each group the values one field can take.
const ENUMS: &[&[&str]] = &[
    &["Forward", "Reverse", "Bidirectional"],
    &["Max", "Avg"],
    &["Constant", "Reflect", "Edge"],
    &[
        "HalfPixel",
        "PytorchHalfPixel",
        "AlignCorners",
        "Asymmetric",
        "TfHalfPixelForNn",
    ],
    &["RoundPreferFloor", "RoundPreferCeil", "Floor", "Ceil"],
    &[
        "Mean",
        "Sum",
        "Max",
        "Min",
        "Prod",
        "L2",
        "L1",
        "SumSquare",
        "LogSumExp",
    ],
    &[
        "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Equal", "Less", "Greater", "PRelu",
        "And", "Or", "Xor",
    ],
    &[
        "Identity",
        "Relu",
        "Sigmoid",
        "Tanh",
        "Sqrt",
        "Exp",
        "Log",
        "Neg",
        "Abs",
        "Reciprocal",
        "Floor",
        "Ceil",
        "Round",
        "Erf",
        "Softplus",
        "Swish",
        "Mish",
        "HardSwish",
        "Gelu",
        "Not",
        "Sin",
        "Cos",
        "Sign",
        "Softsign",
    ],
];

// ---------------------------------------------------------------------------------------------
// Writing and trying files

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// `Model::from_bytes` said no.
    Refused,
    /// Loaded, but its tensors exceed [`RUN_LIMIT`].
    TooLarge,
    /// `Session::new` or `run` said no.
    Failed,
    Ran,
}

thread_local! {
    /// Set while a mutant runs: the panic hook records the message here instead of printing.
    static CAUGHT: RefCell<Option<Option<String>>> = const { RefCell::new(None) };
}

fn quiet_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let quiet = CAUGHT.with(|c| {
                let mut c = c.borrow_mut();
                match c.as_mut() {
                    Some(slot) => {
                        let msg = info
                            .payload()
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| info.payload().downcast_ref::<String>().cloned())
                            .unwrap_or_default();
                        let at = info
                            .location()
                            .map(|l| format!("{}:{}", l.file(), l.line()))
                            .unwrap_or_default();
                        *slot = Some(format!("{msg} at {at}"));
                        true
                    }
                    None => false,
                }
            });
            if !quiet {
                default(info)
            }
        }));
    });
}

/// A deterministic value for input `info`: small integers (valid indices), bytes, or floats.
fn input_for(info: &TensorInfo) -> Tensor {
    let n: usize = info.shape.iter().product();
    let bytes: Vec<u8> = match info.dtype {
        DType::F32 => (0..n)
            .flat_map(|i| (((i * 7919) % 2000) as f32 / 1000.0 - 1.0).to_le_bytes())
            .collect(),
        DType::F16 => (0..n).flat_map(|_| [0u8, 0x3c]).collect(),
        DType::I64 => (0..n)
            .flat_map(|i| ((i % 5) as i64).to_le_bytes())
            .collect(),
        DType::I32 => (0..n)
            .flat_map(|i| ((i % 5) as i32).to_le_bytes())
            .collect(),
        DType::I8 | DType::U8 => (0..n).map(|i| (i * 37 % 251) as u8).collect(),
        DType::Bool => (0..n).map(|i| (i % 2) as u8).collect(),
    };
    Tensor::from_bytes(info.dtype, &info.shape, &bytes).unwrap()
}

/// Loads, plans and runs `bytes` with one thread; `Err` carries a panic's message and place.
fn try_file(bytes: &[u8]) -> Result<Outcome, String> {
    quiet_panics();
    CAUGHT.with(|c| *c.borrow_mut() = Some(None));
    let r = catch_unwind(AssertUnwindSafe(|| {
        let Ok(m) = Model::from_bytes(bytes) else {
            return Outcome::Refused;
        };
        let total = m
            .graph()
            .tensors
            .iter()
            .fold(0usize, |a, t| a.saturating_add(t.byte_len()));
        if total > RUN_LIMIT {
            return Outcome::TooLarge;
        }
        let Ok(mut s) = Session::new(m.clone(), SessionOptions::with_threads(1)) else {
            return Outcome::Failed;
        };
        let g = m.graph();
        for (k, &id) in g.inputs.iter().enumerate() {
            let t = input_for(&g.tensors[id]);
            let v = TensorView {
                dtype: t.dtype,
                shape: &t.shape,
                data: t.bytes(),
            };
            if s.set_input(k, v).is_err() {
                return Outcome::Failed;
            }
        }
        if s.run().is_err() {
            return Outcome::Failed;
        }
        for k in 0..g.outputs.len() {
            let _ = s.output(k);
        }
        Outcome::Ran
    }));
    let caught = CAUGHT.with(|c| c.borrow_mut().take()).flatten();
    r.map_err(|_| caught.unwrap_or_else(|| "a panic".into()))
}

// ---------------------------------------------------------------------------------------------
// Mutations

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    At(usize),
}

#[derive(Debug, Clone)]
enum Edit {
    Set(Value),
    Remove,
    Duplicate,
}

#[derive(Debug, Clone)]
struct Mutation {
    path: Vec<Step>,
    edit: Edit,
}

impl std::fmt::Display for Mutation {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        for s in &self.path {
            match s {
                Step::Key(k) => write!(f, ".{k}")?,
                Step::At(i) => write!(f, "[{i}]")?,
            }
        }
        match &self.edit {
            Edit::Set(v) => write!(f, " = {v}"),
            Edit::Remove => write!(f, " removed"),
            Edit::Duplicate => write!(f, " duplicated"),
        }
    }
}

fn ints(v: i64) -> Vec<Value> {
    let mut out: Vec<Value> = [0i64, 1, 2, 3, -1, i64::MAX, i64::MIN, 1 << 32, 1 << 40]
        .into_iter()
        .map(Value::from)
        .collect();
    out.push(Value::from(u64::MAX));
    out.push(Value::from(v.saturating_add(1)));
    out.push(Value::from(v.saturating_sub(1)));
    out.push(Value::from(v.saturating_mul(2)));
    out
}

fn floats() -> Vec<Value> {
    [
        0.0f64, -1.0, 1e-45, 1e-30, 1e30, 3.0e38, 1e39, -3.0e38, 0.5, 255.0,
    ]
    .into_iter()
    .map(Value::from)
    .collect()
}

/// Every single-value change of `v` (found at `path`), pushed onto `out`.
fn mutations(v: &Value, path: &mut Vec<Step>, out: &mut Vec<Mutation>) {
    let set = |path: &[Step], new: Value, out: &mut Vec<Mutation>| {
        out.push(Mutation {
            path: path.to_vec(),
            edit: Edit::Set(new),
        })
    };
    match v {
        Value::Number(n) => {
            let new = if let Some(i) = n.as_i64() {
                ints(i)
            } else if let Some(u) = n.as_u64() {
                ints(u.min(i64::MAX as u64) as i64)
            } else {
                floats()
            };
            for x in new.into_iter().filter(|x| x != v) {
                set(path, x, out);
            }
        }
        Value::Bool(b) => set(path, Value::Bool(!b), out),
        Value::Null => {
            for x in [Value::from(0), Value::from(1), Value::from(1u64 << 40)] {
                set(path, x, out);
            }
        }
        Value::String(s) => {
            let mut alts: Vec<&str> = std::iter::once(DTYPES)
                .chain(ENUMS.iter().copied())
                .filter(|g| g.contains(&s.as_str()))
                .flat_map(|g| g.iter().copied())
                .filter(|x| x != s)
                .collect();
            alts.sort();
            alts.dedup();
            for x in alts {
                set(path, Value::from(x), out);
            }
        }
        Value::Array(a) => {
            for (i, e) in a.iter().enumerate() {
                path.push(Step::At(i));
                if e.is_number() || e.is_string() {
                    out.push(Mutation {
                        path: path.clone(),
                        edit: Edit::Remove,
                    });
                    out.push(Mutation {
                        path: path.clone(),
                        edit: Edit::Duplicate,
                    });
                }
                mutations(e, path, out);
                path.pop();
            }
        }
        Value::Object(o) => {
            for (k, e) in o {
                // Names are free text, and the op's tag selects its type.
                if k == "name" || k == "type" {
                    continue;
                }
                path.push(Step::Key(k.clone()));
                mutations(e, path, out);
                path.pop();
            }
        }
    }
}

fn apply(root: &Value, m: &Mutation) -> Value {
    let mut root = root.clone();
    let (last, parents) = m.path.split_last().expect("a path");
    let mut at = &mut root;
    for s in parents {
        at = match s {
            Step::Key(k) => &mut at[k.as_str()],
            Step::At(i) => &mut at[*i],
        };
    }
    match (&m.edit, last) {
        (Edit::Set(v), Step::Key(k)) => at[k.as_str()] = v.clone(),
        (Edit::Set(v), Step::At(i)) => at[*i] = v.clone(),
        (Edit::Remove, Step::At(i)) => {
            at.as_array_mut().unwrap().remove(*i);
        }
        (Edit::Duplicate, Step::At(i)) => {
            let a = at.as_array_mut().unwrap();
            let e = a[*i].clone();
            a.insert(*i, e);
        }
        _ => unreachable!("removal of a key"),
    }
    root
}

/// The graph's node outputs re-inferred in order, where each node's inference succeeds and its
/// outputs are in range: a hostile attribute with every shape downstream made to agree.
fn reinfer(graph: &mut Graph) {
    for k in 0..graph.nodes.len() {
        let node = &graph.nodes[k];
        let Some(facts) = node
            .inputs
            .iter()
            .map(|&i| graph.tensors.get(i).map(TensorInfo::fact))
            .collect::<Option<Vec<_>>>()
        else {
            continue;
        };
        let Ok(out) = node.op.infer(&facts) else {
            continue;
        };
        if out.len() != node.outputs.len() {
            continue;
        }
        for (&o, f) in node.outputs.clone().iter().zip(out) {
            if let Some(t) = graph.tensors.get_mut(o) {
                t.dtype = f.dtype;
                t.shape = f.shape;
            }
        }
    }
}

/// Whether a mutation is worth re-inferring shapes after: an op attribute or a graph input's
/// shape or type.
fn reaches_shapes(m: &Mutation, graph: &Graph) -> bool {
    match m.path.as_slice() {
        [_, Step::Key(n), _, Step::Key(f), ..] if n == "nodes" => f == "op",
        [_, Step::Key(t), Step::At(i), Step::Key(f), ..] if t == "tensors" => {
            (f == "shape" || f == "dtype") && graph.inputs.contains(i)
        }
        _ => false,
    }
}

/// Tries every chosen mutation of `meta` (with `weights` as its weights section); returns the
/// failures (the mutation and the panic) and the outcome counts.
struct Tally {
    tried: usize,
    counts: [usize; 4],
    panics: Vec<String>,
}

fn mutate_and_run(what: &str, meta: &Meta, weights: &[u8], cap: usize) -> Tally {
    let root = serde_json::to_value(meta).unwrap();
    let mut all = Vec::new();
    mutations(
        &root["graph"],
        &mut vec![Step::Key("graph".into())],
        &mut all,
    );
    // Op attributes and ids first (all of them when they fit the cap), then an even sample.
    let is_attr = |m: &Mutation| {
        !matches!(m.path.get(1), Some(Step::Key(k)) if k == "tensors")
            || matches!(m.path.get(3), Some(Step::Key(k)) if k != "shape")
    };
    let (mut chosen, rest): (Vec<_>, Vec<_>) = all.into_iter().partition(is_attr);
    let all_mutants = std::env::var("EFM_VALUES_ALL").as_deref() == Ok("1");
    if !all_mutants && chosen.len() > cap {
        let step = chosen.len().div_ceil(cap);
        chosen = chosen.into_iter().step_by(step).collect();
    }
    let room = if all_mutants {
        usize::MAX
    } else {
        cap.saturating_sub(chosen.len()).max(cap / 4)
    };
    let step = rest.len().div_ceil(room.max(1)).max(1);
    chosen.extend(rest.into_iter().step_by(step));

    let mut tally = Tally {
        tried: 0,
        counts: [0; 4],
        panics: Vec::new(),
    };
    let one = |label: String, json: Vec<u8>, tally: &mut Tally| {
        tally.tried += 1;
        match try_file(&plain_efm(&json, weights)) {
            Ok(o) => tally.counts[o as usize] += 1,
            Err(p) => tally.panics.push(format!("{what}: {label}: {p}")),
        }
    };
    for m in &chosen {
        let v = apply(&root, m);
        one(m.to_string(), serde_json::to_vec(&v).unwrap(), &mut tally);
        if !reaches_shapes(m, &meta.graph) {
            continue;
        }
        let Ok(mut mm) = serde_json::from_value::<Meta>(v) else {
            continue;
        };
        let before = mm.graph.clone();
        // Inference on facts the loader would refuse first (a tensor of 2^64 elements) may
        // overflow: such a graph has nothing to re-infer.
        quiet_panics();
        CAUGHT.with(|c| *c.borrow_mut() = Some(None));
        let ok = catch_unwind(AssertUnwindSafe(|| reinfer(&mut mm.graph))).is_ok();
        CAUGHT.with(|c| *c.borrow_mut() = None);
        if ok && mm.graph != before {
            one(
                format!("{m} (shapes re-inferred)"),
                serde_json::to_vec(&mm).unwrap(),
                &mut tally,
            );
        }
    }
    tally
}

fn report(what: &str, t: &Tally, start: std::time::Instant) {
    eprintln!(
        "{what}: {} mutants: {} refused at load, {} too large to run, {} refused by the session, \
         {} ran, {} panicked ({:.1} s)",
        t.tried,
        t.counts[Outcome::Refused as usize],
        t.counts[Outcome::TooLarge as usize],
        t.counts[Outcome::Failed as usize],
        t.counts[Outcome::Ran as usize],
        t.panics.len(),
        start.elapsed().as_secs_f64()
    );
    for p in &t.panics {
        eprintln!("  {p}");
    }
}

// ---------------------------------------------------------------------------------------------
// The reference models

#[test]
fn hostile_values_in_reference_models_are_refused_not_panicked_on() {
    let Some(models) = models_dir() else { return };
    // Mutants per model, by how long one takes to plan and run.
    let caps: &[(&str, usize)] = &[
        ("seed_cnn_mnist", 500),
        ("seed_lstm_textgen", 400),
        ("silero_vad_16k_sequence", 250),
        ("mobilenet_v2_int8_qdq", 120),
        ("efficientnet_lite0", 80),
        ("ddddocr_crnn", 60),
    ];
    let mut panics = Vec::new();
    let only = std::env::var("EFM_VALUES_MODELS").unwrap_or_default();
    for &(model, cap) in caps {
        if !only.is_empty() && !only.split(',').any(|m| m == model) {
            continue;
        }
        let start = std::time::Instant::now();
        let bytes = std::fs::read(compiled(&models, model)).unwrap();
        let parsed = format::parse(&bytes).unwrap();
        let weights = &bytes[parsed.weights.clone()];
        assert_eq!(
            try_file(&plain_efm(
                &serde_json::to_vec(&parsed.meta).unwrap(),
                weights
            )),
            Ok(Outcome::Ran),
            "{model}: the unchanged file does not run"
        );
        let t = mutate_and_run(model, &parsed.meta, weights, cap);
        report(model, &t, start);
        panics.extend(t.panics);
    }
    assert!(
        panics.is_empty(),
        "{} mutants panicked:\n{}",
        panics.len(),
        panics.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Hand-written graphs for the ops the reference models lack

/// Builds a graph tensor by tensor; constants carry their values.
#[derive(Default)]
struct Builder {
    graph: Graph,
    consts: Vec<Option<Tensor>>,
}

impl Builder {
    fn tensor(&mut self, dtype: DType, shape: &[usize], value: Option<Tensor>) -> usize {
        self.graph.tensors.push(TensorInfo {
            name: format!("t{}", self.graph.tensors.len()),
            dtype,
            shape: shape.to_vec(),
            weight: None,
            quant: None,
        });
        self.consts.push(value);
        self.graph.tensors.len() - 1
    }
    fn input(&mut self, dtype: DType, shape: &[usize]) -> usize {
        let id = self.tensor(dtype, shape, None);
        self.graph.inputs.push(id);
        id
    }
    /// An f32 constant with values in [-1, 1).
    fn weight(&mut self, shape: &[usize]) -> usize {
        let n: usize = shape.iter().product();
        let v = (0..n).map(|i| ((i * 7919) % 2000) as f32 / 1000.0 - 1.0);
        self.constant(Tensor::from_vec(shape, v.collect()).unwrap())
    }
    fn constant(&mut self, t: Tensor) -> usize {
        let (dtype, shape) = (t.dtype, t.shape.clone());
        self.tensor(dtype, &shape, Some(t))
    }
    /// A node whose outputs are typed by the op's own inference.
    fn node(&mut self, op: Op, inputs: &[usize]) -> Vec<usize> {
        let facts: Vec<_> = inputs
            .iter()
            .map(|&i| self.graph.tensors[i].fact())
            .collect();
        let out = op
            .infer(&facts)
            .unwrap_or_else(|e| panic!("{}: {e}", op.name()));
        let outputs: Vec<usize> = out
            .iter()
            .map(|f| self.tensor(f.dtype, &f.shape, None))
            .collect();
        self.graph.nodes.push(Node {
            name: format!("n{}", self.graph.nodes.len()),
            op,
            inputs: inputs.to_vec(),
            outputs: outputs.clone(),
        });
        outputs
    }
    /// A node whose outputs are typed as given, without the op's inference (which may refuse).
    fn node_as(&mut self, op: Op, inputs: &[usize], outputs: &[(DType, &[usize])]) -> Vec<usize> {
        let outputs: Vec<usize> = outputs
            .iter()
            .map(|&(dtype, shape)| self.tensor(dtype, shape, None))
            .collect();
        self.graph.nodes.push(Node {
            name: format!("n{}", self.graph.nodes.len()),
            op,
            inputs: inputs.to_vec(),
            outputs: outputs.clone(),
        });
        outputs
    }
    fn one(&mut self, op: Op, inputs: &[usize]) -> usize {
        self.node(op, inputs)[0]
    }
    /// The `.efm` bytes, through the writer.
    fn write(mut self, outputs: &[usize]) -> Vec<u8> {
        self.graph.outputs = outputs.to_vec();
        let refs: Vec<Option<&Tensor>> = self.consts.iter().map(Option::as_ref).collect();
        let meta = Meta {
            graph: self.graph,
            ..Default::default()
        };
        format::write(meta, &refs).unwrap()
    }
}

/// Movement and reduction ops: Transpose, Slice, Pad, Reshape, Concat, Split, Expand, Reduce,
/// Softmax, Resize, Gather, Where, Cast, Binary, Unary.
fn movement_graph() -> Vec<u8> {
    let mut b = Builder::default();
    let x = b.input(DType::F32, &[2, 3, 4, 5]);
    let t = b.one(
        Op::Transpose(Transpose {
            perm: vec![0, 2, 1, 3],
        }),
        &[x],
    );
    let s = b.one(
        Op::Slice(Slice {
            starts: vec![0, 1, 2, 4],
            steps: vec![1, 2, -1, -2],
            lens: vec![2, 2, 2, 2],
        }),
        &[t],
    );
    let p = b.one(
        Op::Pad(Pad {
            pads: vec![0, 0, 1, 1, 0, 0, 1, 1],
            mode: PadMode::Reflect,
            value: 0.0,
        }),
        &[s],
    );
    let r = b.one(
        Op::Reshape(Reshape {
            shape: vec![4, 4, 4],
        }),
        &[p],
    );
    let c = b.one(Op::Concat(Concat { axis: 1 }), &[r, r]);
    let parts = b.node(
        Op::Split(Split {
            axis: 2,
            sizes: vec![1, 3],
        }),
        &[c],
    );
    let e = b.one(
        Op::Expand(Expand {
            shape: vec![2, 4, 8, 3],
        }),
        &[parts[0]],
    );
    let red = b.one(
        Op::Reduce(Reduce {
            op: ReduceOp::Sum,
            axes: vec![1],
            keepdims: false,
        }),
        &[e],
    );
    let sm = b.one(Op::Softmax(Softmax { axis: 2, log: true }), &[red]);
    let rs = b.one(
        Op::Resize(Resize {
            mode: ResizeMode::Linear,
            coord: ResizeCoord::HalfPixel,
            scales: vec![1.0, 2.0, 2.0],
            out_shape: vec![2, 16, 6],
        }),
        &[sm],
    );
    let rn = b.one(
        Op::Resize(Resize {
            mode: ResizeMode::Nearest(NearestMode::RoundPreferFloor),
            coord: ResizeCoord::Asymmetric,
            scales: vec![1.0, 0.5, 1.5],
            out_shape: vec![2, 8, 9],
        }),
        &[rs],
    );
    let idx = b.constant(Tensor::from_vec(&[3], vec![0i64, 4, -1]).unwrap());
    let g = b.one(Op::Gather(Gather { axis: 1 }), &[rn, idx]);
    let zero = b.weight(&[1]);
    let cond = b.one(
        Op::Binary(Binary {
            op: BinaryOp::Greater,
        }),
        &[g, zero],
    );
    let w = b.one(Op::Where(Where {}), &[cond, g, zero]);
    let i = b.one(Op::Cast(Cast { to: DType::I32 }), &[w]);
    let neg = b.one(
        Op::Unary(Unary {
            op: UnaryOp::Clip {
                min: -3.0,
                max: 3.0,
            },
        }),
        &[i],
    );
    let mx = b.one(
        Op::Reduce(Reduce {
            op: ReduceOp::Max,
            axes: vec![0, 2],
            keepdims: true,
        }),
        &[neg],
    );
    b.write(&[mx, parts[1], rn])
}

/// Normalisations, ArgMax, TopK, CumSum, GatherElements, PRelu, the logical ops, the newer
/// unary functions and reductions.
fn norm_index_graph() -> Vec<u8> {
    let mut b = Builder::default();
    let x = b.input(DType::F32, &[2, 3, 4, 5]);
    let (s, bias) = (b.weight(&[4, 5]), b.weight(&[5]));
    let ln = b.one(
        Op::LayerNorm(LayerNorm {
            axis: 2,
            epsilon: 1e-5,
        }),
        &[x, s, bias],
    );
    let (cs, cb) = (b.weight(&[3]), b.weight(&[3]));
    let inorm = b.one(
        Op::InstanceNorm(InstanceNorm { epsilon: 1e-5 }),
        &[ln, cs, cb],
    );
    let lp = b.one(Op::LpNorm(LpNorm { axis: 1, p: 2 }), &[inorm]);
    let slope = b.weight(&[3, 1, 1]);
    let pr = b.one(
        Op::Binary(Binary {
            op: BinaryOp::PRelu,
        }),
        &[lp, slope],
    );
    let sel = b.one(
        Op::Unary(Unary {
            op: UnaryOp::Selu {
                alpha: 1.5,
                gamma: 1.1,
            },
        }),
        &[pr],
    );
    let arg = b.one(
        Op::ArgReduce(ArgReduce {
            max: true,
            axis: 1,
            keepdims: true,
            last: true,
        }),
        &[sel],
    );
    let topk = b.node(
        Op::TopK(TopK {
            axis: 3,
            k: 2,
            largest: false,
        }),
        &[sel],
    );
    let ge = b.one(
        Op::GatherElements(GatherElements { axis: 3 }),
        &[sel, topk[1]],
    );
    let cum = b.one(
        Op::CumSum(CumSum {
            axis: 2,
            exclusive: true,
            reverse: true,
        }),
        &[ge],
    );
    let lse = b.one(
        Op::Reduce(Reduce {
            op: ReduceOp::LogSumExp,
            axes: vec![1, 3],
            keepdims: false,
        }),
        &[cum],
    );
    let zero = b.constant(Tensor::scalar(0.0f32));
    let pos = b.one(
        Op::Binary(Binary {
            op: BinaryOp::Greater,
        }),
        &[lse, zero],
    );
    let xor = b.one(Op::Binary(Binary { op: BinaryOp::Xor }), &[pos, pos]);
    b.write(&[arg, xor, topk[1]])
}

/// GRU (bidirectional, with bias and initial state), LSTM (batch-first, peepholes), MatMul,
/// Gemm, ConvTranspose, BatchNorm, pooling.
fn float_graph() -> Vec<u8> {
    let mut b = Builder::default();
    let x = b.input(DType::F32, &[3, 2, 4]);
    let (w, r, bias) = (
        b.weight(&[2, 6, 4]),
        b.weight(&[2, 6, 2]),
        b.weight(&[2, 12]),
    );
    let h0 = b.input(DType::F32, &[2, 2, 2]);
    let gru = b.node(
        Op::Gru(Gru {
            hidden: 2,
            direction: Direction::Bidirectional,
            batch_first: false,
            has_bias: true,
            has_h0: true,
            linear_before_reset: true,
            clip: None,
        }),
        &[x, w, r, bias, h0],
    );
    let (lw, lr, lb, lp) = (
        b.weight(&[1, 12, 4]),
        b.weight(&[1, 12, 3]),
        b.weight(&[1, 24]),
        b.weight(&[1, 9]),
    );
    let lstm = b.node(
        Op::Lstm(Lstm {
            hidden: 3,
            direction: Direction::Reverse,
            batch_first: true,
            has_bias: true,
            has_h0: false,
            has_c0: false,
            has_peepholes: true,
            clip: Some(2.0),
            input_forget: false,
        }),
        &[x, lw, lr, lb, lp],
    );
    let m = b.weight(&[3, 5]);
    let mm = b.one(Op::MatMul(MatMul {}), &[lstm[2], m]);
    let a = b.one(Op::Reshape(Reshape { shape: vec![3, 5] }), &[mm]);
    let (gb, gc) = (b.weight(&[3, 4]), b.weight(&[4]));
    let gemm = b.one(
        Op::Gemm(Gemm {
            alpha: 0.5,
            beta: 1.0,
            trans_a: true,
            trans_b: false,
            act: Some(UnaryOp::LeakyRelu { alpha: 0.1 }),
        }),
        &[a, gb, gc],
    );
    let img = b.one(
        Op::Reshape(Reshape {
            shape: vec![1, 1, 4, 5],
        }),
        &[gemm],
    );
    let (tw, tb) = (b.weight(&[1, 2, 3, 3]), b.weight(&[2]));
    let ct = b.one(
        Op::ConvTranspose(ConvTranspose {
            kernel: vec![3, 3],
            strides: vec![2, 2],
            pads: vec![1, 0, 1, 0],
            dilations: vec![1, 1],
            output_padding: vec![1, 0],
            group: 1,
            has_bias: true,
        }),
        &[img, tw, tb],
    );
    let bn: Vec<usize> = (0..4).map(|_| b.weight(&[2])).collect();
    let scale = b.one(Op::Unary(Unary { op: UnaryOp::Abs }), &[bn[3]]);
    let norm = b.one(
        Op::BatchNorm(BatchNorm { epsilon: 1e-5 }),
        &[ct, bn[0], bn[1], bn[2], scale],
    );
    let pool = b.one(
        Op::Pool(Pool {
            kind: PoolKind::Avg,
            kernel: vec![3, 2],
            strides: vec![2, 1],
            pads: vec![1, 1, 1, 0],
            dilations: vec![1, 2],
            ceil_mode: true,
            count_include_pad: true,
        }),
        &[norm],
    );
    let gp = b.one(
        Op::GlobalPool(GlobalPool {
            kind: PoolKind::Max,
        }),
        &[pool],
    );
    b.write(&[gru[0], gru[1], lstm[0], gp])
}

/// Int8 ops: QuantizeLinear, QConv, QPool, QAdd, QGemm, DequantizeLinear, QLstm, QGru, QGather,
/// DynamicQuantizeLinear, DynamicQuantizeMatMul, DynamicQuantizeConv.
fn int8_graph() -> Vec<u8> {
    let q = |scale, zero_point| QScale { scale, zero_point };
    let mut b = Builder::default();
    let x = b.input(DType::F32, &[1, 4, 6, 6]);
    let s = b.constant(Tensor::from_vec(&[1], vec![0.02f32]).unwrap());
    let z = b.constant(Tensor::from_vec(&[1], vec![128u8]).unwrap());
    let xq = b.one(
        Op::QuantizeLinear(QuantizeLinear {
            axis: None,
            to: DType::U8,
        }),
        &[x, s, z],
    );
    let wq = b.constant(
        Tensor::from_vec(&[4, 2, 3, 3], (0..72).map(|i| (i % 7) as i8 - 3).collect()).unwrap(),
    );
    let qb = b.weight(&[4]);
    let qc = b.one(
        Op::QConv(QConv {
            conv: Conv {
                kernel: vec![3, 3],
                strides: vec![1, 1],
                pads: vec![1, 1, 1, 1],
                dilations: vec![1, 1],
                group: 2,
                has_bias: true,
                act: Some(UnaryOp::Relu),
                residual: false,
            },
            x: q(0.02, 128),
            w_scale: vec![0.1, 0.2, 0.3, 0.4],
            w_zero_point: vec![0; 4],
            out: QOut {
                dtype: DType::U8,
                q: Some(q(0.05, 0)),
            },
        }),
        &[xq, wq, qb],
    );
    let qp = b.one(
        Op::QPool(QPool {
            pool: Pool {
                kind: PoolKind::Max,
                kernel: vec![2, 2],
                strides: vec![2, 2],
                pads: vec![0; 4],
                dilations: vec![1, 1],
                ceil_mode: false,
                count_include_pad: false,
            },
            x: q(0.05, 0),
            out: q(0.05, 0),
        }),
        &[qc],
    );
    let qa = b.one(
        Op::QAdd(QAdd {
            a: q(0.05, 0),
            b: q(0.05, 0),
            act: None,
            out: QOut {
                dtype: DType::U8,
                q: Some(q(0.1, 3)),
            },
        }),
        &[qp, qp],
    );
    let flat = b.one(Op::Reshape(Reshape { shape: vec![4, 9] }), &[qa]);
    let gw =
        b.constant(Tensor::from_vec(&[5, 9], (0..45).map(|i| (i % 5) as u8).collect()).unwrap());
    let qg = b.one(
        Op::QGemm(QGemm {
            x: q(0.1, 3),
            w_scale: vec![0.5],
            w_zero_point: vec![2],
            has_bias: false,
            act: None,
            out: QOut {
                dtype: DType::I8,
                q: Some(q(0.25, -1)),
            },
        }),
        &[flat, gw],
    );
    let dq_s = b.constant(Tensor::from_vec(&[5], vec![0.25f32, 0.5, 1.0, 2.0, 4.0]).unwrap());
    let dq = b.one(
        Op::DequantizeLinear(DequantizeLinear { axis: Some(1) }),
        &[qg, dq_s],
    );
    // [4, 5] as X [T=4, B=1, I=5] of the recurrent ops.
    let seq = b.one(
        Op::Reshape(Reshape {
            shape: vec![4, 1, 5],
        }),
        &[dq],
    );
    let i8s = |b: &mut Builder, shape: &[usize]| {
        let n: usize = shape.iter().product();
        b.constant(Tensor::from_vec(shape, (0..n).map(|i| (i * 31 % 255) as i8).collect()).unwrap())
    };
    let (lw, lr) = (i8s(&mut b, &[1, 8, 5]), i8s(&mut b, &[1, 8, 2]));
    let ql = b.node(
        Op::QLstm(QLstm {
            lstm: Lstm {
                hidden: 2,
                direction: Direction::Forward,
                batch_first: false,
                has_bias: false,
                has_h0: false,
                has_c0: false,
                has_peepholes: false,
                clip: None,
                input_forget: false,
            },
            w_scale: vec![0.01; 8],
            r_scale: vec![0.02; 8],
        }),
        &[seq, lw, lr],
    );
    let (gw, gr) = (i8s(&mut b, &[2, 6, 5]), i8s(&mut b, &[2, 6, 2]));
    let qgru = b.node(
        Op::QGru(QGru {
            gru: Gru {
                hidden: 2,
                direction: Direction::Bidirectional,
                batch_first: false,
                has_bias: false,
                has_h0: false,
                linear_before_reset: false,
                clip: None,
            },
            w_scale: vec![0.01; 12],
            r_scale: vec![0.03; 12],
        }),
        &[seq, gw, gr],
    );
    let table = i8s(&mut b, &[6, 3]);
    let tok = b.input(DType::I64, &[2, 3]);
    let emb = b.one(
        Op::QGather(QGather {
            scale: vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
        }),
        &[table, tok],
    );
    let dyn_q = b.node(Op::DynamicQuantizeLinear(DynamicQuantizeLinear {}), &[dq]);
    // [4, 5] · u8 W [5, 3] with per-column zero points, and a bias.
    let mw = b.constant(
        Tensor::from_vec(&[5, 3], (0..15).map(|i| (i * 37 % 256) as u8).collect()).unwrap(),
    );
    let mb = b.weight(&[3]);
    let dmm = b.one(
        Op::DynamicQuantizeMatMul(DynamicQuantizeMatMul {
            w_scale: vec![0.01, 0.02, 0.03],
            w_zero_point: vec![100, 128, 7],
            has_bias: true,
        }),
        &[dq, mw, mb],
    );
    // DynamicQuantizeConv: a depthwise 3×3 (i8 weights, Clip) over the f32 input, then a 1×1
    // (u8 weights with per-channel zero points, a bias).
    let conv = |group, kernel: usize, pads: usize, has_bias, act| Conv {
        kernel: vec![kernel; 2],
        strides: vec![1, 1],
        pads: vec![pads; 4],
        dilations: vec![1, 1],
        group,
        has_bias,
        act,
        residual: false,
    };
    let dw = b.constant(
        Tensor::from_vec(&[4, 1, 3, 3], (0..36).map(|i| (i % 9) as i8 - 4).collect()).unwrap(),
    );
    let dqc = b.one(
        Op::DynamicQuantizeConv(DynamicQuantizeConv {
            conv: conv(4, 3, 1, false, Some(UnaryOp::Clip { min: 0.0, max: 6.0 })),
            w_scale: vec![0.05],
            w_zero_point: vec![0],
        }),
        &[x, dw],
    );
    let pw = b.constant(
        Tensor::from_vec(
            &[3, 4, 1, 1],
            (0..12).map(|i| (i * 53 % 256) as u8).collect(),
        )
        .unwrap(),
    );
    let pb = b.weight(&[3]);
    let dqc = b.one(
        Op::DynamicQuantizeConv(DynamicQuantizeConv {
            conv: conv(1, 1, 0, true, None),
            w_scale: vec![0.01, 0.02, 0.03],
            w_zero_point: vec![100, 128, 7],
        }),
        &[dqc, pw, pb],
    );
    b.write(&[ql[0], qgru[1], emb, dyn_q[0], dyn_q[1], dyn_q[2], dmm, dqc])
}

#[test]
fn hostile_values_in_hand_written_graphs_are_refused_not_panicked_on() {
    let mut panics = Vec::new();
    for (what, bytes) in [
        ("movement", movement_graph()),
        ("float", float_graph()),
        ("int8", int8_graph()),
        ("norm_index", norm_index_graph()),
    ] {
        let start = std::time::Instant::now();
        let parsed = format::parse(&bytes).unwrap();
        let weights = &bytes[parsed.weights.clone()];
        assert_eq!(try_file(&bytes), Ok(Outcome::Ran), "{what}: does not run");
        let t = mutate_and_run(what, &parsed.meta, weights, 5000);
        report(what, &t, start);
        panics.extend(t.panics);
    }
    assert!(
        panics.is_empty(),
        "{} mutants panicked:\n{}",
        panics.len(),
        panics.join("\n")
    );
}

/// `bytes` with `edits` (path, new value) applied to its graph and the shapes re-inferred.
fn edited(bytes: &[u8], edits: &[(&str, Value)]) -> Vec<u8> {
    let parsed = format::parse(bytes).unwrap();
    let mut root = serde_json::to_value(&parsed.meta).unwrap();
    for (path, v) in edits {
        *root
            .pointer_mut(path)
            .unwrap_or_else(|| panic!("no {path}")) = v.clone();
    }
    let mut meta: Meta = serde_json::from_value(root).unwrap();
    reinfer(&mut meta.graph);
    plain_efm(
        &serde_json::to_vec(&meta).unwrap(),
        &bytes[parsed.weights.clone()],
    )
}

/// A Conv over x [1, 1, 8] with kernel 3.
fn conv1d_graph() -> Vec<u8> {
    let mut b = Builder::default();
    let x = b.input(DType::F32, &[1, 1, 8]);
    let w = b.weight(&[2, 1, 3]);
    let y = b.one(
        Op::Conv(Conv {
            kernel: vec![3],
            strides: vec![1],
            pads: vec![1, 1],
            dilations: vec![1],
            group: 1,
            has_bias: false,
            act: None,
            residual: false,
        }),
        &[x, w],
    );
    b.write(&[y])
}

/// The mutants that panicked before their fixes: each is now refused by the loader.
#[test]
fn mutants_that_once_panicked_are_refused() {
    let big = |v: u64| Value::from(v);
    type Case = (&'static str, Vec<u8>, Vec<(&'static str, Value)>);
    let cases: Vec<Case> = vec![
        // Slice: start + (len − 1)·step overflowed i64 in shape inference.
        (
            "Slice step i64::MAX",
            movement_graph(),
            vec![("/graph/nodes/1/op/steps/0", Value::from(i64::MAX))],
        ),
        (
            "Slice start i64::MAX",
            movement_graph(),
            vec![("/graph/nodes/1/op/starts/1", big(i64::MAX as u64))],
        ),
        // A start of u64::MAX read as −1 in i64 passed the checks and overflowed the kernel's
        // offset.
        (
            "Slice start u64::MAX",
            movement_graph(),
            vec![("/graph/nodes/1/op/starts/1", big(u64::MAX))],
        ),
        // Conv strides past the input (one output) overflowed the im2col gather's bounds.
        (
            "Conv stride i64::MAX",
            conv1d_graph(),
            vec![("/graph/nodes/0/op/strides/0", big(i64::MAX as u64))],
        ),
        (
            "Conv stride u64::MAX",
            conv1d_graph(),
            vec![("/graph/nodes/0/op/strides/0", big(u64::MAX))],
        ),
        // ConvTranspose stride 0 divided by zero in the kernel.
        (
            "ConvTranspose stride 0",
            float_graph(),
            vec![("/graph/nodes/6/op/strides/1", Value::from(0))],
        ),
    ];
    for (what, bytes, edits) in cases {
        let e = match Model::from_bytes(&edited(&bytes, &edits)) {
            Ok(_) => panic!("{what}: loaded"),
            Err(e) => e.to_string(),
        };
        eprintln!("{what}: {e}");
    }
}

/// An axis a Slice reads once never takes its step, so any step is valid there; i64::MIN and
/// i64::MAX overflowed the kernel's source stride.
#[test]
fn a_slice_axis_read_once_takes_any_step() {
    for step in [i64::MAX, i64::MIN, 1 << 40] {
        let mut b = Builder::default();
        let x = b.input(DType::F32, &[2, 3]);
        let y = b.one(
            Op::Slice(Slice {
                starts: vec![1, 2],
                steps: vec![step, -1],
                lens: vec![1, 3],
            }),
            &[x],
        );
        let m = Model::from_bytes(&b.write(&[y])).unwrap();
        let mut s = Session::new(m, SessionOptions::with_threads(1)).unwrap();
        let x = Tensor::from_vec(&[2, 3], vec![0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        let y = s.run_tensors(&[x]).unwrap();
        assert_eq!(
            y[0].as_slice::<f32>().unwrap(),
            &[5.0, 4.0, 3.0],
            "step {step}"
        );
    }
}

/// Quantization parameters of a tensor are read by preprocessing (an integer model input); the
/// loader refuses the ones no tensor can have, naming what is wrong. Before the check a scale of
/// 0 loaded and made every preprocessed pixel saturate.
#[test]
fn impossible_quantization_parameters_are_refused() {
    let mut b = Builder::default();
    let x = b.input(DType::U8, &[1, 3, 2, 2]);
    let y = b.one(Op::Cast(Cast { to: DType::F32 }), &[x]);
    let bytes = b.write(&[y]);
    let parsed = format::parse(&bytes).unwrap();
    let with = |quant: Option<QuantParams>, dtype: DType| {
        let mut meta = parsed.meta.clone();
        meta.graph.tensors[x].quant = quant;
        meta.graph.tensors[x].dtype = dtype;
        plain_efm(
            &serde_json::to_vec(&meta).unwrap(),
            &bytes[parsed.weights.clone()],
        )
    };
    let q = |scale: Vec<f32>, zero_point: Vec<i32>, axis: Option<usize>| {
        Some(QuantParams {
            scale,
            zero_point,
            axis,
        })
    };
    for (quant, dtype) in [
        (q(vec![0.02], vec![128], None), DType::U8),
        (q(vec![0.5], vec![-128], None), DType::I8),
        (q(vec![0.1, 0.2, 0.3], vec![0, 1, 2], Some(1)), DType::U8),
    ] {
        Model::from_bytes(&with(quant.clone(), dtype))
            .unwrap_or_else(|e| panic!("{quant:?} {dtype}: refused: {e}"));
    }
    let cases = [
        ("scale 0", q(vec![0.0], vec![0], None), DType::U8, "scale 0"),
        (
            "negative scale",
            q(vec![-1.0], vec![0], None),
            DType::U8,
            "scale -1",
        ),
        (
            "zero point 256",
            q(vec![1.0], vec![256], None),
            DType::U8,
            "zero point 256",
        ),
        (
            "zero point -129",
            q(vec![1.0], vec![-129], None),
            DType::I8,
            "zero point -129",
        ),
        ("no scale", q(vec![], vec![], None), DType::U8, "0 scales"),
        (
            "a zero point short",
            q(vec![1.0, 1.0, 1.0], vec![0], Some(1)),
            DType::U8,
            "1 zero points",
        ),
        (
            "axis past the rank",
            q(vec![1.0], vec![0], Some(4)),
            DType::U8,
            "axis 4",
        ),
        (
            "an f32 tensor",
            q(vec![1.0], vec![0], None),
            DType::F32,
            "f32 tensor",
        ),
    ];
    for (what, quant, dtype, says) in cases {
        let e = match Model::from_bytes(&with(quant, dtype)) {
            Ok(_) => panic!("{what}: loaded"),
            Err(e) => e.to_string(),
        };
        assert!(
            e.contains(says) && e.contains("\"t0\""),
            "{what}: unclear error: {e}"
        );
    }
}

/// Zero-sized tensors whose other dimensions are huge (each dimension's product with the 0 read
/// as 1 past the size cap), and quantization zero points with another element count than the
/// scale: every kernel that takes the outer/inner sizes around an axis gets one. Each file must
/// be refused or run, never panic or abort.
#[test]
fn zero_sized_huge_dims_and_mismatched_zero_points_are_refused() {
    const BIG: usize = 1 << 40;
    let huge = [0, BIG, BIG];
    let mut files: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut one = |what, dtype, shape: &[usize], op: Op, extra: &[Tensor]| {
        let mut b = Builder::default();
        let mut ins = vec![b.input(dtype, shape)];
        ins.extend(extra.iter().map(|t| b.constant(t.clone())));
        let y = b.node_as(op, &ins, &[(DType::F32, shape)]);
        files.push((what, b.write(&y)));
    };
    let empty = |shape: &[usize]| Tensor::from_vec::<f32>(shape, vec![]).unwrap();
    let cumsum = CumSum {
        axis: 0,
        exclusive: false,
        reverse: false,
    };
    one("CumSum", DType::F32, &huge, Op::CumSum(cumsum), &[]);
    let softmax = Softmax {
        axis: 0,
        log: false,
    };
    one("Softmax", DType::F32, &huge, Op::Softmax(softmax), &[]);
    let lp = LpNorm { axis: 0, p: 2 };
    one("LpNormalization", DType::F32, &huge, Op::LpNorm(lp), &[]);
    let inorm = InstanceNorm { epsilon: 1e-5 };
    let c = empty(&[0]);
    let x = [1, 0, BIG, BIG];
    one(
        "InstanceNormalization",
        DType::F32,
        &x,
        Op::InstanceNorm(inorm),
        &[c.clone(), c],
    );
    let s = Tensor::from_vec(&[1], vec![1.0f32]).unwrap();
    for (what, x) in [
        ("LayerNormalization past the cap", [0, 1 << 20, 1 << 20]),
        // 2^38 bytes if the 0 were 1: loads; a broadcast scale must not cost a table per element.
        ("LayerNormalization under the cap", [0, 1 << 18, 1 << 18]),
    ] {
        let ln = LayerNorm {
            axis: 1,
            epsilon: 1e-5,
        };
        one(
            what,
            DType::F32,
            &x,
            Op::LayerNorm(ln),
            std::slice::from_ref(&s),
        );
    }
    let mut b = Builder::default();
    let x = b.input(DType::F32, &[0, 5, BIG, BIG]);
    let arg = ArgReduce {
        max: true,
        axis: 1,
        keepdims: true,
        last: false,
    };
    let y = b.node_as(Op::ArgReduce(arg), &[x], &[(DType::I64, &[0, 1, BIG, BIG])]);
    files.push(("ArgMax", b.write(&y)));
    let mut b = Builder::default();
    let x = b.input(DType::F32, &huge);
    let i = b.input(DType::I64, &[0, 1, 1]);
    let y = b.node_as(
        Op::GatherElements(GatherElements { axis: 1 }),
        &[x, i],
        &[(DType::F32, &[0, 1, 1])],
    );
    files.push(("GatherElements", b.write(&y)));
    let mut b = Builder::default();
    let x = b.input(DType::F32, &[0, 1 << 62]);
    let topk = TopK {
        axis: 1,
        k: 0,
        largest: true,
    };
    let y = b.node_as(
        Op::TopK(topk),
        &[x],
        &[(DType::F32, &[0, 0]), (DType::I64, &[0, 0])],
    );
    files.push(("TopK", b.write(&y)));
    // Zero points with no element, or two for one scale.
    for (dq_what, q_what, z) in [
        (
            "DequantizeLinear zero point []",
            "QuantizeLinear zero point []",
            vec![],
        ),
        (
            "DequantizeLinear zero point [2]",
            "QuantizeLinear zero point [2]",
            vec![0u8, 0],
        ),
    ] {
        let zero = Tensor::from_vec::<u8>(&[z.len()], z).unwrap();
        let mut b = Builder::default();
        let x = b.input(DType::U8, &[4]);
        let s = b.constant(Tensor::scalar(1.0f32));
        let z = b.constant(zero.clone());
        let dq = DequantizeLinear { axis: None };
        let y = b.node_as(Op::DequantizeLinear(dq), &[x, s, z], &[(DType::F32, &[4])]);
        files.push((dq_what, b.write(&y)));
        let mut b = Builder::default();
        let x = b.input(DType::F32, &[4]);
        let s = b.constant(Tensor::scalar(1.0f32));
        let z = b.constant(zero);
        let q = QuantizeLinear {
            axis: None,
            to: DType::U8,
        };
        let y = b.node_as(Op::QuantizeLinear(q), &[x, s, z], &[(DType::U8, &[4])]);
        files.push((q_what, b.write(&y)));
    }
    // DynamicQuantizeMatMul with a W of no bytes: K or N huge (2^33) yet under the cap, as
    // the 0 reads as 1. The kernel's build packed, and planned scratch, by K and N: the
    // process aborted on a 32 GiB allocation. These load and run.
    let big = 1usize << 33;
    let dqmm = |bias| {
        Op::DynamicQuantizeMatMul(DynamicQuantizeMatMul {
            w_scale: vec![0.1],
            w_zero_point: vec![0],
            has_bias: bias,
        })
    };
    for (what, x, w, y, dtype) in [
        (
            "DynamicQuantizeMatMul K 2^33 under the cap",
            vec![0, big],
            [big, 0],
            vec![0, 0],
            DType::U8,
        ),
        (
            "DynamicQuantizeMatMul N 2^33 under the cap",
            vec![0, 0],
            [0, big],
            vec![0, big],
            DType::U8,
        ),
        (
            "DynamicQuantizeMatMul i8 K 2^33, 3 rows under the cap",
            vec![3, 0, big],
            [big, 0],
            vec![3, 0, 0],
            DType::I8,
        ),
    ] {
        let mut b = Builder::default();
        let xi = b.input(DType::F32, &x);
        let wi = b.constant(Tensor::from_bytes(dtype, &w, &[]).unwrap());
        let out = b.node_as(dqmm(false), &[xi, wi], &[(DType::F32, &y)]);
        files.push((what, b.write(&out)));
    }
    // DynamicQuantizeConv with a filter of no bytes: M or C huge (2^33) yet under the cap.
    let dqc = |c: usize, m: usize, y: &[usize]| {
        let mut b = Builder::default();
        let xi = b.input(DType::F32, &[1, c, 4, 4]);
        let wi = b.constant(Tensor::from_bytes(DType::I8, &[m, c, 1, 1], &[]).unwrap());
        let op = Op::DynamicQuantizeConv(DynamicQuantizeConv {
            conv: Conv {
                kernel: vec![1, 1],
                strides: vec![1, 1],
                pads: vec![0; 4],
                dilations: vec![1, 1],
                group: 1,
                has_bias: false,
                act: None,
                residual: false,
            },
            w_scale: vec![0.1],
            w_zero_point: vec![0],
        });
        let out = b.node_as(op, &[xi, wi], &[(DType::F32, y)]);
        b.write(&out)
    };
    files.push((
        "DynamicQuantizeConv M 2^33, no input channels under the cap",
        dqc(0, big, &[1, big, 4, 4]),
    ));
    files.push((
        "DynamicQuantizeConv C 2^33, no output channels under the cap",
        dqc(big, 0, &[1, 0, 4, 4]),
    ));
    // K = 0 with a bias: each row is the bias.
    let mut b = Builder::default();
    let xi = b.input(DType::F32, &[2, 0]);
    let wi = b.constant(Tensor::from_bytes(DType::U8, &[0, 3], &[]).unwrap());
    let bi = b.weight(&[3]);
    let out = b.node_as(dqmm(true), &[xi, wi, bi], &[(DType::F32, &[2, 3])]);
    files.push((
        "DynamicQuantizeMatMul K 0 with a bias under the cap",
        b.write(&out),
    ));
    let mut bad = Vec::new();
    for (what, f) in &files {
        match try_file(f) {
            Ok(Outcome::Refused) => {}
            Ok(_) if what.ends_with("under the cap") => {}
            Ok(o) => bad.push(format!("{what}: {o:?}, not refused at load")),
            Err(p) => bad.push(format!("{what}: {p}")),
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
