//! LZ4 frames (the format Kafka's `lz4` compression holds a batch's records in), decoded block by
//! block straight into a buffer the reader keeps between batches.
//!
//! lz4_flex's `FrameDecoder` is a reader: a new one per batch allocates and zero-fills a window of
//! the frame's block size, decodes each block into it and copies it out again. Profiling
//! `streamflow run` put that zeroing at 12 % of its CPU and the copy at 10 %. Here a block is
//! decoded in place, at the end of what the frame's earlier blocks decoded to; the buffer only
//! grows (and is zeroed) when a batch is bigger than any before it.
//!
//! ```text
//!  frame: magic 0x184D2204 | FLG | BD | content size u64? | dictionary id u32? | header checksum
//!         blocks: size u32 (high bit: stored uncompressed; 0 ends the frame) | bytes | checksum u32?
//!         content checksum u32?
//! ```
//! The optional xxHash32 checksums are passed over, not verified: the batch's CRC-32C, checked
//! before its records are read, already covers every byte of the frame.

use lz4_flex::block::{decompress_into, decompress_into_with_dict};

/// A frame's first four bytes (little-endian).
const MAGIC: u32 = 0x184D_2204;
/// Skippable frames carry this in their magic's upper 28 bits; their contents are not data.
const SKIPPABLE: u32 = 0x184D_2A50;
/// How far back a block of a linked frame may refer into the blocks before it.
const WINDOW: usize = 64 * 1024;

const FLG_VERSION: u8 = 0b1100_0000;
const FLG_INDEPENDENT: u8 = 1 << 5;
const FLG_BLOCK_CHECKSUM: u8 = 1 << 4;
const FLG_CONTENT_SIZE: u8 = 1 << 3;
const FLG_CONTENT_CHECKSUM: u8 = 1 << 2;
const FLG_DICTIONARY: u8 = 1;
const UNCOMPRESSED: u32 = 1 << 31;

/// Decodes the LZ4 frames of `data` into `buffer` from its start, and returns how many bytes
/// they decoded to: `buffer[..n]`. What lies beyond `n` is left as it was (the buffer keeps its
/// length so that the next call need not zero it again).
pub fn decode_frames(mut data: &[u8], buffer: &mut Vec<u8>) -> Result<usize, String> {
    let mut end = 0;
    while !data.is_empty() {
        let magic = u32::from_le_bytes(take::<4>(&mut data)?);
        if magic & 0xFFFF_FFF0 == SKIPPABLE {
            let length = u32::from_le_bytes(take::<4>(&mut data)?) as usize;
            data = data.get(length..).ok_or("a skippable frame is cut short")?;
            continue;
        }
        if magic != MAGIC {
            return Err(format!("not an LZ4 frame (magic {magic:#010x})"));
        }
        end = decode_frame(&mut data, buffer, end)?;
    }
    Ok(end)
}

