"""Drives CARTO's own Python SDK (carto==1.11.3) against a geoimport server, as its users write it.

Reads its arguments as JSON on stdin; prints what each step saw as one JSON object on stdout. A step that
raises records the exception instead of stopping the others: the Rust test says which failed and why.
"""

import json
import sys
import time
import warnings

warnings.simplefilter("ignore")  # the SDK warns about plain HTTP, and about non-public APIs

from carto.auth import APIKeyAuthClient  # noqa: E402
from carto.file_import import FileImportJobManager  # noqa: E402
from carto.sync_tables import SyncTableJobManager  # noqa: E402

args = json.load(sys.stdin)
client = APIKeyAuthClient(args["base_url"], args["api_key"])
seen = {}


def step(name, run):
    try:
        seen[name] = run()
    except Exception as e:  # the test reports it
        seen[name] = {"exception": "%s: %s" % (type(e).__name__, e)}


def wait(job, finals, limit=120):
    start = time.time()
    while True:
        job.refresh()
        if job.state in finals:
            return
        if time.time() - start > limit:
            raise RuntimeError("still %s after %s s" % (job.state, limit))
        time.sleep(0.3)


def imported(job):
    wait(job, ("complete", "failure"))
    return {"id": job.id, "state": job.state, "table_name": job.table_name, "error_code": job.error_code}


files = FileImportJobManager(client)


def import_file(path):
    job = files.create(path)
    job.run()
    return imported(job)


step("upload", lambda: import_file(args["csv_path"]))
step("failing", lambda: import_file(args["bad_path"]))
step("url", lambda: import_file(args["url"]))
def listing():
    # The SDK's own call must work; it yields no objects whatever the server lists (its manager builds each
    # FileImportJob with one argument of the two it needs, and skips the TypeError), so the ids are read
    # from the same request made through the SDK's client.
    files.all()
    return client.send(files.get_collection_endpoint(), "get").json()["imports"]


step("list", listing)


def connector():
    job = files.create(None)
    job.run(connection={"connector": args["connector"]})
    return imported(job)


step("connector", connector)


def sync_table():
    job = SyncTableJobManager(client).create(args["sync_url"], 900)
    wait(job, ("success", "failure"))
    return {"id": job.id, "state": job.state, "name": job.name}


step("sync", sync_table)
print(json.dumps(seen))
