"""An independent gRPC peer for maglevd: knows nothing of maglev.proto.

Usage: python grpc_reflect.py HOST:PORT

Lists the server's services through server reflection (grpcio-reflection's
descriptor database), builds the ListFrontends request and response types
from the reflected descriptors, calls the RPC, and prints one JSON object:
{"services": [...], "frontends": [names...], "fields": [...]}.
"""

import sys

import grpc
from google.protobuf import descriptor_pool, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


def main(address):
    with grpc.insecure_channel(address) as channel:
        db = ProtoReflectionDescriptorDatabase(channel)
        services = sorted(db.get_services())
        pool = descriptor_pool.DescriptorPool(db)
        method = pool.FindServiceByName("maglev.Maglev").FindMethodByName("ListFrontends")
        request_type = message_factory.GetMessageClass(method.input_type)
        response_type = message_factory.GetMessageClass(method.output_type)
        call = channel.unary_unary(
            "/maglev.Maglev/ListFrontends",
            request_serializer=request_type.SerializeToString,
            response_deserializer=response_type.FromString,
        )
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


if __name__ == "__main__":
    main(sys.argv[1])
