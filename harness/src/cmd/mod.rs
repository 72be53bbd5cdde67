//! One module per subcommand, each a thin layer over a library crate.

pub mod calibrate;
pub mod check;
pub mod import;
pub mod load;
pub mod merge;
pub mod plan;
pub mod report;
pub mod run;
pub mod serve;
pub mod validate;
