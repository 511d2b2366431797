"""multiqpu provider adapter: ibm (work in progress)."""
