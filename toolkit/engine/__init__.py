"""Row-level pass engines (issue #14): pieces shared by the DuckDB and Spark back ends."""
