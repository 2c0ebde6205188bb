//! Data-movement ops. Attribute-defining inputs (Reshape's shape, Slice's starts/ends, Pad's
//! pads, Resize's scales/sizes, Expand's shape, Split's sizes, Squeeze/Unsqueeze axes, Tile's
//! repeats) must be constants once input shapes are fixed; they become the IR ops' static
//! attributes.

mod movement;
mod pad;
mod rearrange;
mod reshape;
mod resize;
mod slice;

use crate::onnx::Registry;

pub fn register(reg: &mut Registry) {
    reg.insert("Reshape", reshape::reshape);
    reg.insert("Flatten", reshape::flatten);
    reg.insert("Squeeze", reshape::squeeze);
    reg.insert("Unsqueeze", reshape::unsqueeze);
    reg.insert("Transpose", movement::transpose);
    reg.insert("Concat", movement::concat);
    reg.insert("Gather", movement::gather);
    reg.insert("GatherElements", movement::gather_elements);
    reg.insert("Cast", movement::cast);
    reg.insert("Expand", movement::expand);
    reg.insert("Split", movement::split);
    reg.insert("Slice", slice::slice);
    reg.insert("Pad", pad::pad);
    reg.insert("Resize", resize::resize);
    reg.insert("Upsample", resize::upsample);
    reg.insert("Tile", rearrange::tile);
    reg.insert("DepthToSpace", rearrange::depth_to_space);
    reg.insert("SpaceToDepth", rearrange::space_to_depth);
}
