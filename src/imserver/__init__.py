"""imserver: an asynchronous instant-messaging server with compliance in the message path."""

__version__ = "0.1.0"