/// Decodes one frame, its magic read, appending from `start`; returns where its data ends.
fn decode_frame(data: &mut &[u8], buffer: &mut Vec<u8>, start: usize) -> Result<usize, String> {
    let [flg, bd] = take::<2>(data)?;
    if flg & FLG_VERSION != 0b0100_0000 {
        return Err(format!("LZ4 frame version {} is not known", flg >> 6));
    }
    if flg & FLG_DICTIONARY != 0 {
        return Err("an LZ4 frame that needs a dictionary cannot be read".into());
    }
    let block_max = match (bd >> 4) & 0x07 {
        4 => 64 * 1024,
        5 => 256 * 1024,
        6 => 1024 * 1024,
        7 => 4 * 1024 * 1024,
        other => return Err(format!("LZ4 block size code {other} is not known")),
    };
    if flg & FLG_CONTENT_SIZE != 0 {
        take::<8>(data)?;
    }
    take::<1>(data)?; // the header's checksum
    let linked = flg & FLG_INDEPENDENT == 0;
    let mut end = start;
    loop {
        let size = u32::from_le_bytes(take::<4>(data)?);
        if size == 0 {
            break;
        }
        let length = (size & !UNCOMPRESSED) as usize;
        if length > block_max {
            return Err(format!("an LZ4 block of {length} bytes is larger than its frame allows ({block_max})"));
        }
        let block = data.get(..length).ok_or("an LZ4 block is cut short")?;
        *data = &data[length..];
        if size & UNCOMPRESSED != 0 {
            grow(buffer, end + length);
            buffer[end..end + length].copy_from_slice(block);
            end += length;
        } else {
            grow(buffer, end + block_max);
            let (before, after) = buffer.split_at_mut(end);
            let output = &mut after[..block_max];
            let decoded = if linked {
                let dictionary = &before[start.max(end.saturating_sub(WINDOW))..];
                decompress_into_with_dict(block, output, dictionary)
            } else {
                decompress_into(block, output)
            };
            end += decoded.map_err(|e| format!("an LZ4 block is corrupt: {e}"))?;
        }
        if flg & FLG_BLOCK_CHECKSUM != 0 {
            take::<4>(data)?;
        }
    }
    if flg & FLG_CONTENT_CHECKSUM != 0 {
        take::<4>(data)?;
    }
    Ok(end)
}

/// Makes `buffer` at least `len` long; zeroing is paid only for bytes never used before.
fn grow(buffer: &mut Vec<u8>, len: usize) {
    if buffer.len() < len {
        buffer.resize(len, 0);
    }
}

