"""gluerelay's Lambda functions: the control plane of the pipeline.

``handlers`` are thin entry points (one per function), ``logic`` holds the decisions and knows nothing of
boto3, ``adapters`` wrap boto3 and translate its errors into the exceptions of ``errors``.
"""
