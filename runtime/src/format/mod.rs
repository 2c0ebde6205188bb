//! The `.efm` container: one file per compiled model.
//!
//! ```text
//! offset 0    header (64 bytes)
//!             magic "EDGEFUSE", major u16, minor u16, section count u32, header crc32 u32,
//!             file length u64, rest zero
//! offset 64   section table: per section 32 bytes
//!             kind u32, reserved u32, offset u64, length u64, crc32 u32, reserved u32
//! ...         sections, each starting on a 64-byte boundary:
//!             META_Z  JSON-encoded [`Meta`] (graph, provenance, preprocessing, labels),
//!                     raw-deflate compressed: per-channel scales written as decimal text
//!                     would otherwise be a tenth of an int8 model (META, uncompressed, is
//!                     still read)
//!             WEIGHTS constant tensors, each 64-byte aligned (offsets relative to the section)
//! ```
//! All integers little-endian. The header crc covers the header (with its crc field zeroed) and
//! the section table; every section has its own crc32. A reader checks every bound before use.

mod meta;
mod reader;
mod writer;

pub use meta::{printable, Calibration, Meta, Provenance};
pub use reader::{parse, Parsed};
pub use writer::{write, write_file};

pub const MAGIC: &[u8; 8] = b"EDGEFUSE";
/// Readers refuse files with a newer major version; minor versions only add optional fields.
pub const VERSION_MAJOR: u16 = 1;
/// Minor 1: deflated metadata; 2: the `QLstm`, `QGru` and `QGather` ops; 3: the `LayerNorm`,
/// `InstanceNorm`, `LpNorm`, `ArgReduce`, `TopK`, `CumSum`, `GatherElements` and
/// `DynamicQuantizeLinear` ops, and the PRelu/And/Or/Xor, Sin/Cos/Sign/Softsign/Selu/Celu/
/// ThresholdedRelu and ReduceL1/SumSquare/LogSumExp kinds of `Binary`, `Unary` and `Reduce`;
/// 4: `DynamicQuantizeMatMul`; 5: `DynamicQuantizeConv`.
pub const VERSION_MINOR: u16 = 5;
pub const HEADER_LEN: usize = 64;
pub const SECTION_ENTRY_LEN: usize = 32;
pub const ALIGN: usize = 64;

pub const SECTION_META: u32 = 1;
pub const SECTION_WEIGHTS: u32 = 2;
/// The metadata, raw-deflate compressed (minor version 1 on).
pub const SECTION_META_Z: u32 = 3;
/// Largest inflated metadata a reader accepts: a corrupt or hostile file cannot make it
/// allocate more.
pub const MAX_META_BYTES: usize = 256 << 20;

pub(crate) fn align_up(x: usize) -> usize {
    x.div_ceil(ALIGN) * ALIGN
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::ops::{Binary, BinaryOp};
    use crate::ir::{Graph, Node, Op};
    use crate::testing::info;
    use crate::{DType, Error, Model, Tensor};

    /// y = x + w, with w a constant of 3 elements.
    pub(crate) fn tiny() -> (Meta, Vec<Option<Tensor>>) {
        let graph = Graph {
            tensors: vec![info("x", &[3]), info("w", &[3]), info("y", &[3])],
            nodes: vec![Node {
                name: "add".into(),
                op: Op::Binary(Binary { op: BinaryOp::Add }),
                inputs: vec![0, 1],
                outputs: vec![2],
            }],
            inputs: vec![0],
            outputs: vec![2],
        };
        let w = Tensor::from_vec(&[3], vec![1.0f32, 2.0, 3.0]).unwrap();
        (
            Meta {
                graph,
                ..Default::default()
            },
            vec![None, Some(w), None],
        )
    }

    #[test]
    fn round_trip_keeps_graph_and_aligned_weights() {
        let (meta, consts) = tiny();
        let refs: Vec<_> = consts.iter().map(|c| c.as_ref()).collect();
        let bytes = write(meta.clone(), &refs).unwrap();
        let m = Model::from_bytes(&bytes).unwrap();
        assert_eq!(m.graph().nodes, meta.graph.nodes);
        let w = m.constant(1).unwrap();
        assert_eq!(w.data.as_ptr() as usize % ALIGN, 0);
        assert_eq!(w.typed::<f32>(), &[1.0, 2.0, 3.0]);
        assert!(m.constant(0).is_none());
    }

    #[test]
    fn f16_stored_weights_are_half_the_bytes_and_load_as_f32() {
        let (meta, _) = tiny();
        let w16 = Tensor::from_vec(
            &[3],
            vec![
                half::f16::from_f32(1.0),
                half::f16::from_f32(-2.5),
                half::f16::from_f32(1e-3),
            ],
        )
        .unwrap();
        let bytes = write(meta, &[None, Some(&w16), None]).unwrap();
        let m = Model::from_bytes(&bytes).unwrap();
        let info = &m.graph().tensors[1];
        assert_eq!(info.dtype, DType::F32);
        let w = info.weight.unwrap();
        assert_eq!((w.len, w.stored), (6, Some(DType::F16)));
        let v = m.constant(1).unwrap();
        assert_eq!(v.dtype, DType::F32);
        assert_eq!(
            v.typed::<f32>(),
            &[1.0, -2.5, half::f16::from_f32(1e-3).to_f32()]
        );
        // As stored: the file's f16 bytes (what an fp16 CUDA session uploads), unwidened; the
        // f32 view is made once and kept.
        let s = m.stored_constant(1).unwrap();
        assert_eq!((s.dtype, s.data), (DType::F16, w16.bytes()));
        assert_eq!(m.constant(1).unwrap().data.as_ptr(), v.data.as_ptr());
        assert!(m.stored_constant(0).is_none() && m.constant(0).is_none());
        // An f16 constant cannot stand for an i64 tensor.
        let (mut meta, _) = tiny();
        meta.graph.tensors[1].dtype = DType::I64;
        assert!(write(meta, &[None, Some(&w16), None]).is_err());
    }

    #[test]
    fn damaged_bytes_are_refused_by_kind() {
        let (meta, consts) = tiny();
        let refs: Vec<_> = consts.iter().map(|c| c.as_ref()).collect();
        let bytes = write(meta, &refs).unwrap();
        for cut in 0..bytes.len() {
            assert!(
                matches!(parse(&bytes[..cut]), Err(Error::BadFile(_))),
                "truncated to {cut}"
            );
        }
        for pos in 0..bytes.len() {
            let mut b = bytes.clone();
            b[pos] ^= 0x10;
            assert!(parse(&b).is_err(), "flip at {pos} accepted");
        }
    }
}
