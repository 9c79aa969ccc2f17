"""`./scripts/demo`: the mesh's reliability story, told against a running mesh (see __main__.py)."""
