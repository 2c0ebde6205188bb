//! Resize (opset 11+: X, roi, scales, sizes) and the deprecated Upsample (scales), nearest,
//! linear or cubic, resolved to a static output shape.

use anyhow::{bail, Result};
use edgefuse_runtime::ir::ops::{NearestMode, Op, Resize, ResizeCoord, ResizeMode};

use crate::onnx::context::{norm_axis, to_usizes};
use crate::onnx::NodeCtx;

fn mode(ctx: &NodeCtx, name: &str) -> Result<ResizeMode> {
    Ok(match name {
        "nearest" => ResizeMode::Nearest(
            match ctx.string("nearest_mode", "round_prefer_floor")?.as_str() {
                "round_prefer_floor" => NearestMode::RoundPreferFloor,
                "round_prefer_ceil" => NearestMode::RoundPreferCeil,
                "floor" => NearestMode::Floor,
                "ceil" => NearestMode::Ceil,
                other => bail!("nearest_mode \"{other}\" is not supported"),
            },
        ),
        "linear" | "bilinear" => ResizeMode::Linear,
        "cubic" => ResizeMode::Cubic {
            a: ctx.float("cubic_coeff_a", -0.75)?,
            exclude_outside: ctx.int("exclude_outside", 0)? != 0,
        },
        other => bail!("resize mode \"{other}\" is not supported (nearest, linear and cubic are)"),
    })
}

/// Output shape and scales from either scales or sizes (the other empty).
fn resolve(input: &[usize], scales: &[f32], sizes: &[i64]) -> Result<(Vec<usize>, Vec<f32>)> {
    let r = input.len();
    if !sizes.is_empty() {
        if sizes.len() != r {
            bail!("sizes {sizes:?} do not match rank {r}");
        }
        let out = to_usizes(sizes, "sizes")?;
        let scales = out
            .iter()
            .zip(input)
            .map(|(&o, &i)| if i == 0 { 1.0 } else { o as f32 / i as f32 })
            .collect();
        return Ok((out, scales));
    }
    if scales.len() != r {
        bail!("scales {scales:?} do not match rank {r}");
    }
    let mut out = Vec::with_capacity(r);
    for (&i, &s) in input.iter().zip(scales) {
        if !(s > 0.0 && s.is_finite()) {
            bail!("scale {s} is not a positive number");
        }
        let o = (i as f32 * s).floor();
        if o > (1u64 << 31) as f32 {
            bail!("scale {s} makes the output too large");
        }
        out.push(o as usize);
    }
    Ok((out, scales.to_vec()))
}

pub fn resize(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(1, 4)?;
    let x = ctx.input(0)?;
    let input = ctx.fact(x).shape;
    let r = input.len();
    let mode = mode(ctx, &ctx.string("mode", "nearest")?)?;
    let coord = match ctx
        .string("coordinate_transformation_mode", "half_pixel")?
        .as_str()
    {
        "half_pixel" => ResizeCoord::HalfPixel,
        "pytorch_half_pixel" => ResizeCoord::PytorchHalfPixel,
        "align_corners" => ResizeCoord::AlignCorners,
        "asymmetric" => ResizeCoord::Asymmetric,
        "tf_half_pixel_for_nn" => ResizeCoord::TfHalfPixelForNn,
        "half_pixel_symmetric" => ResizeCoord::HalfPixelSymmetric,
        other => bail!("coordinate_transformation_mode \"{other}\" is not supported"),
    };
    if ctx.int("antialias", 0)? != 0 {
        bail!("antialias is not supported");
    }
    let policy = ctx.string("keep_aspect_ratio_policy", "stretch")?;
    if policy != "stretch" {
        bail!("keep_aspect_ratio_policy \"{policy}\" is not supported");
    }
    let read = |ctx: &NodeCtx, i: usize, what: &str| -> Result<Option<Vec<f32>>> {
        match ctx.opt_input(i) {
            Some(_) => {
                let v = ctx.const_f32s(i, what)?;
                Ok(if v.is_empty() { None } else { Some(v) })
            }
            None => Ok(None),
        }
    };
    let (scales, sizes) = if ctx.opset < 11 {
        (read(ctx, 1, "scales")?, None)
    } else {
        let scales = read(ctx, 2, "scales")?;
        let sizes = match ctx.opt_input(3) {
            Some(_) => Some(ctx.const_i64s(3, "sizes")?).filter(|v| !v.is_empty()),
            None => None,
        };
        (scales, sizes)
    };
    // Opset 18 `axes`: scales/sizes given for a subset of axes.
    let axes = match ctx.attr_ints("axes")? {
        Some(a) => Some(
            a.iter()
                .map(|&v| norm_axis(v, r))
                .collect::<Result<Vec<_>>>()?,
        ),
        None => None,
    };
    if let Some(a) = &axes {
        if (0..a.len()).any(|j| a[..j].contains(&a[j])) {
            bail!("axes {a:?} repeat an axis");
        }
    }
    let expand_f = |v: Vec<f32>, fill: &dyn Fn(usize) -> f32| -> Result<Vec<f32>> {
        match &axes {
            None => Ok(v),
            Some(a) if a.len() == v.len() => {
                let mut full: Vec<f32> = (0..r).map(fill).collect();
                for (j, &ax) in a.iter().enumerate() {
                    full[ax] = v[j];
                }
                Ok(full)
            }
            Some(a) => bail!("{} values for axes {a:?}", v.len()),
        }
    };
    let (out_shape, scales) = match (scales, sizes) {
        (Some(_), Some(_)) => bail!("both scales and sizes are given"),
        (Some(s), None) => resolve(&input, &expand_f(s, &|_| 1.0)?, &[])?,
        (None, Some(s)) => {
            let s: Vec<f32> = s.iter().map(|&v| v as f32).collect();
            let full = expand_f(s, &|i| input[i] as f32)?;
            let full: Vec<i64> = full.iter().map(|&v| v as i64).collect();
            resolve(&input, &[], &full)?
        }
        (None, None) => bail!("neither scales nor sizes are given"),
    };
    ctx.emit_outputs(
        Op::Resize(Resize {
            mode,
            coord,
            scales,
            out_shape,
        }),
        &[x],
    )
}

/// Upsample (deprecated): scales as an attribute or second input, asymmetric coordinates.
pub fn upsample(ctx: &mut NodeCtx) -> Result<()> {
    ctx.expect_inputs(1, 2)?;
    let x = ctx.input(0)?;
    let input = ctx.fact(x).shape;
    let mode = mode(ctx, &ctx.string("mode", "nearest")?)?;
    let mode = match mode {
        ResizeMode::Nearest(_) => ResizeMode::Nearest(NearestMode::Floor),
        m => m,
    };
    let scales = match ctx.opt_input(1) {
        Some(_) => ctx.const_f32s(1, "scales")?,
        None => match ctx.attr_floats("scales")? {
            Some(s) => s,
            None => bail!("scales are required"),
        },
    };
    let (out_shape, scales) = resolve(&input, &scales, &[])?;
    ctx.emit_outputs(
        Op::Resize(Resize {
            mode,
            coord: ResizeCoord::Asymmetric,
            scales,
            out_shape,
        }),
        &[x],
    )
}
