//! `streamflow generate`: the original pipeline's events, seeded and deterministic.

use std::fs::File;
use std::io::{self, BufWriter, Write};

use anyhow::Context;
use streamflow_core::{EventTime, Generator, GeneratorConfig};

use crate::cli::GenerateArgs;

pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    let config = GeneratorConfig {
        seed: args.seed,
        streams: args.streams,
        users: args.users,
        events: Some(args.count),
        event_rate: args.event_rate,
        start: EventTime::parse_rfc3339(&args.start).with_context(|| format!("--start {:?}", args.start))?,
        partitions: 1,
        late_ratio: args.late_ratio,
        bad_ratio: args.bad_ratio,
        real_time: false,
    };
    config.validate()?;
    let mut out: Box<dyn Write> = if args.output.as_os_str() == "-" {
        Box::new(BufWriter::new(io::stdout().lock()))
    } else {
        let file = File::create(&args.output).with_context(|| format!("cannot create {}", args.output.display()))?;
        Box::new(BufWriter::with_capacity(1 << 20, file))
    };
    let mut generator = Generator::new(&config, 0);
    let mut payload = Vec::new();
    let mut written = 0u64;
    while generator.next_into(&mut payload).is_some() {
        out.write_all(&payload)?;
        out.write_all(b"\n")?;
        written += 1;
    }
    out.flush().with_context(|| format!("cannot write {}", args.output.display()))?;
    tracing::info!(events = written, output = %args.output.display(), "Generated.");
    Ok(())
}
