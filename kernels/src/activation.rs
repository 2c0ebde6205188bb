//! Scalar activation and special functions on f32, shared by the element-wise ops and by fused
//! epilogues (conv + activation). Plain functions: callers map them over slices.
//!
//! Accuracy contract: `erf`, `erfc` are ports of FreeBSD's `s_erff.c` (within about 1 ulp);
//! `sigmoid` and the functions built on it keep full relative precision for large |x|.

// The erf coefficients are kept digit for digit as published.
#![allow(clippy::excessive_precision)]

/// max(x, 0).
#[inline]
pub fn relu(x: f32) -> f32 {
    if x > 0.0 {
        x
    } else {
        0.0
    }
}

/// 1 / (1 + e^-x), accurate to about 1 ulp relative on both tails.
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// ln(1 + e^x), without overflow for large x or loss for very negative x.
#[inline]
pub fn softplus(x: f32) -> f32 {
    relu(x) + (-x.abs()).exp().ln_1p()
}

/// x · sigmoid(x) (SiLU).
#[inline]
pub fn swish(x: f32) -> f32 {
    x * sigmoid(x)
}

/// x · tanh(softplus(x)).
#[inline]
pub fn mish(x: f32) -> f32 {
    x * softplus(x).tanh()
}

/// max(0, min(1, alpha·x + beta)) (ONNX HardSigmoid).
#[inline]
pub fn hard_sigmoid(x: f32, alpha: f32, beta: f32) -> f32 {
    (alpha * x + beta).clamp(0.0, 1.0)
}

/// x · hard_sigmoid(x, 1/6, 1/2) (ONNX HardSwish).
#[inline]
pub fn hard_swish(x: f32) -> f32 {
    x * hard_sigmoid(x, 1.0 / 6.0, 0.5)
}

/// x for x ≥ 0, alpha·x otherwise.
#[inline]
pub fn leaky_relu(x: f32, alpha: f32) -> f32 {
    if x >= 0.0 {
        x
    } else {
        alpha * x
    }
}

/// -1, 0 or 1 by the sign of x (±0 give 0, NaN stays NaN), as ONNX Sign.
#[inline]
pub fn sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        x * 0.0
    }
}

/// x / (1 + |x|) (ONNX Softsign).
#[inline]
pub fn softsign(x: f32) -> f32 {
    x / (1.0 + x.abs())
}

/// gamma · elu(x, alpha) (ONNX Selu).
#[inline]
pub fn selu(x: f32, alpha: f32, gamma: f32) -> f32 {
    if x > 0.0 {
        gamma * x
    } else {
        gamma * (alpha * x.exp_m1())
    }
}

/// max(0, x) + min(0, alpha·(e^(x/alpha) − 1)) (ONNX Celu).
#[inline]
pub fn celu(x: f32, alpha: f32) -> f32 {
    if x > 0.0 {
        x
    } else {
        alpha * (x / alpha).exp_m1()
    }
}

/// x for x > alpha, 0 otherwise (ONNX ThresholdedRelu).
#[inline]
pub fn thresholded_relu(x: f32, alpha: f32) -> f32 {
    if x > alpha {
        x
    } else {
        0.0
    }
}

/// x for x > 0, alpha·(e^x − 1) otherwise.
#[inline]
pub fn elu(x: f32, alpha: f32) -> f32 {
    if x > 0.0 {
        x
    } else {
        alpha * x.exp_m1()
    }
}

/// 0.5·x·(1 + erf(x/√2)), computed through erfc so the negative tail keeps its precision.
#[inline]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * erfc(-x * std::f32::consts::FRAC_1_SQRT_2)
}

// Ported from FreeBSD /usr/src/lib/msun/src/s_erff.c (via musl and the `libm` crate).
// ====================================================
// Copyright (C) 1993 by Sun Microsystems, Inc. All rights reserved.
//
// Developed at SunPro, a Sun Microsystems, Inc. business.
// Permission to use, copy, modify, and distribute this
// software is freely granted, provided that this notice
// is preserved.
// ====================================================
// Conversion to float by Ian Lance Taylor, Cygnus Support, ian@cygnus.com.

const ERX: f32 = 8.4506291151e-01;
const EFX8: f32 = 1.0270333290e+00;
const PP: [f32; 5] = [
    1.2837916613e-01,
    -3.2504209876e-01,
    -2.8481749818e-02,
    -5.7702702470e-03,
    -2.3763017452e-05,
];
const QQ: [f32; 5] = [
    3.9791721106e-01,
    6.5022252500e-02,
    5.0813062117e-03,
    1.3249473704e-04,
    -3.9602282413e-06,
];
const PA: [f32; 7] = [
    -2.3621185683e-03,
    4.1485610604e-01,
    -3.7220788002e-01,
    3.1834661961e-01,
    -1.1089469492e-01,
    3.5478305072e-02,
    -2.1663755178e-03,
];
const QA: [f32; 6] = [
    1.0642088205e-01,
    5.4039794207e-01,
    7.1828655899e-02,
    1.2617121637e-01,
    1.3637083583e-02,
    1.1984500103e-02,
];
const RA: [f32; 8] = [
    -9.8649440333e-03,
    -6.9385856390e-01,
    -1.0558626175e+01,
    -6.2375331879e+01,
    -1.6239666748e+02,
    -1.8460508728e+02,
    -8.1287437439e+01,
    -9.8143291473e+00,
];
const SA: [f32; 8] = [
    1.9651271820e+01,
    1.3765776062e+02,
    4.3456588745e+02,
    6.4538726807e+02,
    4.2900814819e+02,
    1.0863500214e+02,
    6.5702495575e+00,
    -6.0424413532e-02,
];
const RB: [f32; 7] = [
    -9.8649431020e-03,
    -7.9928326607e-01,
    -1.7757955551e+01,
    -1.6063638306e+02,
    -6.3756646729e+02,
    -1.0250950928e+03,
    -4.8351919556e+02,
];
const SB: [f32; 7] = [
    3.0338060379e+01,
    3.2579251099e+02,
    1.5367296143e+03,
    3.1998581543e+03,
    2.5530502930e+03,
    4.7452853394e+02,
    -2.2440952301e+01,
];

