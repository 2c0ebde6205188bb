//! CPU kernels of the recurrent family.

pub mod gru;
pub mod lstm;
