//! Everything the commands print or write: text for a terminal ([`text`], and per command
//! [`gap`] and [`codesign`]), and the careful writer of output files ([`fs`]). JSON is each
//! app report's own serialisation.

pub mod codesign;
pub mod fs;
pub mod gap;
pub mod table;
pub mod text;

pub use fs::{check_dir_writable, check_output, write_atomic, write_output};
pub use gap::{gap_junit, gap_text, gap_warnings};
pub use text::{
    energy, evaluation_table, loop_nest, mapspace_size, settings_line, status_name, thousands,
};
