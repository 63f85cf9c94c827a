//! One module per subcommand.

mod generate;
mod replay;

use crate::cli::Command;

/// Runs a subcommand.
pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Replay(args) => replay::run(args),
        Command::Generate(args) => generate::run(args),
    }
}
