"""`imggo-fn`: the laptop entry point (serve, ingest, jobs, patterns, simulator)."""
