//! The heartbeat of a cluster: a small dataflow beside the pipeline's, in which every worker
//! says, every 200 ms, the newest epoch its process opened and whether its process is stopping
//! or failed. It carries the [`Control`] of each process to the others — a stop asked of any
//! process stops all, a failure fails all, idle sources follow the cluster's epoch clock — and
//! keeps bytes flowing on every connection, so that a silent peer stands out.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::Broadcast;
use timely::worker::Worker;

use crate::control::Control;
use crate::error::Error;

/// How often each worker beats.
pub const INTERVAL: Duration = Duration::from_millis(200);

/// What one worker says of its process.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Beat {
    process: usize,
    newest_epoch: u64,
    stopping: bool,
    failure: Option<String>,
}

/// Builds the heartbeat dataflow on `worker`, of process `process`; it ends once `done` is set.
pub fn heartbeat(worker: &mut Worker, process: usize, control: Control, done: Rc<Cell<bool>>) {
    worker.dataflow::<u64, _, _>(|scope| {
        let beating = control.clone();
        let beats = source(scope, "Heartbeat", move |capability, info| {
            let activator = scope.activator_for(info.address);
            let mut capability = Some(capability);
            move |output| {
                let Some(cap) = capability.as_mut() else { return };
                if done.get() {
                    capability = None;
                    return;
                }
                let beat = Beat {
                    process,
                    newest_epoch: beating.newest_epoch(),
                    stopping: beating.is_stopping(),
                    failure: beating.failure_text(),
                };
                output.session(&*cap).give(beat);
                let next = *cap.time() + 1;
                cap.downgrade(&next);
                activator.activate_after(INTERVAL);
            }
        });
        beats.broadcast().sink(Pipeline, "Listen", move |(input, _frontier)| {
            input.for_each(|_time, beats| {
                for beat in beats.drain(..).filter(|beat| beat.process != process) {
                    control.note_epoch(beat.newest_epoch);
                    if let Some(failure) = beat.failure {
                        control.fail(Error::new(format!("process {} failed: {failure}", beat.process)));
                    } else if beat.stopping && !control.is_stopping() {
                        tracing::info!(process = beat.process, "Another process stops; stopping too.");
                        control.stop();
                    }
                }
            });
        });
    });
}
