"""egom2p subpackage (see DESIGN.md)."""
