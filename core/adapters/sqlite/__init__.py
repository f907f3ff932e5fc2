"""SQLite plumbing shared by the embedded job store and the embedded blob store."""
