//! Image classification on a frame stream: preprocess (the `.efm`'s spec) → run → top-K.
//! `edgefuse classify` and `examples/camera_classify.rs` are thin loops around [`Classifier`].

use std::sync::Arc;
use std::time::Instant;

use crate::capture::Frame;
use crate::cpu::{Session, SessionOptions};
use crate::engine::Engine;
use crate::preprocess::{CpuPreprocessor, PreprocessSpec, Target};
use crate::{DType, Error, Model, Result, Tensor};

/// One ranked class.
#[derive(Debug, Clone, PartialEq)]
pub struct Top {
    pub index: usize,
    pub label: String,
    /// Probability: the output itself when it already is one (non-negative, sums to 1),
    /// otherwise its softmax.
    pub score: f32,
}

/// Time spent per stage on one frame, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    pub capture: f64,
    pub preprocess: f64,
    pub infer: f64,
}

/// Whether `labels` name the classes of `graph`'s first output, when that output is a vector of
/// class scores (`[classes]` or `[1, classes]`): one label per class, or an error saying how
/// the counts differ. A list one longer or shorter (ImageNet's with or without "background")
/// would name every class by its neighbour's label. Other outputs take any labels.
pub fn check_labels(graph: &crate::ir::Graph, labels: &[String]) -> Result<()> {
    let Some(out) = graph.outputs.first().map(|&o| &graph.tensors[o]) else {
        return Ok(());
    };
    let classes = out.shape.last().copied().unwrap_or(0);
    if labels.is_empty()
        || labels.len() == classes
        || out.shape.len() > 2
        || out.shape.iter().product::<usize>() != classes
    {
        return Ok(());
    }
    let hint = if labels.len().abs_diff(classes) == 1 {
        " (one has a \"background\" class the other lacks?)"
    } else {
        ""
    };
    Err(Error::invalid(format!(
        "{} labels for output \"{}\" {:?}, which scores {classes} classes{hint}",
        labels.len(),
        out.name,
        out.shape
    )))
}

/// A model with its preprocessing and labels, ready for frames.
pub struct Classifier {
    session: Engine,
    pre: CpuPreprocessor,
    input: Tensor,
    labels: Vec<String>,
    probs: Vec<f32>,
    order: Vec<usize>,
}

impl Classifier {
    /// `spec` overrides the model's recorded preprocessing; `labels` its recorded labels.
    pub fn new(
        model: Arc<Model>,
        spec: Option<PreprocessSpec>,
        labels: Option<Vec<String>>,
        opts: SessionOptions,
    ) -> Result<Classifier> {
        let session = Session::new(model, opts)?;
        Classifier::with_engine(Engine::Cpu(session), spec, labels)
    }

    /// As [`Classifier::new`], on an engine already opened on any backend (`engine::Engine::open`).
    pub fn with_engine(
        session: Engine,
        spec: Option<PreprocessSpec>,
        labels: Option<Vec<String>>,
    ) -> Result<Classifier> {
        let model = session.model().clone();
        let g = model.graph();
        if g.inputs.len() != 1 || g.outputs.is_empty() {
            return Err(Error::invalid(format!(
                "classify needs a model with one input (this one has {})",
                g.inputs.len()
            )));
        }
        let info = g.tensors[g.inputs[0]].clone();
        let spec = match spec.or_else(|| model.meta().preprocess.clone()) {
            Some(s) => s,
            None => {
                return Err(Error::invalid(
                    "the model records no preprocessing: compile it with --preprocess (e.g. --preprocess imagenet) or pass --preprocess to classify",
                ))
            }
        };
        let target = Target::for_input(&spec, &info)?;
        let out = &g.tensors[g.outputs[0]];
        let classes = out.shape.last().copied().unwrap_or(0);
        if out.shape.iter().product::<usize>() != classes || out.dtype != DType::F32 {
            return Err(Error::invalid(format!(
                "classify needs an f32 output of shape [1, classes]; \"{}\" is {} {:?}",
                out.name, out.dtype, out.shape
            )));
        }
        let mut labels = labels
            .or_else(|| model.meta().labels.clone())
            .unwrap_or_default();
        // Files compiled before `compile` dropped them kept a labels file's trailing blank
        // lines as labels.
        while labels.last().is_some_and(String::is_empty) {
            labels.pop();
        }
        check_labels(g, &labels)?;
        let pre = CpuPreprocessor::new(spec, target)?;
        let input = Tensor::zeros(info.dtype, &info.shape);
        Ok(Classifier {
            session,
            pre,
            input,
            labels,
            probs: vec![0.0; classes],
            order: (0..classes).collect(),
        })
    }

    pub fn preprocessor(&mut self) -> &mut CpuPreprocessor {
        &mut self.pre
    }
    pub fn labels(&self) -> &[String] {
        &self.labels
    }
    /// The model input of the last preprocessed frame.
    pub fn input(&self) -> &Tensor {
        &self.input
    }

    /// Preprocesses `frame` into the model input; returns the time taken in ms.
    pub fn preprocess(&mut self, frame: &Frame) -> Result<f64> {
        let t = Instant::now();
        self.pre.run(frame, self.input.bytes_mut())?;
        Ok(t.elapsed().as_secs_f64() * 1e3)
    }

    /// Runs the model on the last preprocessed input; returns the time taken in ms.
    pub fn infer(&mut self) -> Result<f64> {
        let t = Instant::now();
        self.session.set_input(0, self.input.view())?;
        self.session.run()?;
        let out = self.session.output(0).typed::<f32>();
        scores(out, &mut self.probs);
        Ok(t.elapsed().as_secs_f64() * 1e3)
    }

    /// The `k` best classes of the last inference.
    pub fn top(&mut self, k: usize) -> Vec<Top> {
        let p = &self.probs;
        let k = k.min(p.len());
        if k == 0 {
            return Vec::new();
        }
        self.order
            .select_nth_unstable_by(k - 1, |&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
        let best = &mut self.order[..k];
        best.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
        best.iter()
            .map(|&i| Top {
                index: i,
                label: self
                    .labels
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("class {i}")),
                score: p[i],
            })
            .collect()
    }

    /// Preprocess, infer and rank one frame.
    pub fn classify(&mut self, frame: &Frame, k: usize) -> Result<(Vec<Top>, Timings)> {
        let preprocess = self.preprocess(frame)?;
        let infer = self.infer()?;
        Ok((
            self.top(k),
            Timings {
                capture: 0.0,
                preprocess,
                infer,
            },
        ))
    }
}

/// Probabilities from a model output: the output itself when it is already a distribution,
/// else its softmax.
pub fn scores(out: &[f32], probs: &mut [f32]) {
    let sum: f32 = out.iter().sum();
    if out.iter().all(|&v| (0.0..=1.0).contains(&v)) && (sum - 1.0).abs() < 1e-3 {
        probs.copy_from_slice(out);
        return;
    }
    let max = out.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut total = 0.0;
    for (p, &v) in probs.iter_mut().zip(out) {
        *p = (v - max).exp();
        total += *p;
    }
    for p in probs.iter_mut() {
        *p /= total;
    }
}
