"""The local cloud: template.yaml on emulated AWS (moto) with the real handlers, Glue scripts and crawls."""
