//! The `Sink` operator: gathers each epoch's deliveries on worker 0 and, once every worker has
//! finished the epoch, hands what the [`Assembler`] makes of them to the [`Sink`]. Its output
//! carries no data; its frontier says which epochs the sink has taken.

use std::collections::BTreeMap;
use std::sync::Arc;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::StreamVec;

use crate::checkpoint::Checkpoint;
use crate::control::Control;
use crate::schema::Row;
use crate::sink::assemble::{Assembler, Delivery};
use crate::sink::Sink;

/// Delivers to `sink`, which only worker 0 has.
pub fn deliver<'scope, R: Row>(
    deliveries: StreamVec<'scope, u64, Delivery<R>>,
    sink: Option<Box<dyn Sink<R>>>,
    resume: Arc<Checkpoint>,
    control: Control,
) -> StreamVec<'scope, u64, ()> {
    let on_worker_zero = deliveries.scope().index() == 0;
    let to_worker_zero = Exchange::new(|_: &Delivery<R>| 0);
    deliveries.unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
        to_worker_zero,
        "Sink",
        move |capability, _info| {
            let mut capability = Some(capability);
            let mut sink = sink;
            let mut stash: BTreeMap<u64, Vec<Delivery<R>>> = BTreeMap::new();
            let mut assembler = Assembler::new(&resume);
            move |(input, frontier), _output| {
                input.for_each_stamp(|cap, batches| {
                    let Some(&epoch) = cap.least() else { return };
                    for delivery in batches.flat_map(|b| b.drain(..)) {
                        let epoch = match delivery {
                            Delivery::Row(_, time, _) => time,
                            _ => epoch,
                        };
                        stash.entry(epoch).or_default().push(delivery);
                    }
                });
                while let Some(entry) = stash.first_entry() {
                    if frontier.less_equal(entry.key()) {
                        break;
                    }
                    let (epoch, deliveries) = entry.remove_entry();
                    let Some(batch) = assembler.assemble(epoch, deliveries) else { continue };
                    control.metrics().epoch_delivered(batch.rows.len() as u64);
                    if let Some(Err(error)) = sink.as_mut().map(|sink| sink.apply(batch)) {
                        control.fail(error);
                        sink = None;
                    }
                }
                match frontier.frontier().first() {
                    Some(time) => {
                        if let Some(cap) = capability.as_mut() {
                            cap.downgrade(time);
                        }
                    }
                    None if capability.is_some() => {
                        capability = None;
                        let finished = match assembler.unfinished_replay().filter(|_| on_worker_zero) {
                            Some(error) => Err(error),
                            None => sink.as_mut().map_or(Ok(()), |sink| sink.finish()),
                        };
                        if let Err(error) = finished {
                            control.fail(error);
                        }
                    }
                    None => {}
                }
            }
        },
    )
}
