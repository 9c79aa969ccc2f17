"""`./scripts/up`: run the whole mesh as local processes, supervised, in the foreground."""
