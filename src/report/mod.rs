//! Everything the commands print or write: text for a terminal ([`text`], and per command
//! [`map`] (also search, eval, export), [`baseline`], [`gap`] and [`codesign`] with its [`verification`]), the careful
//! writer of output files ([`fs`]) and the commands' output files ([`files`]). JSON is each
//! app report's own serialisation.

pub mod accuracy;
pub mod baseline;
pub mod codesign;
pub mod files;
pub mod fs;
pub mod gap;
pub mod map;
pub mod network;
pub mod table;
pub mod text;
pub mod verification;

pub use fs::{check_dir_writable, check_output, write_atomic, write_output};
pub use gap::{gap_junit, gap_text, gap_warnings};
pub use text::{
    energy, evaluation_table, loop_nest, mapspace_size, settings_line, status_name, thousands,
};
