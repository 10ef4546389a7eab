"""agents subpackage (see DESIGN.md)."""
