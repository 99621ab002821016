"""The regression eval harness: eval sets, metrics, the baseline gate and its reports."""
