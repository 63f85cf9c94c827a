//! A JSON-lines file (or standard input) as a source of one partition, whose offsets are line
//! numbers counted from 0.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use super::{Polled, Source};
use crate::batch::RecordBatch;
use crate::error::{Error, SourceError};
use crate::position::{Offset, PartitionId, PartitionState};

const READ_BUFFER_BYTES: usize = 1 << 20;

/// Reads lines as records of partition 0. `-` names standard input.
pub struct FileSource {
    name: String,
    reader: Box<dyn BufRead + Send>,
    next_offset: Offset,
    line: Vec<u8>,
    exhausted: bool,
    /// Bytes of the last full batch: the next one is made that large at once.
    batch_bytes: usize,
}

impl FileSource {
    /// The partition a file is read as.
    pub const PARTITION: PartitionId = 0;

    /// Opens `path`, or standard input for `-`.
    pub fn open(path: &Path) -> Result<FileSource, SourceError> {
        let name = path.display().to_string();
        let reader: Box<dyn BufRead + Send> = if name == "-" {
            Box::new(BufReader::with_capacity(READ_BUFFER_BYTES, io::stdin()))
        } else {
            let file = File::open(path).map_err(|source| Error::io(&name, source))?;
            Box::new(BufReader::with_capacity(READ_BUFFER_BYTES, file))
        };
        Ok(FileSource::from_reader(name, reader))
    }

    /// Reads lines from any buffered reader; `name` appears in errors.
    pub fn from_reader(name: impl Into<String>, reader: Box<dyn BufRead + Send>) -> FileSource {
        FileSource { name: name.into(), reader, next_offset: 0, line: Vec::new(), exhausted: false, batch_bytes: 0 }
    }

    /// Reads the next line into `self.line`, without its line ending; false at the end.
    fn read_line(&mut self) -> Result<bool, SourceError> {
        self.line.clear();
        let read = self.reader.read_until(b'\n', &mut self.line).map_err(|source| Error::io(&self.name, source))?;
        if read == 0 {
            return Ok(false);
        }
        if self.line.last() == Some(&b'\n') {
            self.line.pop();
            if self.line.last() == Some(&b'\r') {
                self.line.pop();
            }
        }
        self.next_offset += 1;
        Ok(true)
    }
}

impl Source for FileSource {
    /// Skips the lines before where the partition resumes.
    fn resume(&mut self, from: &BTreeMap<PartitionId, Offset>) -> Result<(), SourceError> {
        let offset = from.get(&Self::PARTITION).copied().unwrap_or(0);
        while self.next_offset < offset && self.read_line()? {}
        // `poll` takes what `line` holds for the start of its next line.
        self.line.clear();
        Ok(())
    }

    fn positions(&self) -> Vec<(PartitionId, Offset)> {
        vec![(Self::PARTITION, self.next_offset)]
    }

    fn poll(&mut self, max_records: usize) -> Result<Polled, SourceError> {
        if self.exhausted {
            return Ok(Polled::Exhausted);
        }
        let mut batch = RecordBatch::with_capacity(Self::PARTITION, self.next_offset, max_records, self.batch_bytes);
        // Whole lines go from the reader's buffer straight into the batch; only a line that
        // straddles two fills of the buffer is put together in `self.line` first.
        while batch.len() < max_records {
            let buffer = self.reader.fill_buf().map_err(|source| Error::io(&self.name, source))?;
            if buffer.is_empty() {
                if !self.line.is_empty() {
                    push_line(&mut batch, &mut self.next_offset, &self.line);
                    self.line.clear();
                }
                self.exhausted = true;
                batch.state = PartitionState::Finished;
                break;
            }
            let mut used = 0;
            while batch.len() < max_records {
                let Some(at) = memchr::memchr(b'\n', &buffer[used..]) else { break };
                let end = used + at;
                if self.line.is_empty() {
                    push_line(&mut batch, &mut self.next_offset, &buffer[used..end]);
                } else {
                    self.line.extend_from_slice(&buffer[used..end]);
                    push_line(&mut batch, &mut self.next_offset, &self.line);
                    self.line.clear();
                }
                used = end + 1;
            }
            if batch.len() < max_records {
                // The rest of the buffer is the start of a line.
                self.line.extend_from_slice(&buffer[used..]);
                used = buffer.len();
            }
            self.reader.consume(used);
        }
        if batch.len() == max_records {
            self.batch_bytes = batch.payload_bytes();
        }
        Ok(Polled::Records(batch))
    }
}

/// Appends `line` (its `\n` removed) without a `\r` before it, as the record at `next_offset`.
fn push_line(batch: &mut RecordBatch, next_offset: &mut Offset, line: &[u8]) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    batch.push(*next_offset, line);
    *next_offset += 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(source: &mut FileSource) -> Vec<(Offset, Vec<u8>)> {
        let mut records = Vec::new();
        while let Polled::Records(batch) = source.poll(2).unwrap() {
            records.extend(batch.iter().map(|r| (r.offset, r.payload.to_vec())));
            if batch.state == PartitionState::Finished {
                break;
            }
        }
        records
    }

    #[test]
    fn lines_become_records_numbered_from_zero() {
        let text = "a\r\n\nccc\nlast-without-newline";
        let mut source = FileSource::from_reader("test", Box::new(io::Cursor::new(text)));
        let records = read_all(&mut source);
        let expected: Vec<(Offset, Vec<u8>)> =
            vec![(0, b"a".to_vec()), (1, b"".to_vec()), (2, b"ccc".to_vec()), (3, b"last-without-newline".to_vec())];
        assert_eq!(records, expected);
        assert!(matches!(source.poll(2).unwrap(), Polled::Exhausted));
    }

    #[test]
    fn lines_across_the_reader_buffer_are_whole() {
        let text = "first line\r\n\nthe third, longer than the buffer\nlast";
        for capacity in [1, 2, 3, 7, 64] {
            let reader = io::BufReader::with_capacity(capacity, io::Cursor::new(text));
            let mut source = FileSource::from_reader("test", Box::new(reader));
            let lines: Vec<Vec<u8>> = read_all(&mut source).into_iter().map(|(_, line)| line).collect();
            let expected: Vec<&[u8]> = vec![b"first line", b"", b"the third, longer than the buffer", b"last"];
            assert_eq!(lines, expected, "buffer of {capacity}");
        }
    }

    #[test]
    fn resumes_at_an_offset() {
        let mut source = FileSource::from_reader("test", Box::new(io::Cursor::new("a\nb\nc\n")));
        source.resume(&BTreeMap::from([(0, 2)])).unwrap();
        assert_eq!(source.positions(), vec![(0, 2)]);
        assert_eq!(read_all(&mut source), vec![(2, b"c".to_vec())]);
    }

    #[test]
    fn a_missing_file_is_a_clear_error() {
        let error = FileSource::open(Path::new("/nonexistent/events.jsonl")).err().unwrap();
        assert!(error.to_string().contains("/nonexistent/events.jsonl"), "{error}");
    }
}
