"""Starts moto's server on a free loopback port for one test process.

Prints "READY <port>" once the server accepts connections, then serves until its standard
input closes (the test process exited, however it exited), so no server outlives its tests.
"""
import logging
import sys

from moto.server import ThreadedMotoServer

# One line per request would bury the test output.
logging.getLogger("werkzeug").setLevel(logging.ERROR)

server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
host, port = server.get_host_and_port()
print(f"READY {port}", flush=True)
sys.stdin.read()
server.stop()
