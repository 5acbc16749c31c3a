//! Messages encoded once, sent by many streams: [`Encoded`], a protobuf
//! message already encoded that tonic writes as is, and [`EncodedWatch`],
//! the service that answers `WatchEvents` with it in front of the
//! generated `MaglevServer` (which answers every other RPC).
//!
//! The generated service's `WatchEvents` must yield decoded
//! `maglev.Event`s, which tonic's codec would encode again for every
//! stream; [`EncodedWatch`] serves the same RPC with the same request,
//! filters and messages on the wire, from the bytes the event hub
//! encoded once ([`crate::events::Published::encoded`]). It sits inside
//! the access guard and the metering, so both see the RPC as before, and
//! reflection still describes it from the same descriptors.

use std::convert::Infallible;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes};
use prost::encoding::{DecodeContext, WireType};
use tonic::body::Body;
use tonic::codegen::{BoxFuture, Service, http};
use tonic::server::{NamedService, ServerStreamingService};
use tonic::{Request, Response, Status};

use crate::daemon::Handle;
use crate::grpc::{proto, watch};

/// The path of `WatchEvents`.
pub const WATCH_EVENTS_PATH: &str = "/maglev.Maglev/WatchEvents";

/// A protobuf message already encoded (without gRPC's framing): encoding
/// it writes the bytes as they are. Decoding one keeps nothing (it is
/// only ever sent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Encoded(pub Bytes);

impl Encoded {
    /// `message`, encoded now.
    pub fn of(message: &impl prost::Message) -> Encoded {
        Encoded(Bytes::from(message.encode_to_vec()))
    }
}

impl prost::Message for Encoded {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        prost::encoding::skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0 = Bytes::new();
    }
}

/// `inner` (the generated `MaglevServer`), with `WatchEvents` answered
/// from events encoded once.
#[derive(Debug, Clone)]
pub struct EncodedWatch<S> {
    inner: S,
    handle: Handle,
}

impl<S> EncodedWatch<S> {
    /// Wraps `inner`, streaming the events of `handle`.
    pub fn new(inner: S, handle: Handle) -> EncodedWatch<S> {
        EncodedWatch { inner, handle }
    }
}

/// One `WatchEvents` call.
struct WatchCall(Handle);

impl ServerStreamingService<proto::WatchRequest> for WatchCall {
    type Response = Encoded;
    type ResponseStream = watch::EncodedStream;
    type Future = BoxFuture<Response<Self::ResponseStream>, Status>;

    fn call(&mut self, request: Request<proto::WatchRequest>) -> Self::Future {
        let handle = self.0.clone();
        Box::pin(async move {
            let filter = watch::Filter::from_request(request.get_ref())?;
            Ok(Response::new(watch::start_encoded(handle, filter)))
        })
    }
}

impl<S> Service<http::Request<Body>> for EncodedWatch<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        if request.uri().path() != WATCH_EVENTS_PATH {
            return Box::pin(self.inner.call(request));
        }
        let call = WatchCall(self.handle.clone());
        Box::pin(async move {
            // The generated server's settings: no compression, tonic's
            // default message size limits.
            let codec = tonic_prost::ProstCodec::<Encoded, proto::WatchRequest>::default();
            let mut grpc = tonic::server::Grpc::new(codec);
            Ok(grpc.server_streaming(call, request).await)
        })
    }
}

impl<S: NamedService> NamedService for EncodedWatch<S> {
    const NAME: &'static str = S::NAME;
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn an_encoded_message_is_written_as_it_was_encoded() {
        let event = proto::Event {
            unix_nanos: 7,
            kind: Some(proto::event::Kind::Lag(proto::LagEvent { lost: 3 })),
        };
        let encoded = Encoded::of(&event);
        assert_eq!(encoded.encoded_len(), event.encoded_len());
        assert_eq!(encoded.encode_to_vec(), event.encode_to_vec());
        assert_eq!(
            proto::Event::decode(encoded.encode_to_vec().as_slice()).unwrap(),
            event
        );
    }
}
