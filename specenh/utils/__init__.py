"""Small shared helpers: YAML configs with command-line overrides, logging, seeding, atomic writes."""
