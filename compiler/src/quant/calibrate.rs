//! Activation ranges from calibration data: min/max, percentile, or entropy (KL divergence, as
//! TensorRT and ncnn calibrate), each from what the fp32 model computes on the samples.
//!
//! Min/max needs one pass. Percentile and entropy need a histogram (2048 bins) over a range
//! fixed beforehand: a first pass over a few samples fixes it, the second pass over all samples
//! fills the histograms (values outside land in the edge bins) and tracks the exact min/max.

use anyhow::Result;
use serde::Serialize;

use super::data::Sample;
use super::runner::Runner;

pub const BINS: usize = 2048;
/// Samples the first (range-finding) pass of histogram methods looks at.
const RANGE_SAMPLES: usize = 8;

/// How activation ranges are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Method {
    MinMax,
    /// Clip to this percentile of |values| (e.g. 99.99) on each side.
    Percentile(f64),
    /// The threshold minimising KL(fp32 histogram ‖ quantized histogram).
    Entropy,
    /// The range minimising the expected squared error of quantizing the observed values:
    /// clipping error beyond it plus rounding noise (step²/12) within it.
    Mse,
}

impl Method {
    pub fn name(&self) -> String {
        match self {
            Method::MinMax => "minmax".into(),
            Method::Percentile(p) => format!("percentile {p}"),
            Method::Entropy => "entropy".into(),
            Method::Mse => "mse".into(),
        }
    }
    fn needs_histogram(&self) -> bool {
        !matches!(self, Method::MinMax)
    }
}

/// How a probed tensor splits into channels for per-channel means: `[outer, channels, inner]`.
#[derive(Debug, Clone, Copy)]
pub struct Channels {
    pub channels: usize,
    pub inner: usize,
}

/// What was seen of one tensor.
#[derive(Debug, Clone)]
pub struct Stats {
    pub min: f32,
    pub max: f32,
    /// Per-channel sums and the number of values per channel (when asked for channels).
    sums: Vec<f64>,
    per_channel: u64,
    /// Histogram range and counts (empty for min/max calibration).
    lo: f32,
    hi: f32,
    hist: Vec<u64>,
}

impl Stats {
    fn new() -> Stats {
        Stats {
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            sums: Vec::new(),
            per_channel: 0,
            lo: 0.0,
            hi: 0.0,
            hist: Vec::new(),
        }
    }

    fn observe_range(&mut self, xs: &[f32]) {
        for &x in xs {
            if x.is_finite() {
                self.min = self.min.min(x);
                self.max = self.max.max(x);
            }
        }
    }

    fn observe_channels(&mut self, xs: &[f32], ch: Channels) {
        if self.sums.is_empty() {
            self.sums = vec![0.0; ch.channels];
        }
        let block = ch.channels * ch.inner;
        if block == 0 || !xs.len().is_multiple_of(block) {
            return;
        }
        for outer in xs.chunks_exact(block) {
            for (c, plane) in outer.chunks_exact(ch.inner).enumerate() {
                self.sums[c] += plane.iter().map(|&x| x as f64).sum::<f64>();
            }
        }
        self.per_channel += (xs.len() / ch.channels) as u64;
    }

    /// Per-channel means, when channels were asked for.
    pub fn channel_means(&self) -> Option<Vec<f64>> {
        (self.per_channel > 0).then(|| {
            self.sums
                .iter()
                .map(|s| s / self.per_channel as f64)
                .collect()
        })
    }

    fn start_histogram(&mut self) {
        self.lo = self.min.min(0.0);
        self.hi = self.max.max(0.0);
        // Not greater covers NaN bounds too.
        if self.hi.partial_cmp(&self.lo) != Some(std::cmp::Ordering::Greater) {
            self.hi = self.lo + 1e-6;
        }
        self.hist = vec![0; BINS];
    }

