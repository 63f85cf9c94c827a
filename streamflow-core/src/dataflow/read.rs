//! The `Source` operator: drives a worker's [`Source`], numbers each partition's batches, and
//! stamps them with epochs an [`EpochCutter`] cuts.

use std::collections::{HashMap, HashSet};

use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::{ProbeHandle, Scope, StreamVec};

use crate::batch::RecordBatch;
use crate::checkpoint::Checkpoint;
use crate::control::Control;
use crate::position::{PartitionId, PartitionState};
use crate::source::{EpochCutter, Polled, ReadPolicy, Source};

/// Reads `reader`: first it resumes it where `resume` says, and announces each partition with an
/// empty batch where it starts (so that it holds the watermark back from the start; partitions
/// added to a Kafka topic come later); at the end of a bounded source an empty batch per
/// partition says it is finished. It stops at the end or when `control` asks the pipeline to.
///
/// It does not run more than `policy.max_epochs_in_flight` epochs ahead of `sink_progress`, and
/// pauses the partitions that [`crate::control::Alignment`] says run too far ahead in event time.
pub fn read<'scope>(
    scope: Scope<'scope, u64>,
    mut reader: Box<dyn Source>,
    resume: &Checkpoint,
    policy: ReadPolicy,
    control: Control,
    sink_progress: ProbeHandle<u64>,
) -> StreamVec<'scope, u64, RecordBatch> {
    let resume_from = resume.replay_offsets();
    source(scope, "Source", move |capability, info| {
        let activator = scope.activator_for(info.address);
        let mut capability = Some(capability);
        let mut resumed = false;
        let mut announced: HashSet<PartitionId> = HashSet::new();
        let mut seqs: HashMap<PartitionId, u64> = HashMap::new();
        let mut number = move |batch: &mut RecordBatch| {
            let seq = seqs.entry(batch.partition).or_default();
            batch.seq = *seq;
            *seq += 1;
        };
        let mut finished: HashSet<PartitionId> = HashSet::new();
        let mut cutter = EpochCutter::new(&policy);
        let max_drift = i64::try_from(policy.max_drift.as_micros()).unwrap_or(i64::MAX);

        move |output| {
            let Some(cap) = capability.as_mut() else { return };
            if control.is_stopping() {
                capability = None;
                return;
            }
            if !resumed {
                resumed = true;
                if let Err(error) = reader.resume(&resume_from) {
                    control.fail(error);
                    capability = None;
                    return;
                }
            }
            let positions = reader.positions();
            let partitions: Vec<PartitionId> = positions.iter().map(|&(p, _)| p).collect();
            let mut session = output.session(&*cap);
            for (partition, offset) in positions {
                if announced.insert(partition) {
                    let mut batch = RecordBatch::new(partition, offset);
                    number(&mut batch);
                    session.give(batch);
                }
            }
            drop(session);
            let epoch = *cap.time();
            if sink_progress.less_than(&epoch.saturating_sub(policy.max_epochs_in_flight)) {
                activator.activate_after(policy.poll_interval);
                return;
            }
            for (partition, ahead) in partitions.iter().zip(control.alignment().ahead(&partitions, max_drift)) {
                reader.pause(*partition, ahead);
            }

            let mut budget = policy.records_per_activation;
            let mut idle = false;
            while budget > 0 {
                match reader.poll(budget) {
                    Ok(Polled::Records(mut batch)) => {
                        number(&mut batch);
                        if batch.state == PartitionState::Finished {
                            finished.insert(batch.partition);
                        }
                        budget = budget.saturating_sub(batch.len().max(1));
                        cutter.read(batch.len());
                        output.session(&*cap).give(batch);
                    }
                    Ok(Polled::Pending) => {
                        idle = true;
                        break;
                    }
                    Ok(Polled::Exhausted) => {
                        // Partitions the source did not say were finished are, now.
                        let unfinished = reader.positions().into_iter().filter(|(p, _)| !finished.contains(p));
                        output.session(&*cap).give_iterator(unfinished.map(|(partition, offset)| {
                            let mut batch = RecordBatch::new(partition, offset);
                            batch.state = PartitionState::Finished;
                            number(&mut batch);
                            batch
                        }));
                        capability = None;
                        return;
                    }
                    Err(error) => {
                        control.fail(error);
                        capability = None;
                        return;
                    }
                }
            }

            if let Some(next) = cutter.next(epoch, idle, control.newest_epoch()) {
                cap.downgrade(&next);
                control.note_epoch(next);
            }
            if idle {
                activator.activate_after(policy.poll_interval);
            } else {
                activator.activate();
            }
        }
    })
}
