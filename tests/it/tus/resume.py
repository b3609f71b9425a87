"""Drives tuspy (tuspy==1.1.0, the tus project's Python client) against a geoimport server, as its users
write it: an upload that stops part-way, then, in another process, the same file resumed from the URL the
client stored for it.

Reads its arguments as JSON on stdin: base_url, username, api_key, path (the file), chunk_size,
url_store (a file where the client keeps upload URLs), and stop_at (stop after that many bytes; absent:
upload to the end). Prints what it saw as one JSON object: the upload's URL, the offset the client
started from, and the offset it reached.
"""

import base64
import json
import os
import sys

from tusclient import client
from tusclient.storage.filestorage import FileStorage

args = json.load(sys.stdin)
# tus clients keep the headers, not the query string, for the URL the server gives back: the key goes in
# HTTP Basic.
token = base64.b64encode(("%s:%s" % (args["username"], args["api_key"])).encode()).decode()
tus = client.TusClient(args["base_url"] + "/api/v1/uploads", headers={"Authorization": "Basic " + token})
uploader = tus.uploader(
    args["path"],
    chunk_size=args["chunk_size"],
    metadata={"filename": os.path.basename(args["path"])},
    store_url=True,
    url_storage=FileStorage(args["url_store"]),
)
started_from = uploader.offset
uploader.upload(stop_at=args.get("stop_at"))
print(json.dumps({"url": uploader.url, "started_from": started_from, "offset": uploader.offset}))
