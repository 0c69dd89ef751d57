"""Data-quality rules: the DQDL subset gluerelay validates at deploy and the local cloud evaluates."""
