//! The preprocessing spec: what `compile --preprocess` records in the `.efm` and what every
//! backend (CPU here, CUDA later) executes. Parsed from presets or an explicit `key=value` list.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::pixel;
use crate::capture::frame::MAX_SIDE;
use crate::{Error, Result};

/// How the frame is fitted into the model's input size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// Resize the shorter side to `resize` (default: the crop size), then take the centre crop.
    #[default]
    Crop,
    /// Scale to fit inside, keep the aspect ratio, fill the rest with `pad`.
    Letterbox,
    /// Scale each axis to the input size, ignoring the aspect ratio.
    Stretch,
}

/// The resampling filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interp {
    /// Two taps per axis at half-pixel centres (OpenCV `INTER_LINEAR`): samples few pixels.
    #[default]
    Bilinear,
    /// Box average over every source pixel an output pixel covers (OpenCV `INTER_AREA`).
    Area,
}

/// Channel order of the model input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Color {
    #[default]
    Rgb,
    Bgr,
    /// One channel: luma, 0.299 R + 0.587 G + 0.114 B.
    Gray,
}

/// Memory layout of the model input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    #[default]
    Nchw,
    Nhwc,
}

/// The whole preprocessing recipe. Pixel values are in 0..255 units before normalisation:
/// `out = (pixel - mean[c]) / std[c]`. Fields added later must keep `#[serde(default)]`
/// so older `.efm` files still load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PreprocessSpec {
    /// The preset this spec came from, if any (informational).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// `fit=crop`: shorter side after resizing (default: the crop size).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resize: Option<u32>,
    /// Output width and height (default: the model input's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crop: Option<(u32, u32)>,
    pub fit: Fit,
    pub interp: Interp,
    pub color: Color,
    pub layout: Layout,
    /// One value for all channels or one per channel, in pixel units.
    pub mean: Vec<f32>,
    /// One value for all channels or one per channel, in pixel units; never zero.
    pub std: Vec<f32>,
    /// Letterbox fill, in pixel units (before normalisation).
    pub pad: f32,
}

impl Default for PreprocessSpec {
    fn default() -> Self {
        PreprocessSpec {
            preset: None,
            resize: None,
            crop: None,
            fit: Fit::Crop,
            interp: Interp::Bilinear,
            color: Color::Rgb,
            layout: Layout::Nchw,
            mean: vec![0.0],
            std: vec![1.0],
            pad: 0.0,
        }
    }
}

/// Named presets: (name, explicit form, what it is for).
pub const PRESETS: &[(&str, &str, &str)] = &[
    (
        "imagenet",
        "resize=256,crop=224,mean=123.675/116.28/103.53,std=58.395/57.12/57.375",
        "torchvision ImageNet models (ResNet, MobileNet from torchvision)",
    ),
    (
        "efficientnet_lite0",
        "resize=256,crop=224,mean=127,std=128",
        "EfficientNet-Lite (TF style (x-127)/128)",
    ),
    (
        "mobilenet",
        "resize=256,crop=224,mean=128,std=128",
        "TFLite MobileNet (x-128)/128, e.g. mobilenet_v2_int8_qdq",
    ),
    (
        "inception",
        "resize=256,crop=224,mean=127.5,std=127.5",
        "[-1, 1] inputs (Inception, TF Keras applications)",
    ),
    (
        "mnist",
        "color=gray,fit=stretch,crop=28,mean=0,std=255",
        "28x28 grey digits scaled to 0..1",
    ),
];

