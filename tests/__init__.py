"""The test suite: one folder per layer of `scanner/`, beside the integration and end-to-end trees."""
