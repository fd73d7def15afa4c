"""Starts moto's server on a free loopback port for one test process.

Prints "READY <port>" once the server accepts connections, then serves until its standard
input closes (the test process exited, however it exited), so no server outlives its tests.

Requests are handled one at a time (connections stay concurrent): moto keeps no per-item
locks, so two concurrent conditional writes to one item could both read the old value and one
update would be lost. DynamoDB applies each write atomically; serializing requests gives the
local endpoint the same guarantee, which the store's conditional counters rely on.
"""
import logging
import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

# One line per request would bury the test output.
logging.getLogger("werkzeug").setLevel(logging.ERROR)

application = DomainDispatcherApplication(create_backend_app)
one_at_a_time = threading.Lock()


def serialized(environ, start_response):
    with one_at_a_time:
        # The whole response is produced inside the lock.
        return list(application(environ, start_response))


server = make_server("127.0.0.1", 0, serialized, threaded=True, request_handler=MotoRequestHandler)
threading.Thread(target=server.serve_forever, daemon=True).start()
print(f"READY {server.server_address[1]}", flush=True)
sys.stdin.read()
server.shutdown()
