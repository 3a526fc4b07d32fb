"""Analysis of trained studies: the report (tables, statistics, plots from MLflow runs)."""
