"""Keep the status a server delivered when a write fails because the call has just ended.

grpc.aio (through 1.85, grpc/grpc#36066, fix proposed in grpc/grpc#43486) answers a client write
that Core rejects with `set_internal_error`, unconditionally: when the server had already ended the
call (an interceptor refusing the key, an unknown method) and the failed write is processed after
its status arrived, the caller sees INTERNAL "Internal error from Core" instead of the server's
UNAUTHENTICATED or UNIMPLEMENTED. Wrapping the call's Core handle makes that overwrite happen only
while no status is known (the case grpc added it for: a batch Core rejects without ever
delivering a status). The SDK, distributed apart, has the same shim
(llmmesh_client.delivered_status); tests/clients/test_delivered_status.py holds both to the race.
"""

from __future__ import annotations

from typing import Any


class _KeepDeliveredStatus:
    def __init__(self, core_call: Any) -> None:
        self._core_call = core_call

    def __getattr__(self, name: str) -> Any:
        return getattr(self._core_call, name)

    def set_internal_error(self, details: str) -> None:
        if not self._core_call.done():
            self._core_call.set_internal_error(details)


def keep_delivered_status(call: Any) -> Any:
    """`call` (a grpc.aio call that writes requests), its failed writes reporting the server's status.
    A call made through client interceptors has no Core handle of its own and is left as it is."""
    core_call = getattr(call, "_cython_call", None)
    if core_call is not None and not isinstance(core_call, _KeepDeliveredStatus):
        call._cython_call = _KeepDeliveredStatus(core_call)
    return call
