"""Quality of the test suite: mutation testing of the loss math, the weights and the weighted trainer step."""
