//! One file per subcommand (or family of them): each turns its arguments into core's configuration, calls core
//! and prints what came back.

pub mod export;
pub mod info;
pub mod ingest;
pub mod protocol;
pub mod segment;
pub mod select;
pub mod serve;
pub mod train;
