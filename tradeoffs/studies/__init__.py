"""Study pipelines: each composes the library into one study (binaries stay thin)."""
