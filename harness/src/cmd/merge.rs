//! `lab merge` (not implemented yet).

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<i32> {
    Err(crate::exit::bad_input("`lab merge` is not implemented yet"))
}
