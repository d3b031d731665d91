"""What front-ends and benchmarks call: forgetting end to end, opening the store's model, and
the read models the console's screens show."""
