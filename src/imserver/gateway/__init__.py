"""The WebSocket gateway: protocol frames, per-connection logic, the local hub.

Only ``endpoint.py`` touches the WebSocket library; everything else is plain
Python over bytes and events, testable without a socket.
"""
