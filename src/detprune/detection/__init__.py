"""Detection workflow: datasets, detectors, adapters, training, evaluation."""
