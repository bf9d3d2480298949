"""Views of a memory: a static page of a memory file (``page``: HTML + PNG, read through a copy, see
``snapshot``) and a live Foxglove WebSocket server (``foxglove``)."""
