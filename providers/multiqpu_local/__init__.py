"""multiqpu provider adapter: local (work in progress)."""
