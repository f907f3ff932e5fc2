"""AWS Lambda entry points: thin translators between Lambda events and the core.

    handlers_aws.api.handler        API Gateway HTTP API (payload 2.0), REST API (1.0
                                    proxy) and Lambda Function URLs -> core HTTP surface
    handlers_aws.worker.handler     SQS batches of work items (ReportBatchItemFailures)
    handlers_aws.uploads.handler    S3 ObjectCreated under incoming/ -> upload_landed
    handlers_aws.schedule.handler   EventBridge schedule -> reconcile

Importing this package imports nothing else: each entry module pulls in only what its
own event needs, and the services (store, ImgGo client, S3/SQS clients, secrets) are
built on the first invocation and reused while the container is warm.
"""