impl PreprocessSpec {
    /// Parses a preset name, an explicit list, or a preset followed by overrides:
    /// `imagenet`, `resize=256,crop=224,mean=127,std=128`, `imagenet,layout=nhwc`.
    pub fn parse(text: &str) -> Result<PreprocessSpec> {
        let mut spec = PreprocessSpec::default();
        for (k, item) in text.split(',').map(str::trim).enumerate() {
            if item.is_empty() {
                continue;
            }
            let Some((key, value)) = item.split_once('=') else {
                if k > 0 {
                    return Err(bad(text, &format!("\"{item}\" is not KEY=VALUE")));
                }
                let Some((name, explicit, _)) = PRESETS.iter().find(|p| p.0 == item) else {
                    let names: Vec<&str> = PRESETS.iter().map(|p| p.0).collect();
                    return Err(bad(
                        text,
                        &format!(
                            "unknown preset \"{item}\" (presets: {}; or KEY=VALUE,...)",
                            names.join(", ")
                        ),
                    ));
                };
                spec = PreprocessSpec::parse(explicit)?;
                spec.preset = Some(name.to_string());
                continue;
            };
            let (key, value) = (key.trim(), value.trim());
            let r: std::result::Result<(), String> = match key {
                "resize" => parse_u32(value).map(|v| spec.resize = Some(v)),
                "crop" | "size" => parse_size(value).map(|v| spec.crop = Some(v)),
                "mean" => parse_list(value).map(|v| spec.mean = v),
                "std" => parse_list(value).map(|v| spec.std = v),
                "scale" => parse_list(value).map(|v| spec.std = v.iter().map(|s| 1.0 / s).collect()),
                "pad" => value.parse().map(|v| spec.pad = v).map_err(|_| "not a number".into()),
                "fit" => one_of(value, &[("crop", Fit::Crop), ("letterbox", Fit::Letterbox), ("stretch", Fit::Stretch)]).map(|v| spec.fit = v),
                "interp" | "resample" => one_of(value, &[("bilinear", Interp::Bilinear), ("area", Interp::Area)]).map(|v| spec.interp = v),
                "color" => one_of(value, &[("rgb", Color::Rgb), ("bgr", Color::Bgr), ("gray", Color::Gray), ("grey", Color::Gray)]).map(|v| spec.color = v),
                "layout" => one_of(value, &[("nchw", Layout::Nchw), ("nhwc", Layout::Nhwc)]).map(|v| spec.layout = v),
                _ => Err("unknown key (keys: resize, crop, mean, std, scale, pad, fit, interp, color, layout)".into()),
            };
            r.map_err(|m| bad(text, &format!("{key}={value}: {m}")))?;
        }
        spec.validate()?;
        Ok(spec)
    }

