//! Element-wise ops: binary arithmetic and comparisons (variadic Max/Min/Sum chained), unary
//! functions and parameterised activations.

mod activation;
mod binary;

use crate::onnx::Registry;

pub fn register(reg: &mut Registry) {
    binary::register(reg);
    activation::register(reg);
}