    fn observe_histogram(&mut self, xs: &[f32]) {
        let scale = BINS as f32 / (self.hi - self.lo);
        let last = (BINS - 1) as f32;
        let lo = self.lo;
        let hist = &mut self.hist;
        for &x in xs {
            if x.is_finite() {
                let b = ((x - lo) * scale).clamp(0.0, last) as usize;
                hist[b] += 1;
                self.min = self.min.min(x);
                self.max = self.max.max(x);
            }
        }
    }

    /// The calibrated range [lo, hi] (always containing 0) by `method`.
    pub fn range(&self, method: Method) -> (f32, f32) {
        let (min, max) = (self.min.min(0.0), self.max.max(0.0));
        if !min.is_finite() || !max.is_finite() {
            return (0.0, 0.0);
        }
        match method {
            Method::MinMax => (min, max),
            _ if self.hist.is_empty() => (min, max),
            Method::Percentile(p) => {
                let q = (p / 100.0).clamp(0.5, 1.0);
                let hi = self.quantile(q).min(max);
                let lo = if self.lo < 0.0 {
                    self.quantile(1.0 - q).max(min)
                } else {
                    0.0
                };
                (lo.min(0.0), hi.max(0.0))
            }
            Method::Mse => self.mse_range(min, max),
            Method::Entropy => {
                if self.lo >= 0.0 {
                    // Exact zeros (ReLU's) quantize exactly; they must not pull the threshold.
                    let mut h = self.hist.clone();
                    h[0] = 0;
                    let t = kl_threshold(&h, 256) * (self.hi - self.lo) / BINS as f32;
                    (0.0, t.min(max))
                } else {
                    let (abs, width) = self.abs_histogram();
                    let t = kl_threshold(&abs, 128) * width;
                    ((-t).max(min), t.min(max))
                }
            }
        }
    }

    /// The range `[lo·s, hi·s]` (s in (0, 1], the observed range scaled) with the least
    /// expected squared quantization error over the histogram: values outside are clipped to
    /// the edge, values inside round to a 256-level grid (noise step²/12).
    fn mse_range(&self, min: f32, max: f32) -> (f32, f32) {
        let w = ((self.hi - self.lo) / BINS as f32) as f64;
        let centres: Vec<(f64, f64)> = self
            .hist
            .iter()
            .enumerate()
            // Exact zeros (ReLU's) quantize exactly, wherever the range ends.
            .filter(|(b, &c)| c > 0 && !(*b == 0 && self.lo >= 0.0))
            .map(|(b, &c)| (self.lo as f64 + (b as f64 + 0.5) * w, c as f64))
            .collect();
        let (mut best, mut best_err) = (1.0f64, f64::INFINITY);
        for step in 0..=120 {
            let s = 1.0 - step as f64 * 0.0075; // down to 0.1 of the observed range
            let (lo, hi) = (min as f64 * s, max as f64 * s);
            let q = (hi - lo) / 255.0;
            let mut err = 0.0;
            for &(x, c) in &centres {
                err += c * if x > hi {
                    (x - hi) * (x - hi)
                } else if x < lo {
                    (lo - x) * (lo - x)
                } else {
                    q * q / 12.0
                };
            }
            if err < best_err {
                (best, best_err) = (s, err);
            }
        }
        (min * best as f32, max * best as f32)
    }

    /// The value below which a fraction `q` of the observed values lie (bin upper edge).
    fn quantile(&self, q: f64) -> f32 {
        let total: u64 = self.hist.iter().sum();
        let target = (q * total as f64).ceil() as u64;
        let w = (self.hi - self.lo) / BINS as f32;
        let mut acc = 0;
        for (b, &c) in self.hist.iter().enumerate() {
            acc += c;
            if acc >= target {
                return self.lo + (b + 1) as f32 * w;
            }
        }
        self.hi
    }

