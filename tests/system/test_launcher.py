"""The launcher's own checks before it starts anything."""

import socket

import pytest

from bml_site.launcher import port_is_free


def test_a_port_left_in_time_wait_by_a_stopped_server_is_free_again():
    """Ctrl-C then `make up` at once: the old server's connections linger in TIME_WAIT."""
    listener = socket.create_server(("127.0.0.1", 0))  # SO_REUSEADDR, as uvicorn binds
    port = listener.getsockname()[1]
    assert not port_is_free("127.0.0.1", port)  # someone listens: refused
    client = socket.create_connection(("127.0.0.1", port))
    served, _ = listener.accept()
    served.close()  # the server closes first, as a stopping server does: TIME_WAIT is its
    client.recv(1)
    client.close()
    listener.close()
    with socket.socket() as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", port))  # the state the check met before: a plain bind fails
    assert port_is_free("127.0.0.1", port)
