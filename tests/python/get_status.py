"""An independent gRPC client for ctrdiag's API: Python's grpcio, stubs generated from
proto/ctrdiag/v1 at run time. Prints GetStatus and a Diagnose of argv[3] as JSON.

usage: get_status.py SOCKET PROTO_ROOT TARGET
"""
import json
import sys
import tempfile

from google.protobuf.json_format import MessageToDict
from grpc_tools import protoc
import grpc


def main():
    socket, proto_root, target = sys.argv[1:4]
    out = tempfile.mkdtemp(prefix="ctrdiag-py-")
    rc = protoc.main(["protoc", f"-I{proto_root}", f"--python_out={out}", f"--grpc_python_out={out}",
                      "ctrdiag/v1/diagnostics.proto"])
    if rc != 0:
        sys.exit(f"protoc failed with {rc}")
    sys.path.insert(0, out)
    from ctrdiag.v1 import diagnostics_pb2 as pb, diagnostics_pb2_grpc as rpc

    # grpcio would send the socket path (percent-encoded) as :authority, which HTTP/2
    # servers built on hyper (tonic's) refuse; grpc-go and tonic clients send
    # "localhost" for Unix sockets, so do the same.
    options = [("grpc.default_authority", "localhost")]
    with grpc.insecure_channel(f"unix://{socket}", options=options) as channel:
        stub = rpc.DiagnosticsStub(channel)
        status = stub.GetStatus(pb.GetStatusRequest(), timeout=30)
        diagnosis = stub.Diagnose(pb.DiagnoseRequest(target=target), timeout=60)
        try:
            stub.TestPull(pb.TestPullRequest(image=""), timeout=30)
            refused = None
        except grpc.RpcError as e:
            refused = e.code().name
    print(json.dumps({
        "status": MessageToDict(status, preserving_proto_field_name=True),
        "diagnosis": MessageToDict(diagnosis, preserving_proto_field_name=True),
        "empty_image_error": refused,
    }))


if __name__ == "__main__":
    main()
