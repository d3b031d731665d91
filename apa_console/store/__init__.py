"""The store: one TinyDB document committed atomically (`document`), every query and status
word (`records`), and read-only summaries over them (`catalog`, `status`)."""
