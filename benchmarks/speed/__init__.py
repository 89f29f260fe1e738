"""Speed and memory: cwpo's training, annotation, generation and demo paths against TRL and plain loops."""