fn take<const N: usize>(data: &mut &[u8]) -> Result<[u8; N], String> {
    let (taken, rest) = data.split_first_chunk::<N>().ok_or("an LZ4 frame is cut short")?;
    *data = rest;
    Ok(*taken)
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};

    use lz4_flex::frame::{BlockMode, BlockSize, FrameDecoder, FrameEncoder, FrameInfo};
    use proptest::prelude::*;

    use super::*;

    fn encode(data: &[u8], info: FrameInfo) -> Vec<u8> {
        let mut encoder = FrameEncoder::with_frame_info(info, Vec::new());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn reference(frames: &[u8]) -> Result<Vec<u8>, std::io::Error> {
        let mut out = Vec::new();
        FrameDecoder::new(frames).read_to_end(&mut out).map(|_| out)
    }

    fn decoded(frames: &[u8], buffer: &mut Vec<u8>) -> Result<Vec<u8>, String> {
        decode_frames(frames, buffer).map(|n| buffer[..n].to_vec())
    }

    /// Text that compresses, with repeats further back than one block, and runs that do not.
    fn sample(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed | 1;
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if state.is_multiple_of(3) {
                out.extend_from_slice(
                    format!("{{\"stream_id\":\"s{}\",\"viewer\":{}}}", state % 97, state % 1000).as_bytes(),
                );
            } else {
                out.extend_from_slice(&state.to_le_bytes());
            }
        }
        out.truncate(len);
        out
    }

    fn info(mode: BlockMode, size: BlockSize, checksums: bool) -> FrameInfo {
        FrameInfo::new().block_mode(mode).block_size(size).block_checksums(checksums).content_checksum(checksums)
    }

    #[test]
    fn every_kind_of_frame_decodes_as_lz4_flex_decodes_it() {
        let mut buffer = Vec::new();
        let noise = |len: usize| {
            let mut state = 0x9E37_79B9_7F4A_7C15_u64;
            let mut byte = || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 32) as u8
            };
            (0..len).map(|_| byte()).collect::<Vec<u8>>()
        };
        let lens = [0, 1, 100, 64 * 1024, 64 * 1024 + 1, 300_000, 1_500_000];
        // Noise does not compress: its blocks are stored as they are.
        let inputs = lens.iter().map(|&len| sample(len, len as u64 + 7)).chain([noise(70_000), noise(300_000)]);
        for data in inputs {
            let len = data.len();
            for mode in [BlockMode::Independent, BlockMode::Linked] {
                for size in [BlockSize::Max64KB, BlockSize::Max256KB, BlockSize::Max1MB, BlockSize::Max4MB] {
                    for checksums in [false, true] {
                        let mut info = info(mode, size, checksums);
                        if checksums {
                            info = info.content_size(Some(len as u64));
                        }
                        let frame = encode(&data, info);
                        assert_eq!(
                            decoded(&frame, &mut buffer).unwrap(),
                            data,
                            "{len} bytes, {mode:?} {size:?} {checksums}"
                        );
                        assert_eq!(reference(&frame).unwrap(), data);
                    }
                }
            }
        }
    }

    #[test]
    fn a_kept_buffer_longer_than_the_data_gives_only_the_data() {
        let mut buffer = Vec::new();
        let big = sample(500_000, 1);
        let small = sample(1_000, 2);
        assert_eq!(decoded(&encode(&big, FrameInfo::new()), &mut buffer).unwrap(), big);
        let kept = buffer.len();
        assert_eq!(decoded(&encode(&small, FrameInfo::new()), &mut buffer).unwrap(), small);
        assert_eq!(buffer.len(), kept, "the buffer is reused, not shrunk");
    }

    #[test]
    fn concatenated_and_skippable_frames() {
        let (a, b) = (sample(70_000, 3), sample(5_000, 4));
        let mut frames = encode(&a, info(BlockMode::Linked, BlockSize::Max64KB, false));
        frames.extend_from_slice(&(SKIPPABLE | 3).to_le_bytes());
        frames.extend_from_slice(&3u32.to_le_bytes());
        frames.extend_from_slice(b"xyz");
        frames.extend_from_slice(&encode(&b, info(BlockMode::Linked, BlockSize::Max64KB, true)));
        assert_eq!(decoded(&frames, &mut Vec::new()).unwrap(), [a, b].concat());
    }

    #[test]
    fn what_cannot_be_read_is_an_error() {
        let frame = encode(&sample(200_000, 5), FrameInfo::new());
        let mut buffer = Vec::new();
        assert!(decoded(&frame[..frame.len() - 3], &mut buffer).unwrap_err().contains("cut short"));
        assert!(decoded(b"\x04\x22\x4d\x18", &mut buffer).unwrap_err().contains("cut short"));
        assert!(decoded(b"PAR1....", &mut buffer).unwrap_err().contains("not an LZ4 frame"));
        let mut dictionary = frame.clone();
        dictionary[4] |= FLG_DICTIONARY;
        assert!(decoded(&dictionary, &mut buffer).unwrap_err().contains("dictionary"));
        let mut oversized = frame.clone();
        oversized[7..11].copy_from_slice(&(64 * 1024 + 1u32).to_le_bytes());
        assert!(decoded(&oversized, &mut buffer).unwrap_err().contains("larger than its frame allows"));
    }

    proptest! {
        /// Whatever the bytes, decoding ends in data or an error, never a panic; where lz4_flex
        /// reads data, it is the same data.
        #[test]
        fn damaged_frames_never_panic(len in 0usize..200_000, seed: u64, flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4), cut in any::<prop::sample::Index>(), linked: bool) {
            let mode = if linked { BlockMode::Linked } else { BlockMode::Independent };
            let mut frame = encode(&sample(len, seed), info(mode, BlockSize::Max64KB, false));
            for (at, byte) in flips {
                let at = at.index(frame.len());
                frame[at] ^= byte;
            }
            frame.truncate(cut.index(frame.len() + 1));
            let mut buffer = Vec::new();
            if let (Ok(ours), Ok(theirs)) = (decoded(&frame, &mut buffer), reference(&frame)) {
                prop_assert_eq!(ours, theirs);
            }
        }
    }
}
