//! The `Contribute` operator and the `Audience` reduce: routes a worker's events and every
//! partition's progress into [`Contributions`], and its counts through the running columns into
//! rows (see [`crate::aggregate`] for the rules).

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use differential_dataflow::{AsCollection, VecCollection};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::StreamVec;

use crate::aggregate::{running, CheckpointPart, Contributions, CountUpdate};
use crate::checkpoint::Checkpoint;
use crate::control::Control;
use crate::dead_letter::DeadLetter;
use crate::lateness::Windowed;
use crate::position::Progress;
use crate::schema::{Key, Schema, Sums};
use crate::time::{EventTime, WindowConfig};

/// What the aggregate sends on.
pub struct Aggregated<'scope, S: Schema> {
    /// The rows, as a collection.
    pub rows: VecCollection<'scope, u64, S::Row>,
    /// Each worker's part of the checkpoint, once per epoch.
    pub checkpoint: StreamVec<'scope, u64, CheckpointPart>,
    /// Events that came for a window already closed: possible only from a partition that was
    /// idle, and so did not hold the watermark back, while the others closed the window.
    pub too_late: StreamVec<'scope, u64, DeadLetter>,
}

/// Counts, keyed by key with the window as value, so one reduce sees a key's windows in order.
type Counts<'scope, A> = VecCollection<'scope, u64, (Key, EventTime), Sums<A>>;

/// What `Contribute` sends on: the counts, the checkpoint parts, the events too late.
type Contributed<'scope, A> =
    (Counts<'scope, A>, StreamVec<'scope, u64, CheckpointPart>, StreamVec<'scope, u64, DeadLetter>);

type Output<D> = OutputBuilder<u64, CapacityContainerBuilder<Vec<D>>>;

/// The aggregate: accepted events and the broadcast progress of every partition in; the
/// collection of rows, each worker's part of the checkpoint, and events too late for their
/// closed window, out.
pub fn aggregate<'scope, S: Schema>(
    events: StreamVec<'scope, u64, Windowed<S::Event>>,
    progress: StreamVec<'scope, u64, Progress>,
    schema: Arc<S>,
    config: WindowConfig,
    resume: Arc<Checkpoint>,
    control: Control,
) -> Aggregated<'scope, S> {
    let (counts, checkpoint, too_late) = contribute(events, progress, Arc::clone(&schema), config, resume, control);
    let mut rows = running::Rows::new(schema, config);
    let rows = counts.reduce_named(
        "Audience",
        move |key: &Key, windows: &[(&EventTime, Sums<S::Slots>)], out: &mut Vec<(S::Row, isize)>| {
            rows.rows(key, windows, out)
        },
    );
    Aggregated { rows: rows.map(|(_key, row)| row), checkpoint, too_late }
}

/// The `Contribute` operator: turns this worker's events into updates of the counts, one
/// consolidated set per epoch once the epoch is complete, retracts closed windows, and reports
/// its part of the checkpoint.
fn contribute<'scope, S: Schema>(
    events: StreamVec<'scope, u64, Windowed<S::Event>>,
    progress: StreamVec<'scope, u64, Progress>,
    schema: Arc<S>,
    config: WindowConfig,
    resume: Arc<Checkpoint>,
    control: Control,
) -> Contributed<'scope, S::Slots> {
    let worker = events.scope().index();
    let mut builder = OperatorBuilder::new("Contribute".to_owned(), events.scope());
    let key_of = Arc::clone(&schema);
    let by_key = Exchange::new(move |windowed: &Windowed<S::Event>| {
        let mut hasher = rustc_hash::FxHasher::default();
        key_of.key(&windowed.event).hash(&mut hasher);
        hasher.finish()
    });
    let mut events_in = builder.new_input(events, by_key);
    let mut progress_in = builder.new_input(progress, Pipeline);
    let (counts_out, counts) = builder.new_output();
    let (checkpoint_out, checkpoint) = builder.new_output();
    let (too_late_out, too_late) = builder.new_output();
    let mut counts_out: Output<CountUpdate<S::Slots>> = OutputBuilder::from(counts_out);
    let mut checkpoint_out: Output<CheckpointPart> = OutputBuilder::from(checkpoint_out);
    let mut too_late_out: Output<DeadLetter> = OutputBuilder::from(too_late_out);

    builder.build(move |capabilities| {
        let mut capabilities = Some(capabilities);
        // The base of the running columns of windows a previous run closed enters once.
        let mut state = Contributions::new(schema, config, &resume, worker == 0, control);
        move |frontiers| {
            events_in.for_each_stamp(|cap, batches| {
                let Some(&epoch) = cap.least() else { return };
                for batch in batches {
                    state.absorb(epoch, batch.drain(..));
                }
            });
            progress_in.for_each_stamp(|cap, batches| {
                let Some(&epoch) = cap.least() else { return };
                for batch in batches {
                    state.progress(epoch, batch.drain(..));
                }
            });

            let Some(caps) = capabilities.as_mut() else { return };
            // Updates carry their own time (the epoch, or the next one for closing retractions),
            // never earlier than the capabilities they are sent under.
            let complete = |epoch: &u64| frontiers.iter().all(|f| !f.less_equal(epoch));
            let mut counts_handle = counts_out.activate();
            let mut checkpoint_handle = checkpoint_out.activate();
            let mut too_late_handle = too_late_out.activate();
            while let Some(epoch) = state.oldest_pending().filter(complete) {
                let flushed = state.flush(epoch);
                counts_handle.session(&caps[0].delayed(&epoch)).give_iterator(flushed.counts.into_iter());
                checkpoint_handle.session(&caps[1].delayed(&(epoch + 1))).give(flushed.checkpoint);
                too_late_handle.session(&caps[2].delayed(&epoch)).give_iterator(flushed.too_late.into_iter());
            }
            match frontiers.iter().filter_map(|f| f.frontier().first().copied()).min() {
                Some(frontier) => caps.iter_mut().for_each(|cap| cap.downgrade(&frontier)),
                None => capabilities = None,
            }
        }
    });

    (counts.as_collection(), checkpoint, too_late)
}
