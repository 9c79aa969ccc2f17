"""Server interceptors, applied outermost first: request id + JSON log → metrics → auth → errors."""