    /// Checks the values make sense: std never zero, channel counts 1 or 3, sizes 1 to
    /// `MAX_SIDE`, and every pixel value (0 to 255, and the pad) finite after normalisation.
    pub fn validate(&self) -> Result<()> {
        let c = self.channels();
        for (name, v) in [("mean", &self.mean), ("std", &self.std)] {
            if v.len() != 1 && v.len() != c {
                return Err(Error::invalid(format!(
                    "preprocess {name}: give 1 value or {c} (one per channel), not {}",
                    v.len()
                )));
            }
            if v.iter().any(|x| !x.is_finite()) {
                return Err(Error::invalid(format!(
                    "preprocess {name}: values must be finite"
                )));
            }
        }
        if self.std.contains(&0.0) {
            return Err(Error::invalid("preprocess std: must not be zero"));
        }
        if self.resize == Some(0) || self.crop.is_some_and(|(w, h)| w == 0 || h == 0) {
            return Err(Error::invalid("preprocess: sizes must be positive"));
        }
        if let Some(r) = self.resize.filter(|&r| r as usize > MAX_SIDE) {
            return Err(Error::invalid(format!(
                "preprocess resize={r}: at most {MAX_SIDE}"
            )));
        }
        if let Some((w, h)) = self.crop.filter(|&(w, h)| w.max(h) as usize > MAX_SIDE) {
            return Err(Error::invalid(format!(
                "preprocess crop={w}x{h}: at most {MAX_SIDE} a side"
            )));
        }
        if !self.pad.is_finite() {
            return Err(Error::invalid(format!(
                "preprocess pad={}: must be finite",
                self.pad
            )));
        }
        for c in 0..self.channels() {
            let (m, s) = self.mean_std(c);
            let (scale, bias) = pixel::norm_coeffs(m, s);
            for (k, v) in [0.0, 255.0, self.pad].into_iter().enumerate() {
                if !(v * scale + bias).is_finite() {
                    let what = if k == 2 {
                        format!("pad={v:?}")
                    } else {
                        format!("pixel value {v}")
                    };
                    return Err(Error::invalid(format!(
                        "preprocess mean={m:?}, std={s:?} (channel {c}): {what} normalises to a value out of the f32 range"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Channels of the model input: 1 for gray, else 3.
    pub fn channels(&self) -> usize {
        if self.color == Color::Gray {
            1
        } else {
            3
        }
    }

    /// Mean and std of channel `c` (a single value applies to every channel).
    pub fn mean_std(&self, c: usize) -> (f32, f32) {
        let pick = |v: &Vec<f32>| if v.len() == 1 { v[0] } else { v[c] };
        (pick(&self.mean), pick(&self.std))
    }
}

/// The explicit form, which parses back to the same spec (less the preset name).
impl fmt::Display for PreprocessSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &Vec<f32>| {
            v.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join("/")
        };
        if let Some(r) = self.resize {
            write!(f, "resize={r},")?;
        }
        if let Some((w, h)) = self.crop {
            if w == h {
                write!(f, "crop={w},")?;
            } else {
                write!(f, "crop={w}x{h},")?;
            }
        }
        write!(
            f,
            "mean={},std={},color={},layout={},fit={},interp={}",
            list(&self.mean),
            list(&self.std),
            j(&self.color),
            j(&self.layout),
            j(&self.fit),
            j(&self.interp)
        )?;
        if self.pad != 0.0 {
            write!(f, ",pad={}", self.pad)?;
        }
        Ok(())
    }
}

/// The lowercase name a unit enum above serialises to.
fn j<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v)
        .unwrap_or_default()
        .trim_matches('"')
        .to_string()
}

fn bad(text: &str, msg: &str) -> Error {
    Error::invalid(format!("--preprocess \"{text}\": {msg}"))
}

fn parse_u32(v: &str) -> std::result::Result<u32, String> {
    v.parse()
        .map_err(|_| format!("\"{v}\" is not a positive integer"))
}

fn parse_size(v: &str) -> std::result::Result<(u32, u32), String> {
    match v.split_once(['x', 'X']) {
        Some((w, h)) => Ok((parse_u32(w)?, parse_u32(h)?)),
        None => parse_u32(v).map(|s| (s, s)),
    }
}

fn parse_list(v: &str) -> std::result::Result<Vec<f32>, String> {
    v.split('/')
        .map(|x| {
            x.trim()
                .parse::<f32>()
                .map_err(|_| format!("\"{x}\" is not a number"))
        })
        .collect()
}

fn one_of<T: Copy>(v: &str, options: &[(&str, T)]) -> std::result::Result<T, String> {
    options
        .iter()
        .find(|o| o.0.eq_ignore_ascii_case(v))
        .map(|o| o.1)
        .ok_or_else(|| {
            let names: Vec<&str> = options.iter().map(|o| o.0).collect();
            format!("expected one of {}", names.join(", "))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_explicit_forms_parse() {
        let s = PreprocessSpec::parse("resize=256,crop=224,mean=127,std=128").unwrap();
        assert_eq!(
            (s.resize, s.crop, s.mean.clone(), s.std.clone()),
            (Some(256), Some((224, 224)), vec![127.0], vec![128.0])
        );
        let p = PreprocessSpec::parse("efficientnet_lite0").unwrap();
        assert_eq!(p.preset.as_deref(), Some("efficientnet_lite0"));
        assert_eq!(
            PreprocessSpec {
                preset: None,
                ..p.clone()
            },
            s
        );
        let n =
            PreprocessSpec::parse("imagenet,layout=nhwc,color=bgr,fit=letterbox,pad=114").unwrap();
        assert_eq!(
            (n.layout, n.color, n.fit, n.pad),
            (Layout::Nhwc, Color::Bgr, Fit::Letterbox, 114.0)
        );
        assert_eq!(n.mean_std(2), (103.53, 57.375));
        for (name, _, _) in PRESETS {
            let a = PreprocessSpec::parse(name).unwrap();
            let b = PreprocessSpec::parse(&a.to_string()).unwrap();
            assert_eq!(PreprocessSpec { preset: None, ..a }, b, "{name} round trip");
        }
        assert_eq!(
            PreprocessSpec::parse("crop=320x240").unwrap().crop,
            Some((320, 240))
        );
    }

    #[test]
    fn bad_specs_name_the_problem() {
        for (text, needle) in [
            ("resnet", "unknown preset"),
            ("resize=abc", "resize=abc"),
            ("std=0", "std"),
            ("mean=1/2", "mean"),
            ("color=purple", "color=purple"),
            ("imagenet,foo", "KEY=VALUE"),
            ("wat=1", "unknown key"),
        ] {
            let e = PreprocessSpec::parse(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn old_files_without_fields_still_deserialize() {
        let s: PreprocessSpec = serde_json::from_str(r#"{"resize":256}"#).unwrap();
        assert_eq!(s.resize, Some(256));
        assert_eq!(s.std, vec![1.0]);
    }
}
