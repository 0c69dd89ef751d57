"""boto3 behind the ports of ``relay.ports``: the only modules that talk to AWS."""
