"""configs subpackage (see DESIGN.md)."""
