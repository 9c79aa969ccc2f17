"""The server framework every llmmesh service runs on: settings, errors, interceptors, health,
reflection, metrics, graceful shutdown, and hosting any subset of services in one process."""
