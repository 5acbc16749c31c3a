"""An independent gRPC peer for maglevd: knows nothing of maglev.proto.

Usage: python grpc_reflect.py HOST:PORT [--ca F --cert F --key F] [--pause NAME]

Lists the server's services through server reflection (grpcio-reflection's
descriptor database), builds the ListFrontends request and response types
from the reflected descriptors, calls the RPC, and prints one line per
fact: `service NAME`, `frontend NAME ADDRESS`, `field NAME` (of
FrontendInfo), `access RPC VALUE` (each RPC's `(maglev.access)` option, as
reflection serves it), `event frontend NAME same` for the first events of
a WatchEvents stream (the frontend snapshot, `same` when from == to: the
daemon sends pre-encoded bytes, another runtime must read them as the
proto says). With --ca (and --cert, --key) it talks TLS through
grpcio's own TLS stack; with --pause it also calls PauseBackend and prints
`pause CODE`.
"""

import argparse

import grpc
from google.protobuf import descriptor_pool, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def channel_for(args):
    if args.ca is None:
        return grpc.insecure_channel(args.address)
    creds = grpc.ssl_channel_credentials(
        root_certificates=read(args.ca),
        private_key=read(args.key) if args.key else None,
        certificate_chain=read(args.cert) if args.cert else None,
    )
    return grpc.secure_channel(args.address, creds)


def unary(channel, pool, service, name):
    method = service.FindMethodByName(name)
    request_type = message_factory.GetMessageClass(method.input_type)
    response_type = message_factory.GetMessageClass(method.output_type)
    call = channel.unary_unary(
        f"/maglev.Maglev/{name}",
        request_serializer=request_type.SerializeToString,
        response_deserializer=response_type.FromString,
    )
    return request_type, call


def main(args):
    with channel_for(args) as channel:
        db = ProtoReflectionDescriptorDatabase(channel)
        services = sorted(db.get_services())
        pool = descriptor_pool.DescriptorPool(db)
        service = pool.FindServiceByName("maglev.Maglev")
        request_type, call = unary(channel, pool, service, "ListFrontends")
        response = call(request_type(), timeout=10)
        frontend_fields = [
            f.name for f in pool.FindMessageTypeByName("maglev.FrontendInfo").fields
        ]
        for name in services:
            print("service", name)
        for f in response.frontends:
            print("frontend", f.name, f.address)
        for name in frontend_fields:
            print("field", name)
        access = pool.FindExtensionByName("maglev.access")
        # The options as this pool's own MethodOptions, which knows the
        # extension (GetOptions() is the built-in class, which does not).
        options_type = message_factory.GetMessageClass(
            pool.FindMessageTypeByName("google.protobuf.MethodOptions")
        )
        for method in service.methods:
            options = options_type.FromString(method.GetOptions().SerializeToString())
            value = access.enum_type.values_by_number[options.Extensions[access]].name
            print("access", method.name, value)
        method = service.FindMethodByName("WatchEvents")
        watch = channel.unary_stream(
            "/maglev.Maglev/WatchEvents",
            request_serializer=message_factory.GetMessageClass(
                method.input_type
            ).SerializeToString,
            response_deserializer=message_factory.GetMessageClass(
                method.output_type
            ).FromString,
        )
        watch_request = message_factory.GetMessageClass(method.input_type)
        stream = watch(watch_request(frontend=True), timeout=10)
        for _ in response.frontends:
            event = next(stream)
            kind = event.WhichOneof("kind")
            f = getattr(event, kind)
            print("event", kind, f.frontend, "same" if f.to == getattr(f, "from") else "changed")
        stream.cancel()
        if args.pause:
            request_type, call = unary(channel, pool, service, "PauseBackend")
            try:
                call(request_type(name=args.pause), timeout=10)
                print("pause OK")
            except grpc.RpcError as e:
                print("pause", e.code().name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("address")
    parser.add_argument("--ca")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--pause")
    main(parser.parse_args())
