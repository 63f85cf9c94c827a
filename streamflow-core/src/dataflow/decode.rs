//! The `Decode` operator: decodes batches, dealt round-robin over the workers so that even a
//! single partition is decoded in parallel; the `Window` operator puts each partition's batches
//! back in order.

use std::sync::Arc;

use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::StreamVec;

use crate::batch::{DecodedBatch, RecordBatch};
use crate::schema::Schema;

/// Decodes every record of every batch by `schema`.
pub fn decode<'scope, S: Schema>(
    batches: StreamVec<'scope, u64, RecordBatch>,
    schema: Arc<S>,
) -> StreamVec<'scope, u64, DecodedBatch<S::Event>> {
    let deal = Exchange::new(|batch: &RecordBatch| u64::from(batch.partition).wrapping_add(batch.seq));
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
