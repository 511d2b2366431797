"""multiqpu provider adapter: braket (work in progress)."""
