//! Events to containerd, in the order the service emits them. A handler
//! queues an event without waiting (while it holds the table, so that the
//! order of the queue is the order of the facts); one task forwards the queue
//! to containerd, whose publisher retries while containerd is away.

use containerd_shim::protos::protobuf::MessageDyn;
use containerd_shim::publisher::RemotePublisher;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

#[derive(Clone)]
pub struct Events {
    queue: UnboundedSender<(&'static str, Box<dyn MessageDyn>)>,
}

impl Events {
    pub fn start(publisher: RemotePublisher, namespace: String) -> Events {
        let (queue, mut pending) = unbounded_channel::<(&'static str, Box<dyn MessageDyn>)>();
        tokio::spawn(async move {
            while let Some((topic, event)) = pending.recv().await {
                let ctx = containerd_shim::Context::default();
                if let Err(e) = publisher.publish(ctx, topic, &namespace, event).await {
                    log::warn!("publishing {topic}: {e}");
                }
            }
        });
        Events { queue }
    }

    pub fn publish(&self, topic: &'static str, event: impl MessageDyn) {
        if self.queue.send((topic, Box::new(event))).is_err() {
            log::warn!("publishing {topic}: the event queue is gone");
        }
    }
}