    /// The histogram of |x| over [0, max|x|] in [`BINS`] bins (each signed bin's count goes to the
    /// bin of its centre's magnitude), and its bin width.
    fn abs_histogram(&self) -> (Vec<u64>, f32) {
        let w = (self.hi - self.lo) / BINS as f32;
        let amax = self.hi.max(-self.lo);
        let aw = amax / BINS as f32;
        let mut abs = vec![0u64; BINS];
        for (b, &c) in self.hist.iter().enumerate() {
            let centre = (self.lo + (b as f32 + 0.5) * w).abs();
            abs[((centre / aw) as usize).min(BINS - 1)] += c;
        }
        (abs, aw)
    }
}

/// TensorRT/ncnn entropy calibration: for each candidate threshold bin `i` (from `levels` to the
/// end), P is the histogram clipped at `i` with the outliers added to its last bin, Q is P
/// merged into `levels` bins and expanded back over P's non-empty bins; the `i` with the least
/// KL(P‖Q) wins. Returns the threshold in bins (`i + 0.5`).
pub fn kl_threshold(hist: &[u64], levels: usize) -> f32 {
    let n = hist.len();
    let h: Vec<f64> = hist.iter().map(|&c| c as f64).collect();
    let last_nonzero = h.iter().rposition(|&c| c > 0.0).unwrap_or(0) + 1;
    if last_nonzero <= levels {
        return last_nonzero as f32;
    }
    let mut best = (f64::INFINITY, n);
    let mut outliers: f64 = h[n.min(levels)..].iter().sum();
    let mut p = vec![0f64; n];
    let mut q = vec![0f64; n];
    for i in levels..=n.min(last_nonzero) {
        if i > levels {
            outliers -= h[i - 1];
        }
        p[..i].copy_from_slice(&h[..i]);
        p[i - 1] += outliers;
        // Quantize h[..i] into `levels` bins and expand back.
        for j in 0..levels {
            let start = j * i / levels;
            let end = ((j + 1) * i / levels).max(start + 1);
            let sum: f64 = h[start..end].iter().sum();
            let nonzero = h[start..end].iter().filter(|&&c| c > 0.0).count();
            let v = if nonzero > 0 {
                sum / nonzero as f64
            } else {
                0.0
            };
            for k in start..end {
                q[k] = if h[k] > 0.0 { v } else { 0.0 };
            }
        }
        let (ps, qs): (f64, f64) = (p[..i].iter().sum(), q[..i].iter().sum());
        if ps <= 0.0 || qs <= 0.0 {
            continue;
        }
        let mut kl = 0.0;
        for k in 0..i {
            if p[k] > 0.0 {
                let pk = p[k] / ps;
                let qk = q[k] / qs;
                kl += if qk > 0.0 {
                    pk * (pk / qk).ln()
                } else {
                    pk * 1e3
                };
            }
        }
        if kl < best.0 {
            best = (kl, i);
        }
    }
    best.1 as f32 + 0.5
}

/// Model runs [`observe`] makes for `n` samples.
pub fn runs(n: usize, method: Method) -> u64 {
    (n + if method.needs_histogram() {
        n.min(RANGE_SAMPLES)
    } else {
        0
    }) as u64
}

/// Observes the probed tensors over the samples; `tick` is called once per model run.
pub fn observe(
    runner: &mut Runner,
    channels: &[Option<Channels>],
    samples: &[Sample],
    method: Method,
    tick: &dyn Fn(),
) -> Result<Vec<Stats>> {
    let mut stats: Vec<Stats> = (0..channels.len()).map(|_| Stats::new()).collect();
    if method.needs_histogram() {
        for s in samples.iter().take(RANGE_SAMPLES) {
            runner.run(s)?;
            for (j, st) in stats.iter_mut().enumerate() {
                st.observe_range(runner.probe(j));
            }
            tick();
        }
        stats.iter_mut().for_each(Stats::start_histogram);
    }
    for s in samples {
        runner.run(s)?;
        for (j, st) in stats.iter_mut().enumerate() {
            let xs = runner.probe(j);
            if method.needs_histogram() {
                st.observe_histogram(xs);
            } else {
                st.observe_range(xs);
            }
            if let Some(ch) = channels[j] {
                st.observe_channels(xs, ch);
            }
        }
        tick();
    }
    Ok(stats)
}

