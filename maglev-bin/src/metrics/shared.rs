//! Renderings shared by concurrent scrapes, and the bound on the memory
//! scrapes hold.
//!
//! A scrape that arrives while a rendering of the same families and format
//! is under way waits for it and answers with the same body (one
//! allocation, reference-counted), so a burst of scrapers costs one
//! rendering, not one each. A scrape that arrives after it ended starts a
//! new one: nobody gets a body rendered before their request arrived
//! except by joining one under way.
//!
//! **Bound:** at most [`MAX_BODIES`] bodies are alive at once (being
//! rendered or being sent; a body is released when its last scraper has
//! taken its last chunk, or gone), and at most one rendering per set and
//! format is under way. A rendering that needs a body beyond the bound
//! waits for one to be released (a scraper that stops reading is closed
//! by the listener's idle shedding). So scrapes hold at most
//! `MAX_BODIES` × the largest body, plus hyper's write buffer per
//! connection, however many scrapers there are.
//!
//! Rendering runs on the blocking pool, started from the serve runtime:
//! it reads snapshots and atomics; the only locks it takes are the pool
//! choice's (one frontend at a time) and the registry families' read locks
//! while each is written (a series' first increment waits for that).

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use super::{Families, Format, render_families};
use crate::daemon::Handle;

/// The most bodies alive at once (being rendered or sent).
pub const MAX_BODIES: usize = 2;
/// The slices a body is handed to hyper in: hyper asks for the next only
/// when it has written most of the last, so a body is released close to
/// when its last byte is written.
const CHUNK: usize = 256 * 1024;

type Key = (Families, Format);
type Slot = watch::Receiver<Option<Option<Rendered>>>;

/// The renderings under way, by set and format, and the bodies alive.
#[derive(Debug)]
pub struct Renderings {
    under_way: Mutex<HashMap<Key, Slot>>,
    bodies: Arc<Semaphore>,
    waiting: AtomicUsize,
    scrapes_waiting: AtomicUsize,
    rendered: AtomicU64,
}

impl Default for Renderings {
    fn default() -> Self {
        Renderings {
            under_way: Mutex::default(),
            bodies: Arc::new(Semaphore::new(MAX_BODIES)),
            waiting: AtomicUsize::new(0),
            scrapes_waiting: AtomicUsize::new(0),
            rendered: AtomicU64::new(0),
        }
    }
}

/// One rendered body, shared by the scrapes that joined its rendering.
#[derive(Debug, Clone)]
pub struct Rendered {
    body: Bytes,
    _permit: Arc<OwnedSemaphorePermit>,
}

impl Rendered {
    /// The text.
    pub fn text(&self) -> &Bytes {
        &self.body
    }

    /// The HTTP body: the text in slices, holding the body's place in
    /// the bound until the last slice is taken.
    pub fn into_body(self) -> axum::body::Body {
        axum::body::Body::new(Chunks {
            rest: self.body,
            _permit: self._permit,
        })
    }
}

impl Renderings {
    /// The families of `families` in `format`: joins the rendering under
    /// way or starts one. `None` if the rendering failed (a panic: a bug).
    pub async fn get(
        &self,
        handle: &Handle,
        families: Families,
        format: Format,
    ) -> Option<Rendered> {
        let mut slot = {
            let mut under_way = self.under_way.lock().unwrap_or_else(|e| e.into_inner());
            match under_way.get(&(families, format)) {
                Some(slot) => slot.clone(),
                None => {
                    let (tx, slot) = watch::channel(None);
                    under_way.insert((families, format), slot.clone());
                    tokio::spawn(render(handle.clone(), (families, format), tx));
                    slot
                }
            }
        };
        self.scrapes_waiting.fetch_add(1, Ordering::Relaxed);
        let _waiting = Decrement(&self.scrapes_waiting);
        let done = slot.wait_for(Option::is_some).await.ok()?;
        done.clone().flatten()
    }

    /// Scrapes waiting for a rendering (theirs or one they joined).
    pub fn scrapes_waiting(&self) -> usize {
        self.scrapes_waiting.load(Ordering::Relaxed)
    }

    /// Renderings made since start (a scrape that joined one made none);
    /// a rendering counted here is no longer joined by new scrapes.
    pub fn rendered(&self) -> u64 {
        self.rendered.load(Ordering::Relaxed)
    }

    /// Bodies alive now (at most [`MAX_BODIES`]).
    pub fn bodies_alive(&self) -> usize {
        MAX_BODIES - self.bodies.available_permits()
    }

    /// Renderings waiting for a body to be released.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    fn finish(&self, key: &Key) {
        self.under_way
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

/// Counts a waiting scrape out however its wait ends (a scraper that goes
/// away included).
struct Decrement<'a>(&'a AtomicUsize);

impl Drop for Decrement<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Forgets the rendering under way however its task ends (dropped at
/// shutdown included), so the next scrape starts a new one.
struct Finish(Handle, Key);

impl Drop for Finish {
    fn drop(&mut self) {
        self.0.metrics().renderings().finish(&self.1);
    }
}

async fn render(handle: Handle, key: Key, tx: watch::Sender<Option<Option<Rendered>>>) {
    let finish = Finish(handle.clone(), key);
    let renderings = handle.metrics().renderings();
    renderings.waiting.fetch_add(1, Ordering::Relaxed);
    let permit = renderings.bodies.clone().acquire_owned().await;
    renderings.waiting.fetch_sub(1, Ordering::Relaxed);
    // The semaphore is never closed.
    let Ok(permit) = permit else { return };
    let (families, format) = key;
    let h = handle.clone();
    let text = tokio::task::spawn_blocking(move || render_families(&h, format, families)).await;
    // Later scrapes start afresh; the ones waiting get this body.
    drop(finish);
    renderings.rendered.fetch_add(1, Ordering::Relaxed);
    let rendered = match text {
        Ok(text) => Some(Rendered {
            body: Bytes::from(text),
            _permit: Arc::new(permit),
        }),
        Err(e) => {
            tracing::warn!(error = %e, "rendering /metrics failed");
            None
        }
    };
    tx.send_replace(Some(rendered));
}

/// A body in [`CHUNK`]-sized slices of one shared buffer.
struct Chunks {
    rest: Bytes,
    _permit: Arc<OwnedSemaphorePermit>,
}

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if this.rest.is_empty() {
            return Poll::Ready(None);
        }
        let n = this.rest.len().min(CHUNK);
        Poll::Ready(Some(Ok(Frame::data(this.rest.split_to(n)))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.rest.len() as u64)
    }
}
