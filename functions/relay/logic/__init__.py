"""The control plane's decisions, over the ports in ``relay.ports``: no boto3, no environment."""
