"""Talking to the upstream index: the client, the network guard, the circuit breaker and the one upstream error hierarchy."""
