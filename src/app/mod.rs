//! What the commands do, as functions a library user can call: each takes its request and
//! returns a typed report (`Serialize`) that the command line only prints.

pub mod accuracy;
pub mod baseline;
pub mod codesign;
pub mod eval;
pub mod export;
pub mod gap;
pub mod import;
pub mod job;
pub mod map;
pub mod map_cache;
pub mod search;
pub mod table;
