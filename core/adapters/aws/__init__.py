"""AWS adapters: S3 blobs, SQS queue (and, in core.adapters.stores.dynamodb, the job store).

boto3 is imported in one module only, `clients`, and botocore's exception classes in
`errors` (which failures are transient); both only when an AWS scheme is used.
Importing this package costs nothing.
"""
