//! Polling several futures at once and collecting their outputs in order
//! (the futures need not be `Send`, so a command writing into a buffer
//! can run on every node together).

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;

/// Runs every future concurrently on this task; their outputs, in the
/// order given.
pub async fn join_all<I>(futs: I) -> Vec<<I::Item as Future>::Output>
where
    I: IntoIterator,
    I::Item: Future,
{
    let mut futs: Vec<Pin<Box<I::Item>>> = futs.into_iter().map(Box::pin).collect();
    let mut outs: Vec<Option<<I::Item as Future>::Output>> = futs.iter().map(|_| None).collect();
    poll_fn(|cx| {
        let mut pending = false;
        for (f, out) in futs.iter_mut().zip(outs.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *out = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outs.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn outputs_come_in_the_order_given() {
        let d = |ms| async move {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            ms
        };
        assert_eq!(join_all([d(30), d(10), d(20)]).await, vec![30, 10, 20]);
    }
}
