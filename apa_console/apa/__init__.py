"""The APA method over a store: partition into shards, one adapter per shard with its
validation errors, and per-sample aggregation of the adapters when scoring."""