/// Scale and zero point of a u8 asymmetric quantizer covering [lo, hi] (which contains 0).
pub fn u8_params(lo: f32, hi: f32) -> (f32, u8) {
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let scale = (hi - lo) / 255.0;
    if !(scale.is_finite() && scale > 0.0) {
        return (1.0, 0);
    }
    let zp = (-lo / scale).round().clamp(0.0, 255.0) as u8;
    (scale, zp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats_of(xs: &[f32]) -> Stats {
        let mut s = Stats::new();
        s.observe_range(xs);
        s.start_histogram();
        s.observe_histogram(xs);
        s
    }

    #[test]
    fn mse_clips_a_long_tail_and_keeps_a_compact_range() {
        // Exponential (mean 0.2) with a tail to ~2.4: rounding noise over the full range costs
        // more than clipping the last few values, so the range shrinks, but not below the bulk.
        let xs: Vec<f32> = (0..100_000)
            .map(|i| -((i as f32 + 0.5) / 100_000.0).ln() * 0.2)
            .collect();
        let s = stats_of(&xs);
        let (lo, hi) = s.range(Method::Mse);
        let max = s.max;
        assert_eq!(lo, 0.0);
        assert!(hi < max && hi > 0.3 * max, "mse hi {hi} of max {max}");
        // Uniform values: every value is "bulk", so the full range is best.
        let flat: Vec<f32> = (0..10_000).map(|i| i as f32 / 10_000.0 - 0.5).collect();
        let (lo, hi) = stats_of(&flat).range(Method::Mse);
        assert!(
            lo < -0.49 && hi > 0.49,
            "mse range [{lo}, {hi}] on uniform values"
        );
    }

    #[test]
    fn percentile_and_entropy_clip_a_rare_outlier_minmax_keeps_it() {
        // 100k values of an exponential distribution (mean 0.2, as after a ReLU) and one at 100.
        // KL on a flat histogram sees no loss from coarser bins, so the data must have a shape.
        let mut xs: Vec<f32> = (0..100_000)
            .map(|i| -((i as f32 + 0.5) / 100_000.0).ln() * 0.2)
            .collect();
        xs.push(100.0);
        let s = stats_of(&xs);
        assert_eq!(s.range(Method::MinMax), (0.0, 100.0));
        let (_, p) = s.range(Method::Percentile(99.99));
        assert!(p > 1.5 && p < 3.0, "percentile hi {p}");
        // Entropy's first candidate is 256 of 2048 bins (12.5 here); it must clip the outlier.
        let (_, e) = s.range(Method::Entropy);
        assert!(e > 1.0 && e < 20.0, "entropy hi {e}");
    }

    #[test]
    fn signed_ranges_cover_both_sides() {
        let xs: Vec<f32> = (0..20_000).map(|i| (i as f32 / 10_000.0) - 1.0).collect();
        let s = stats_of(&xs);
        let (lo, hi) = s.range(Method::Percentile(99.9));
        assert!(lo < -0.95 && hi > 0.95, "{lo} {hi}");
        let (lo, hi) = s.range(Method::Entropy);
        assert!(lo < -0.8 && hi > 0.8, "{lo} {hi}");
    }

    #[test]
    fn u8_params_map_zero_exactly() {
        assert_eq!(u8_params(0.0, 6.0), (6.0 / 255.0, 0));
        let (s, z) = u8_params(-1.0, 3.0);
        assert!((s - 4.0 / 255.0).abs() < 1e-9 && z == 64);
        assert_eq!(u8_params(0.0, 0.0), (1.0, 0));
    }
}
