"""gluerelay tooling: the CLI and the local cloud. Never deployed to AWS."""

__version__ = "0.1.0"
