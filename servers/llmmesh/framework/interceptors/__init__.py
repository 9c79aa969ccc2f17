"""Server interceptors, applied outermost first: tracing (when on) → request id + JSON log → metrics → auth → errors."""
