"""Analyses of trained networks, layer by layer: every layer's features on a fixed sample
set, linear probes on them, and representation similarity (CKA: biased, debiased and
streaming minibatch); and the same for finished runs, reloaded from MLflow and written
back to them.

Modules, one idea each:
    features    every layer's output on a fixed, ordered, un-augmented sample set
    cka         CKA estimators, in the papers' notation
    similarity  layer x layer CKA of two networks
    probe       linear probes, C chosen on validation
    artifacts   the files one analysis leaves (.npy, .csv, .json, PNG)
    runs        analyses of finished MLflow runs (study analyses, `ablate analyze`)
    run_lookup  naming a run by id, trial key, cell id or factor values
"""
