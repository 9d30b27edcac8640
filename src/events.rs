//! Events to containerd, in the order the service emits them. A handler
//! queues an event without waiting (while it holds the table, so that the
//! order of the queue is the order of the facts); one task forwards the
//! queue to containerd's ttrpc Events service, retrying an event (and
//! holding back the ones after it) for as long as containerd is away, so a
//! restarted containerd gets every exit that happened while it was down.
//! A shim told to shut down stops serving at once (containerd waits for
//! that) and delivers what is still queued before it exits
//! ([`drain_before_exit`]).
//!
//! The envelope is built here with the event's type name spelled out:
//! the containerd-shim crate's publisher asks protobuf's reflection for it,
//! which parses the whole descriptor set into about 350 KiB of heap that
//! every shim would keep for its lifetime.

use containerd_shim::protos::protobuf::{well_known_types::any::Any, Message};
use containerd_shim::protos::shim::event::Envelope;
use containerd_shim::protos::shim::events::ForwardRequest;
use containerd_shim::protos::shim_async::{Client, EventsClient};
use containerd_shim::protos::ttrpc::context::Context;
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::sync::oneshot;

/// An event message with the name containerd's typeurl registry knows it by.
pub trait Event: Message {
    const TYPE_URL: &'static str;
}

macro_rules! events {
    ($($name:ident),*) => {
        $(impl Event for containerd_shim::protos::events::task::$name {
            const TYPE_URL: &'static str = concat!("containerd.events.", stringify!($name));
        })*
    };
}
events!(
    TaskCreate,
    TaskStart,
    TaskDelete,
    TaskExit,
    TaskOOM,
    TaskExecAdded,
    TaskExecStarted,
    TaskPaused,
    TaskResumed
);

/// The pause between attempts grows by a second each time up to this.
const MAX_PAUSE: Duration = Duration::from_secs(3);

/// How long a shim that was told to exit keeps trying to deliver what is
/// still queued (containerd down that long, it is taken to be gone).
const DRAIN_LIMIT: Duration = Duration::from_secs(600);

/// The shim's one forwarder, for [`drain_before_exit`].
static FORWARDER: std::sync::OnceLock<Events> = std::sync::OnceLock::new();

enum Item {
    Event(Envelope),
    /// Answered once every event queued before it is forwarded or dropped.
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct Events {
    queue: UnboundedSender<Item>,
}

impl Events {
    /// Starts forwarding to containerd's ttrpc socket at `address`.
    pub fn start(address: &str) -> Events {
        let address = match address.contains("://") {
            true => address.to_string(),
            false => format!("unix://{address}"),
        };
        let (queue, pending) = unbounded_channel();
        tokio::spawn(forward(address, pending));
        let events = Events { queue };
        let _ = FORWARDER.set(events.clone());
        events
    }

    pub fn publish<E: Event>(&self, topic: &'static str, namespace: &str, event: E) {
        let envelope = match envelope(topic, namespace, &event) {
            Ok(envelope) => envelope,
            Err(e) => return log::warn!("publishing {topic}: {e}"),
        };
        if self.queue.send(Item::Event(envelope)).is_err() {
            log::warn!("publishing {topic}: the event queue is gone");
        }
    }

    /// Waits, at most `within`, until every event queued so far is forwarded.
    pub async fn flush(&self, within: Duration) {
        let (done, flushed) = oneshot::channel();
        if self.queue.send(Item::Flush(done)).is_ok() && tokio::time::timeout(within, flushed).await.is_err() {
            log::warn!("events still queued after {within:?}");
        }
    }
}

fn envelope<E: Event>(topic: &str, namespace: &str, event: &E) -> anyhow::Result<Envelope> {
    Ok(Envelope {
        timestamp: Some(containerd_shim::util::timestamp()?).into(),
        namespace: namespace.into(),
        topic: topic.into(),
        event: Some(Any {
            type_url: E::TYPE_URL.into(),
            value: event.write_to_bytes()?,
            ..Default::default()
        })
        .into(),
        ..Default::default()
    })
}

async fn forward(address: String, mut pending: UnboundedReceiver<Item>) {
    let mut client: Option<EventsClient> = None;
    while let Some(item) = pending.recv().await {
        let envelope = match item {
            Item::Event(envelope) => envelope,
            Item::Flush(done) => {
                let _ = done.send(());
                continue;
            }
        };
        let topic = envelope.topic.clone();
        let request = ForwardRequest {
            envelope: Some(envelope).into(),
            ..Default::default()
        };
        let mut attempt: u32 = 1;
        loop {
            // A connection kept from before a containerd restart fails on
            // first use: one fresh connection is tried at once.
            let was_connected = client.is_some();
            let mut result = send(&address, &mut client, &request).await;
            if result.is_err() && was_connected {
                result = send(&address, &mut client, &request).await;
            }
            match result {
                Ok(()) => break,
                // Said once, then now and then: containerd may be away long.
                Err(e) if attempt == 1 || attempt.is_multiple_of(100) => {
                    log::warn!("publishing {topic} (attempt {attempt}, retrying until containerd takes it): {e}")
                }
                Err(_) => {}
            }
            tokio::time::sleep(Duration::from_secs(attempt.into()).min(MAX_PAUSE)).await;
            attempt += 1;
        }
    }
}

/// Waits, at most [`DRAIN_LIMIT`], until the events still queued reach
/// containerd; for the shim's last moments, after it stopped serving.
pub async fn drain_before_exit() {
    if let Some(events) = FORWARDER.get() {
        events.flush(DRAIN_LIMIT).await;
    }
}

/// One attempt, connecting first when there is no connection.
async fn send(address: &str, client: &mut Option<EventsClient>, request: &ForwardRequest) -> anyhow::Result<()> {
    let events = match client {
        Some(events) => events,
        None => client.insert(EventsClient::new(Client::connect(address).await?)),
    };
    if let Err(e) = events.forward(Context::default(), request).await {
        *client = None;
        return Err(e.into());
    }
    Ok(())
}
