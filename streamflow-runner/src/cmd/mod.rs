//! One module per subcommand.

mod generate;
mod offsets;
mod produce;
mod replay;
mod run;
mod serve;

use crate::cli::Command;

/// Runs a subcommand.
pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run(args) => run::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Produce(args) => produce::run(args),
        Command::Offsets(args) => offsets::run(args),
    }
}
