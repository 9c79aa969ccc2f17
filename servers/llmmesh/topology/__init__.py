"""The one description of the mesh topology, and everything rendered from it (Envoy configs)."""
