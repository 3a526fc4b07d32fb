"""Analysis of trained studies: the report (tables, statistics, plots from MLflow runs)
and representation similarity (CKA: biased, debiased and streaming minibatch)."""
