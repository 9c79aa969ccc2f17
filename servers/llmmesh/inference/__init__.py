"""The inference service: every model call in the mesh goes through here."""
