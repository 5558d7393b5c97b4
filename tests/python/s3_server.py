"""An S3-compatible server for the tests: moto's, on 127.0.0.1 at a free port, with the buckets made.

    s3_server.py BUCKET [BUCKET ...]

Prints one JSON line, {"endpoint": "http://127.0.0.1:PORT"}, once it serves, then serves until
its standard input closes (the test that started it ends). moto's S3 honours `If-None-Match: *`,
the conditional put that Delta commits rely on instead of a lock.
"""
import json
import logging
import sys

import boto3
from moto.server import ThreadedMotoServer


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )
    for bucket in sys.argv[1:]:
        s3.create_bucket(Bucket=bucket)
    print(json.dumps({"endpoint": endpoint}), flush=True)
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main()
