//! The `Window` operator: routes each partition's decoded batches to [`Readers`], which holds
//! the lateness rule, and sends on what each batch gives — accepted events with their window,
//! dead letters, and the partition's progress.

use std::sync::Arc;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::Capability;
use timely::dataflow::StreamVec;

use crate::batch::DecodedBatch;
use crate::checkpoint::Checkpoint;
use crate::control::Control;
use crate::dead_letter::DeadLetter;
use crate::lateness::{Readers, Windowed};
use crate::position::Progress;
use crate::schema::Schema;
use crate::time::WindowConfig;

type Output<D> = OutputBuilder<u64, CapacityContainerBuilder<Vec<D>>>;

/// The window operator's three streams: events, dead letters, progress.
pub type Windows<'scope, E> =
    (StreamVec<'scope, u64, Windowed<E>>, StreamVec<'scope, u64, DeadLetter>, StreamVec<'scope, u64, Progress>);

/// Reads each partition's batches in order on the worker the partition is exchanged to.
pub fn window<'scope, S: Schema>(
    decoded: StreamVec<'scope, u64, DecodedBatch<S::Event>>,
    schema: Arc<S>,
    config: WindowConfig,
    resume: Arc<Checkpoint>,
    control: Control,
) -> Windows<'scope, S::Event> {
    let mut builder = OperatorBuilder::new("Window".to_owned(), decoded.scope());
    let by_partition = Exchange::new(|decoded: &DecodedBatch<S::Event>| u64::from(decoded.batch.partition));
    let mut input = builder.new_input(decoded, by_partition);
    let (events_out, events) = builder.new_output();
    let (dead_out, dead_letters) = builder.new_output();
    let (progress_out, progress) = builder.new_output();
    let mut events_out: Output<Windowed<S::Event>> = OutputBuilder::from(events_out);
    let mut dead_out: Output<DeadLetter> = OutputBuilder::from(dead_out);
    let mut progress_out: Output<Progress> = OutputBuilder::from(progress_out);

    builder.build(move |_capabilities| {
        let mut readers: Readers<S, [Capability<u64>; 3]> = Readers::new(schema, config, resume);
        let metrics = Arc::clone(control.metrics());
        move |_frontiers| {
            let mut events = events_out.activate();
            let mut dead = dead_out.activate();
            let mut progress = progress_out.activate();
            input.for_each_stamp(|cap, batches| {
                let Some(&time) = cap.least() else { return };
                for decoded in batches.flat_map(|b| b.drain(..)) {
                    let caps = [cap.delayed(&time, 0), cap.delayed(&time, 1), cap.delayed(&time, 2)];
                    readers.offer(decoded, caps, |[events_cap, dead_cap, progress_cap], reading| {
                        let mut accepted = events.session(events_cap);
                        let read = reading.read(|event| accepted.give(event));
                        drop(accepted);
                        metrics.partition_read(&read.progress, read.records, read.newest_timestamp_ms);
                        if !read.dead_letters.is_empty() {
                            let mut reasons = std::collections::BTreeMap::new();
                            for letter in &read.dead_letters {
                                *reasons.entry(letter.reason).or_insert(0) += 1;
                            }
                            metrics.dead_letters(reasons);
                        }
                        dead.session(dead_cap).give_iterator(read.dead_letters.into_iter());
                        progress.session(progress_cap).give(read.progress);
                    });
                }
            });
        }
    });

    (events, dead_letters, progress)
}
