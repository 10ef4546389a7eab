"""The shipped YAML configs (package data); their schemas live beside what they configure."""
