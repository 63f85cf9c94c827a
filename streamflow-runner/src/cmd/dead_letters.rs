//! `streamflow dead-letters list|export|redrive`: the records the pipeline refused, for the
//! operator who fixes their producer — read as a table, exported as JSON lines for other tools,
//! and produced again (fixed or as they are) to a topic.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};

use anyhow::Context;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use streamflow_core::sink::postgres::{DeadLetterFilter, StoredDeadLetter};
use streamflow_core::{EventTime, PostgresSink};

use super::produce::KeyedProducer;
use crate::cli::{DeadLetterSelection, DeadLettersAction, ExportArgs, RedriveArgs};

pub fn run(action: DeadLettersAction) -> anyhow::Result<()> {
    match action {
        DeadLettersAction::List(selection) => list(&selection),
        DeadLettersAction::Export(args) => export(&args),
        DeadLettersAction::Redrive(args) => redrive(&args),
    }
}

/// A dead letter as a JSON line.
#[derive(Debug, Serialize, Deserialize)]
struct Line {
    reason: String,
    detail: Option<String>,
    topic: String,
    partition: u32,
    offset: i64,
    event_id: Option<String>,
    received_at: String,
    /// The key as text, when it is UTF-8.
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    key_base64: Option<String>,
    /// The payload as text, when it is UTF-8: the field to edit.
    #[serde(default)]
    payload: Option<String>,
    #[serde(default)]
    payload_base64: Option<String>,
}

impl Line {
    fn of(letter: StoredDeadLetter) -> Line {
        let text = |bytes: &[u8]| std::str::from_utf8(bytes).ok().map(str::to_owned);
        Line {
            key: letter.key.as_deref().and_then(text),
            key_base64: letter.key.as_deref().map(|k| BASE64.encode(k)),
            payload: text(&letter.payload),
            payload_base64: Some(BASE64.encode(&letter.payload)),
            reason: letter.reason,
            detail: letter.detail,
            topic: letter.topic,
            partition: letter.partition,
            offset: letter.offset,
            event_id: letter.event_id,
            received_at: EventTime::from(letter.received_at).to_string(),
        }
    }

    /// The record to produce again: the text fields win over the base64 ones (they are what a
    /// tool edits).
    fn record(&self) -> anyhow::Result<(Option<Vec<u8>>, Vec<u8>)> {
        let bytes = |text: &Option<String>, base64: &Option<String>, what: &str| -> anyhow::Result<Option<Vec<u8>>> {
            match (text, base64) {
                (Some(text), _) => Ok(Some(text.clone().into_bytes())),
                (None, Some(encoded)) => {
                    Ok(Some(BASE64.decode(encoded).with_context(|| format!("{what}_base64 is not base64"))?))
                }
                (None, None) => Ok(None),
            }
        };
        let key = bytes(&self.key, &self.key_base64, "key")?;
        let payload = bytes(&self.payload, &self.payload_base64, "payload")?.context("a line without payload")?;
        Ok((key, payload))
    }
}

fn stored(selection: &DeadLetterSelection) -> anyhow::Result<Vec<StoredDeadLetter>> {
    let config = selection.database.postgres("").context("--database-url is needed")?;
    let since = match &selection.since {
        Some(text) => Some(EventTime::parse_rfc3339(text).with_context(|| format!("--since {text:?}"))?.into()),
        None => None,
    };
    let filter = DeadLetterFilter {
        reason: selection.reason.clone(),
        topic: selection.source_topic.clone(),
        since,
        limit: selection.limit,
    };
    PostgresSink::stored_dead_letters(&config, &filter).context("cannot read the dead letters")
}

fn list(selection: &DeadLetterSelection) -> anyhow::Result<()> {
    let letters = stored(selection)?;
    let mut out = BufWriter::new(io::stdout().lock());
    writeln!(out, "received_at\ttopic\tpartition\toffset\treason\tdetail\tpayload")?;
    let clip = |text: &str| -> String {
        let line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        if line.chars().count() > 60 {
            format!("{}…", line.chars().take(60).collect::<String>())
        } else {
            line
        }
    };
    for letter in &letters {
        writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            EventTime::from(letter.received_at),
            letter.topic,
            letter.partition,
            letter.offset,
            letter.reason,
            clip(letter.detail.as_deref().unwrap_or("")),
            clip(&String::from_utf8_lossy(&letter.payload)),
        )?;
    }
    out.flush()?;
    eprintln!("{} dead letters", letters.len());
    Ok(())
}

fn export(args: &ExportArgs) -> anyhow::Result<()> {
    let letters = stored(&args.selection)?;
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => {
            Box::new(BufWriter::new(File::create(path).with_context(|| format!("cannot create {}", path.display()))?))
        }
        None => Box::new(BufWriter::new(io::stdout().lock())),
    };
    let count = letters.len();
    for letter in letters {
        serde_json::to_writer(&mut out, &Line::of(letter))?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    eprintln!("{count} dead letters exported");
    Ok(())
}

fn redrive(args: &RedriveArgs) -> anyhow::Result<()> {
    let records: Vec<(Option<Vec<u8>>, Vec<u8>)> = match &args.input {
        Some(path) => {
            let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
                Box::new(BufReader::new(io::stdin().lock()))
            } else {
                Box::new(BufReader::new(File::open(path).with_context(|| format!("cannot open {}", path.display()))?))
            };
            let mut records = Vec::new();
            for (number, line) in reader.lines().enumerate() {
                let line = line.context("cannot read the input")?;
                if line.trim().is_empty() {
                    continue;
                }
                let parsed: Line = serde_json::from_str(&line)
                    .with_context(|| format!("line {} is not a dead letter as export writes it", number + 1))?;
                records.push(parsed.record().with_context(|| format!("line {}", number + 1))?);
            }
            records
        }
        None => stored(&args.selection)?.into_iter().map(|letter| (letter.key, letter.payload)).collect(),
    };
    let produced = tokio::runtime::Runtime::new()?.block_on(async {
        let mut producer = KeyedProducer::connect(&args.kafka).await?;
        for (key, payload) in records {
            producer.push(key, payload).await?;
        }
        producer.finish().await
    })?;
    eprintln!("{produced} records produced to {}", args.kafka.topic);
    Ok(())
}
