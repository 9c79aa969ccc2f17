"""One module per service: the async class and its sync facade."""
