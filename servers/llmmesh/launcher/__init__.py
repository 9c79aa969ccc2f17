"""`./scripts/up`: run the whole mesh as local processes, supervised, in the foreground."""

import os

# gRPC's fork support restarts its poller in a forked child, and a child that closes its file
# descriptors before exec (subprocess.Popen) can then crash before it execs (grpc/grpc#43055, open
# in grpcio 1.85). The launcher probes services over gRPC and then starts or restarts children;
# none of them uses the parent's gRPC state, so fork support stays off (before gRPC starts).
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
