//! Model types shared by every part of qmap: problem (dims, tensor projections), architecture,
//! mapping, bit-widths and model settings, built and validated from the `spec` formats.

mod arch;
mod bits;
mod mapping;
mod problem;

pub use arch::*;
pub use bits::*;
pub use mapping::*;
pub use problem::*;
