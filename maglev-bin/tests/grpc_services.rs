//! What `grpcurl` and `grpc_health_probe` rely on: server reflection (v1
//! and v1alpha) lists the services and serves `maglev.proto` with its
//! imports; the standard health service answers `SERVING`; with
//! `--reflection=false` there is no reflection.

mod common;
mod grpc_common;

use grpc_common::{channel, start};
use prost::Message;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};

/// One reflection v1 request and its answer.
async fn reflect(
    channel: tonic::transport::Channel,
    request: MessageRequest,
) -> Result<ServerReflectionResponse, tonic::Status> {
    let mut client = ServerReflectionClient::new(channel);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut answers = client
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await?
        .into_inner();
    Ok(answers.message().await?.expect("one answer"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_the_services_and_health_says_serving() {
    let (world, _) = start(52, |_| {}).await;
    let ch = channel(&world).await;

    let listed = reflect(ch.clone(), MessageRequest::ListServices(String::new()))
        .await
        .unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = listed.message_response else {
        panic!("expected a service list, got {listed:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
            "maglev.Maglev",
        ]
    );

    // The file defining the service comes with the import it needs.
    let file = reflect(
        ch.clone(),
        MessageRequest::FileContainingSymbol("maglev.Maglev".into()),
    )
    .await
    .unwrap();
    let Some(MessageResponse::FileDescriptorResponse(files)) = file.message_response else {
        panic!("expected descriptors, got {file:?}");
    };
    let files: Vec<prost_types::FileDescriptorProto> = files
        .file_descriptor_proto
        .iter()
        .map(|b| prost_types::FileDescriptorProto::decode(b.as_slice()).unwrap())
        .collect();
    let maglev = files
        .iter()
        .find(|f| f.name() == "maglev.proto")
        .expect("maglev.proto");
    assert_eq!(maglev.service[0].method.len(), 24);
    assert!(
        maglev
            .dependency
            .iter()
            .any(|d| d == "google/protobuf/duration.proto"),
        "{:?}",
        maglev.dependency
    );

    // Older grpcurl speaks v1alpha.
    let mut alpha =
        tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient::new(
            ch.clone(),
        );
    let req = tonic_reflection::pb::v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            ),
        ),
    };
    let answer = alpha
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner()
        .message()
        .await
        .unwrap()
        .expect("one answer");
    assert!(format!("{answer:?}").contains("maglev.Maglev"));

    let mut health = HealthClient::new(ch);
    for service in ["maglev.Maglev", ""] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "maglev.Other".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_can_be_turned_off() {
    let (world, mut c) = start(53, |s| s.reflection = false).await;
    let e = reflect(
        channel(&world).await,
        MessageRequest::ListServices(String::new()),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented, "{e:?}");
    // The API itself is there.
    let list = c
        .list_frontends(maglev_bin::grpc::proto::ListFrontendsRequest::default())
        .await
        .unwrap();
    assert_eq!(list.into_inner().frontends.len(), 2);
    world.stop().await;
}
