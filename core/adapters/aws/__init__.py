"""AWS adapters: S3 blobs, SQS queue (and, in core.adapters.stores.dynamodb, the job store).

boto3 is imported in one module only, `clients`, and only when an AWS scheme is used;
importing this package costs nothing.
"""