/// Horner evaluation of c[0] + s·c[1] + s²·c[2] + …
#[inline]
fn poly(s: f32, c: &[f32]) -> f32 {
    c.iter().rev().fold(0.0, |acc, &k| acc * s + k)
}

/// erfc on 0.84375 ≤ |x| < 1.25.
#[inline]
fn erfc1(x: f32) -> f32 {
    let s = x.abs() - 1.0;
    let p = poly(s, &PA);
    let q = 1.0 + s * poly(s, &QA);
    1.0 - ERX - p / q
}

/// erfc(|x|) on 0.84375 ≤ |x| < 28; `ix` is the bit pattern of |x|.
#[inline]
fn erfc2(ix: u32, x: f32) -> f32 {
    if ix < 0x3fa0_0000 {
        return erfc1(x);
    }
    let x = x.abs();
    let s = 1.0 / (x * x);
    let (r, big_s) = if ix < 0x4036_db6d {
        (poly(s, &RA), 1.0 + s * poly(s, &SA))
    } else {
        (poly(s, &RB), 1.0 + s * poly(s, &SB))
    };
    let z = f32::from_bits(x.to_bits() & 0xffff_e000);
    (-z * z - 0.5625).exp() * ((z - x) * (z + x) + r / big_s).exp() / x
}

/// The error function, within about 1 ulp.
pub fn erf(x: f32) -> f32 {
    let bits = x.to_bits();
    let negative = bits >> 31 != 0;
    let ix = bits & 0x7fff_ffff;
    if ix >= 0x7f80_0000 {
        // erf(nan) = nan, erf(±inf) = ±1.
        return 1.0 - 2.0 * (negative as u8 as f32) + 1.0 / x;
    }
    if ix < 0x3f58_0000 {
        // |x| < 0.84375
        if ix < 0x3180_0000 {
            // |x| < 2^-28: avoid underflow.
            return 0.125 * (8.0 * x + EFX8 * x);
        }
        let z = x * x;
        let y = poly(z, &PP) / (1.0 + z * poly(z, &QQ));
        return x + x * y;
    }
    let y = if ix < 0x40c0_0000 {
        1.0 - erfc2(ix, x)
    } else {
        1.0 - f32::from_bits(0x0380_0000)
    };
    if negative {
        -y
    } else {
        y
    }
}

/// The complementary error function 1 − erf(x), precise in the tail where erf(x) → 1.
pub fn erfc(x: f32) -> f32 {
    let bits = x.to_bits();
    let negative = bits >> 31 != 0;
    let ix = bits & 0x7fff_ffff;
    if ix >= 0x7f80_0000 {
        // erfc(nan) = nan, erfc(+inf) = 0, erfc(-inf) = 2.
        return 2.0 * (negative as u8 as f32) + 1.0 / x;
    }
    if ix < 0x3f58_0000 {
        // |x| < 0.84375
        if ix < 0x2380_0000 {
            return 1.0 - x;
        }
        let z = x * x;
        let y = poly(z, &PP) / (1.0 + z * poly(z, &QQ));
        if negative || ix < 0x3e80_0000 {
            return 1.0 - (x + x * y);
        }
        return 0.5 - (x - 0.5 + x * y);
    }
    if ix < 0x41e0_0000 {
        // |x| < 28
        let r = erfc2(ix, x);
        return if negative { 2.0 - r } else { r };
    }
    let tiny = f32::from_bits(0x0380_0000);
    if negative {
        2.0 - tiny
    } else {
        tiny * tiny
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf in f64 by its Taylor series (|x| ≤ 3) or continued fraction for erfc (|x| > 3).
    fn erf_ref(x: f64) -> f64 {
        if x.abs() <= 3.0 {
            let mut term = x;
            let mut sum = x;
            for n in 1..200 {
                term *= -x * x / n as f64;
                sum += term / (2 * n + 1) as f64;
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            let a = x.abs();
            let mut f = 0.0;
            for k in (1..100).rev() {
                f = (k as f64 / 2.0) / (a + f);
            }
            let erfc = (-a * a).exp() / std::f64::consts::PI.sqrt() / (a + f);
            (1.0 - erfc).copysign(x)
        }
    }

    #[test]
    fn erf_is_precise() {
        let mut worst: f64 = 0.0;
        for i in -6000..=6000 {
            let x = i as f32 * 1e-3;
            let err = (erf(x) as f64 - erf_ref(x as f64)).abs();
            worst = worst.max(err);
        }
        assert!(worst < 1e-7, "worst erf error {worst}");
        assert_eq!(erf(f32::INFINITY), 1.0);
        assert_eq!(erf(f32::NEG_INFINITY), -1.0);
        assert!(erf(f32::NAN).is_nan());
        assert!((erfc(5.0) as f64 - 1.5374597944280e-12).abs() < 1e-18);
    }

    #[test]
    fn sigmoid_tails_keep_relative_precision() {
        for &x in &[-80.0f32, -30.0, -10.0, -1.0, 0.0, 1.0, 10.0, 30.0, 80.0] {
            let r = 1.0 / (1.0 + (-(x as f64)).exp());
            let rel = ((sigmoid(x) as f64 - r) / r).abs();
            assert!(rel < 1.2e-7, "sigmoid({x}) rel err {rel}");
        }
    }
}
