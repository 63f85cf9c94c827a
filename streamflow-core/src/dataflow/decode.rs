//! The `Decode` operator: decodes batches, dealt round-robin over the workers of the process
//! that read them, so that even a single partition is decoded in parallel and no payload crosses
//! the network; the `Window` operator puts each partition's batches back in order.
//!
//! A partition's batches skip the worker that windows it, when it is of this process and has
//! company: that worker already reads and windows the partition (one worker for a file), and
//! would otherwise be the slowest stage of the pipeline.

use std::ops::Range;
use std::sync::Arc;

use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::StreamVec;

use crate::batch::{DecodedBatch, RecordBatch};
use crate::schema::Schema;

/// Decodes every record of every batch by `schema`, on the workers of `local` (this process's).
pub fn decode<'scope, S: Schema>(
    batches: StreamVec<'scope, u64, RecordBatch>,
    schema: Arc<S>,
    local: Range<usize>,
) -> StreamVec<'scope, u64, DecodedBatch<S::Event>> {
    let peers = batches.scope().peers() as u64;
    let (first, count) = (local.start as u64, local.len().max(1) as u64);
    let deal = Exchange::new(move |batch: &RecordBatch| {
        let turn = u64::from(batch.partition).wrapping_add(batch.seq);
        // The worker that windows the partition (see `window`), by its place in this process.
        match (u64::from(batch.partition) % peers).checked_sub(first).filter(|&owner| owner < count && count > 1) {
            Some(owner) => first + (owner + 1 + turn % (count - 1)) % count,
            None => first + turn % count,
        }
    });
    batches.unary(deal, "Decode", move |_capability, _info| {
        move |input, output| {
            input.for_each_stamp(|cap, batches| {
                let mut session = output.session(&cap);
                for batch in batches.flat_map(|b| b.drain(..)) {
                    session.give(DecodedBatch::new(&*schema, batch));
                }
            });
        }
    })
}
